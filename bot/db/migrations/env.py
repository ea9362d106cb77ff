"""Alembic environment: the URL comes from DATABASE_URL (bot.settings), never from alembic.ini."""
from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from bot.db.models import Base
from bot.db.session import _url, is_sqlite
from bot.settings import Settings

config = context.config
database_url = config.attributes.get("database_url") or Settings.from_env().database_url


def run_migrations_offline() -> None:
    context.configure(url=str(_url(database_url, asynchronous=False)), target_metadata=Base.metadata,
                      literal_binds=True, render_as_batch=is_sqlite(database_url))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    from sqlalchemy import create_engine

    engine = create_engine(_url(database_url, asynchronous=False), poolclass=pool.NullPool, future=True)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True,
                          render_as_batch=is_sqlite(database_url))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
