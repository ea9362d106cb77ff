"""In-process SQLite writers take turns in asyncio (bot/db/sqlite_writes.py) instead of polling in
SQLite's busy handler, where a waiting connection could freeze the event loop (see the module)."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from bot.db import sqlite_writes
from bot.db.session import async_engine


async def _table(engine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, who TEXT)"))


async def _rows(engine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT who FROM t ORDER BY id"))).scalars().all())


@pytest.fixture
async def engine(tmp_path):
    engine = async_engine(f"sqlite:///{tmp_path}/w.db")
    await _table(engine)
    yield engine
    await engine.dispose()


def turn_lock(engine) -> asyncio.Lock:
    return sqlite_writes.write_lock(engine.sync_engine.dialect.database_path)


async def test_a_second_writer_waits_for_its_turn_in_asyncio_not_in_sqlite(engine):
    lock = turn_lock(engine)
    async with engine.connect() as first:
        await first.execute(text("INSERT INTO t (who) VALUES ('first')"))
        assert lock.locked()  # the first writer holds the turn until it commits

        async def second() -> None:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (who) VALUES ('second')"))

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.2)
        assert not waiting.done() and len(lock._waiters or ()) == 1  # queued on the lock
        await first.commit()
    await asyncio.wait_for(waiting, 5)
    assert not lock.locked()
    assert await _rows(engine) == ["first", "second"]


async def test_many_writers_of_several_engines_commit_in_arrival_order(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    engines = [async_engine(url) for _ in range(3)]  # e.g. the gateway's and the content store's
    try:
        await _table(engines[0])

        async def writer(i: int) -> None:
            await asyncio.sleep(i * 0.01)
            async with engines[i % 3].begin() as conn:
                await conn.execute(text("INSERT INTO t (who) VALUES (:w)"), {"w": str(i)})
                await asyncio.sleep(0.03)  # holds the write turn across an await

        await asyncio.gather(*(writer(i) for i in range(20)))
        assert await _rows(engines[1]) == [str(i) for i in range(20)]
    finally:
        for e in engines:
            await e.dispose()


async def test_a_rolled_back_or_failed_writer_gives_its_turn_back(engine):
    lock = turn_lock(engine)
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (who) VALUES ('undone')"))
        await conn.rollback()
    assert not lock.locked()
    with pytest.raises(Exception):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (id, who) VALUES (1, 'a')"))
            await conn.execute(text("INSERT INTO t (id, who) VALUES (1, 'duplicate')"))
    assert not lock.locked()
    async with engine.begin() as conn:  # and the next writer gets it at once
        await conn.execute(text("INSERT INTO t (who) VALUES ('next')"))
    assert await _rows(engine) == ["next"]


def test_only_writing_statements_take_a_turn():
    assert sqlite_writes._is_write("  insert into t values (1)")
    assert sqlite_writes._is_write("UPDATE t SET x = 1")
    assert sqlite_writes._is_write("BEGIN IMMEDIATE")
    assert not sqlite_writes._is_write("SELECT * FROM t")
    assert not sqlite_writes._is_write("PRAGMA journal_mode=WAL")
    assert not sqlite_writes._is_write("SAVEPOINT sa_savepoint_1")
