"""Token stores: the memory store, and the database store (seeding, persistence of both tokens and
the expiry together, the lock within a process and across processes)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from bot.db.models import PlatformToken
from bot.db.session import async_engine, session_factory
from channels.tokens import DbTokenStore, MemoryTokenStore, Tokens, TokenStore

EXPIRY = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)
ENV_TOKENS = Tokens("env-access", "env-refresh", None)


def test_expires_within() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert Tokens("a", "r", now + timedelta(minutes=4)).expires_within(300, now)
    assert not Tokens("a", "r", now + timedelta(minutes=6)).expires_within(300, now)
    assert Tokens("a", "r", now - timedelta(seconds=1)).expires_within(0, now)
    assert not Tokens("a", "r", None).expires_within(300, now)


def test_repr_hides_the_secrets() -> None:
    text = repr(Tokens("access-secret", "refresh-secret", EXPIRY))
    assert "access-secret" not in text and "refresh-secret" not in text and "2026" in text


async def test_memory_store() -> None:
    store = MemoryTokenStore(ENV_TOKENS)
    assert await store.load() == ENV_TOKENS
    await store.save(Tokens("a2", "r2", EXPIRY))
    assert await store.load() == Tokens("a2", "r2", EXPIRY)
    assert await MemoryTokenStore().load() is None


async def assert_lock_excludes(first: TokenStore, second: TokenStore) -> None:
    """The second holder enters only after the first has left."""
    timeline: list[str] = []
    first_inside = asyncio.Event()

    async def hold(store: TokenStore, name: str, signal: asyncio.Event | None) -> None:
        async with store.lock():
            timeline.append(f"{name} in")
            if signal is not None:
                signal.set()
            await asyncio.sleep(0.3)
            timeline.append(f"{name} out")

    async def follow() -> None:
        await first_inside.wait()
        await hold(second, "B", None)

    await asyncio.wait_for(asyncio.gather(hold(first, "A", first_inside), follow()), timeout=20)
    assert timeline == ["A in", "A out", "B in", "B out"]


async def test_memory_lock_excludes() -> None:
    store = MemoryTokenStore(ENV_TOKENS)
    await assert_lock_excludes(store, store)


# ---------------------------------------------------------------- database store

async def stored_rows(sessions: sessionmaker) -> list[tuple[str, str, str | None, datetime | None]]:
    async with sessions() as session:
        rows = (await session.execute(select(PlatformToken).order_by(PlatformToken.name))).scalars().all()
        return [(r.name, r.access_token, r.refresh_token, r.expires_at) for r in rows]


async def test_db_store_seeds_from_the_configured_tokens(sessions: sessionmaker) -> None:
    store = DbTokenStore(sessions, "zalo", ENV_TOKENS)
    assert await store.load() == ENV_TOKENS
    assert [row[:3] for row in await stored_rows(sessions)] == [("zalo", "env-access", "env-refresh")]


async def test_db_store_without_row_or_seed(sessions: sessionmaker) -> None:
    assert await DbTokenStore(sessions, "zalo").load() is None
    assert await stored_rows(sessions) == []


async def test_stored_tokens_win_over_the_configured_ones(sessions: sessionmaker) -> None:
    await DbTokenStore(sessions, "zalo", ENV_TOKENS).save(Tokens("rotated-access", "rotated-refresh", EXPIRY))
    restarted = DbTokenStore(sessions, "zalo", ENV_TOKENS)  # a restart with the old env tokens
    assert await restarted.load() == Tokens("rotated-access", "rotated-refresh", EXPIRY)


async def test_db_store_saves_both_tokens_and_the_expiry_together(sessions: sessionmaker) -> None:
    store = DbTokenStore(sessions, "zalo", ENV_TOKENS)
    await store.load()
    await store.save(Tokens("a2", "r2", EXPIRY))
    [(name, access, refresh, expires_at)] = await stored_rows(sessions)
    assert (name, access, refresh) == ("zalo", "a2", "r2")
    assert expires_at is not None and expires_at.replace(tzinfo=timezone.utc) == EXPIRY
    loaded = await DbTokenStore(sessions, "zalo").load()
    assert loaded == Tokens("a2", "r2", EXPIRY)
    assert loaded is not None and loaded.expires_at is not None and loaded.expires_at.tzinfo is not None


async def test_db_store_names_are_separate(sessions: sessionmaker) -> None:
    await DbTokenStore(sessions, "zalo").save(Tokens("z", "zr", None))
    await DbTokenStore(sessions, "other").save(Tokens("o", "or", None))
    assert (await DbTokenStore(sessions, "zalo").load()) == Tokens("z", "zr", None)
    assert [row[0] for row in await stored_rows(sessions)] == ["other", "zalo"]


async def test_load_and_save_inside_the_lock_commit_at_exit(sessions: sessionmaker) -> None:
    store = DbTokenStore(sessions, "zalo", ENV_TOKENS)
    async with store.lock():
        assert await store.load() == ENV_TOKENS  # seeded inside the locked transaction
        await store.save(Tokens("a2", "r2", EXPIRY))
        assert await store.load() == Tokens("a2", "r2", EXPIRY)
    assert await DbTokenStore(sessions, "zalo").load() == Tokens("a2", "r2", EXPIRY)


async def test_failure_inside_the_lock_rolls_back(sessions: sessionmaker) -> None:
    store = DbTokenStore(sessions, "zalo", ENV_TOKENS)
    await store.load()
    with pytest.raises(RuntimeError):
        async with store.lock():
            await store.save(Tokens("half-written", "x", EXPIRY))
            raise RuntimeError("refresh answer lost")
    assert await store.load() == ENV_TOKENS
    async with store.lock():  # and the lock is free again
        pass


async def test_db_lock_excludes_within_a_process(sessions: sessionmaker) -> None:
    store = DbTokenStore(sessions, "zalo", ENV_TOKENS)
    await assert_lock_excludes(store, store)


async def test_db_lock_excludes_across_processes(db_url: str) -> None:
    """Two engines stand for two processes: their asyncio locks are separate, so only the
    database (BEGIN IMMEDIATE) can order them."""
    engines = [async_engine(db_url), async_engine(db_url)]
    try:
        first, second = (DbTokenStore(session_factory(e), "zalo", ENV_TOKENS) for e in engines)
        await first.load()
        await assert_lock_excludes(first, second)
    finally:
        for engine in engines:
            await engine.dispose()


async def test_other_writers_proceed_after_the_lock(db_url: str) -> None:
    engines = [async_engine(db_url), async_engine(db_url)]
    try:
        first, second = (DbTokenStore(session_factory(e), "zalo", ENV_TOKENS) for e in engines)
        async with first.lock():
            await first.save(Tokens("a2", "r2", EXPIRY))
        await second.save(Tokens("a3", "r3", EXPIRY))
        assert await first.load() == Tokens("a3", "r3", EXPIRY)
    finally:
        for engine in engines:
            await engine.dispose()


async def test_db_store_on_postgresql(pg_sessions: sessionmaker, pg_url: str) -> None:
    store = DbTokenStore(pg_sessions, "zalo", ENV_TOKENS)
    assert await store.load() == ENV_TOKENS
    async with store.lock():
        await store.save(Tokens("a2", "r2", EXPIRY))
    assert await DbTokenStore(pg_sessions, "zalo").load() == Tokens("a2", "r2", EXPIRY)
    other_engine = async_engine(pg_url)
    try:
        await assert_lock_excludes(store, DbTokenStore(session_factory(other_engine), "zalo"))
    finally:
        await other_engine.dispose()
