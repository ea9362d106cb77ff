"""Small database helpers that differ between SQLite and PostgreSQL."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignoring_duplicates(session: AsyncSession, table: Table, values: dict[str, Any]):
    """An INSERT that does nothing when a unique constraint already holds the row."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).values(**values).on_conflict_do_nothing()
