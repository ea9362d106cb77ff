"""Small database helpers that differ between SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignoring_duplicates(session: AsyncSession, table: Table, values: dict[str, Any]):
    """An INSERT that does nothing when a unique constraint already holds the row."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).values(**values).on_conflict_do_nothing()


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks."""
    digest = hashlib.sha256(f"hotline.{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def lock_across_replicas(session: AsyncSession, name: str) -> None:
    """Inside a transaction: wait until no other transaction (any replica) holds the lock `name`;
    it is released at commit or rollback. PostgreSQL only: SQLite has one writer at a time anyway."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)})
