"""Engines and sessions. DATABASE_URL is a plain `sqlite:///…` or `postgresql://…` URL; the
async driver (aiosqlite / asyncpg) and the sync driver for Alembic are chosen here."""
from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import AsyncAdaptedQueuePool

from bot.db import sqlite_writes

logger = logging.getLogger(__name__)
# Kept SQLite connections: enough for the inbox and outbox workers and webhooks at once (a
# conversation's session holds one while Rasa answers); overflow connections close when returned.
SQLITE_POOL_SIZE = 20
SQLITE_POOL_OVERFLOW = 40


def _url(database_url: str, *, asynchronous: bool) -> URL:
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        driver = sqlite_writes.DRIVER if asynchronous else "pysqlite"
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    elif backend in ("postgresql", "postgres"):
        backend, driver = "postgresql", ("asyncpg" if asynchronous else "psycopg2")
    else:
        raise ValueError(f"unsupported DATABASE_URL backend {backend!r}: use sqlite:/// or postgresql://")
    return url.set(drivername=f"{backend}+{driver}")


def is_sqlite(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def async_engine(database_url: str) -> AsyncEngine:
    url = _url(database_url, asynchronous=True)
    if url.get_backend_name() == "sqlite":
        # SQLAlchemy's default for an aiosqlite file is NullPool: a new connection, its thread and
        # the PRAGMAs for every session, about 6 ms each, several times per message. Kept
        # connections make a session cost microseconds. (An in-memory database keeps its
        # default StaticPool: a new connection would be a new, empty database.) Whoever creates
        # an engine disposes of it: each kept connection holds the file open and a driver thread.
        pooled = {"poolclass": AsyncAdaptedQueuePool, "pool_size": SQLITE_POOL_SIZE,
                  "max_overflow": SQLITE_POOL_OVERFLOW} if url.database not in (None, "", ":memory:") else {}
        sqlite_writes.register()
        engine = create_async_engine(url, future=True, **pooled)
        engine.sync_engine.dialect.database_path = (  # writers of one file take turns
            str(Path(url.database).resolve()) if pooled else f":memory:{id(engine)}")
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        engine = create_async_engine(url, future=True, pool_pre_ping=True, pool_size=10, max_overflow=10)
    return engine


def sync_engine(database_url: str) -> Engine:
    url = _url(database_url, asynchronous=False)
    engine = create_engine(url, future=True)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: AsyncEngine) -> sessionmaker:
    return sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, future=True)
