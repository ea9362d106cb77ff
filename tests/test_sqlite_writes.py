"""In-process SQLite writers take turns in asyncio (bot/db/sqlite_writes.py) instead of polling in
SQLite's busy handler, where a waiting connection could freeze the event loop (see the module)."""
from __future__ import annotations

import asyncio

from sqlalchemy import text

from bot.db import sqlite_writes
from bot.db.session import async_engine


async def _table(engine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, who TEXT)"))


async def test_a_second_writer_waits_for_its_turn_in_asyncio_not_in_sqlite(tmp_path):
    engine = async_engine(f"sqlite:///{tmp_path}/w.db")
    try:
        await _table(engine)
        lock = sqlite_writes.write_lock(engine.sync_engine.dialect.database_path)
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
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT who FROM t ORDER BY id"))).scalars().all()
        assert rows == ["first", "second"]
    finally:
        await engine.dispose()


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
        async with engines[1].connect() as conn:
            rows = (await conn.execute(text("SELECT who FROM t ORDER BY id"))).scalars().all()
        assert rows == [str(i) for i in range(20)]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_rolled_back_or_failed_writer_gives_its_turn_back(tmp_path):
    engine = async_engine(f"sqlite:///{tmp_path}/w.db")
    try:
        await _table(engine)
        lock = sqlite_writes.write_lock(engine.sync_engine.dialect.database_path)
        async with engine.connect() as conn:
            await conn.execute(text("INSERT INTO t (who) VALUES ('undone')"))
            await conn.rollback()
        assert not lock.locked()
        try:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (id, who) VALUES (1, 'a')"))
                await conn.execute(text("INSERT INTO t (id, who) VALUES (1, 'duplicate')"))
        except Exception:
            pass
        assert not lock.locked()
        async with engine.begin() as conn:  # and the next writer gets it at once
            await conn.execute(text("INSERT INTO t (who) VALUES ('next')"))
    finally:
        await engine.dispose()


def test_only_writing_statements_take_a_turn():
    assert sqlite_writes._is_write("  insert into t values (1)")
    assert sqlite_writes._is_write("UPDATE t SET x = 1")
    assert sqlite_writes._is_write("BEGIN IMMEDIATE")
    assert not sqlite_writes._is_write("SELECT * FROM t")
    assert not sqlite_writes._is_write("PRAGMA journal_mode=WAL")
    assert not sqlite_writes._is_write("SAVEPOINT sa_savepoint_1")
