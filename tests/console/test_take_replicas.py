"""The take across replicas: two gateways (two engines, two connection pools) claim the same
conversations at once; each conversation ends with exactly one winner. On SQLite always, and on
PostgreSQL when TEST_DATABASE_URL or TEST_DATABASE_URL names one (CI sets it)."""
from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from sqlalchemy import delete, select

from bot.console.queue_api import claim
from bot.db.migrate import upgrade
from bot.db.models import Account, Conversation, utcnow
from bot.db.session import async_engine, session_factory

ROUNDS = 15


def postgres_url() -> str | None:
    for name in ("TEST_DATABASE_URL", "TEST_DATABASE_URL"):
        url = os.environ.get(name, "").strip()
        if url.startswith(("postgresql://", "postgres://")):
            return url
    return None


async def race(database_url: str) -> None:
    replicas = [async_engine(database_url), async_engine(database_url)]
    sessions = [session_factory(e) for e in replicas]
    tag = uuid.uuid4().hex[:8]
    try:
        async with sessions[0]() as s:
            people = [Account(username=f"race-{tag}-{i}", role="counselor", password_hash="x") for i in range(2)]
            s.add_all(people)
            convs = [Conversation(channel="messenger", user_id=f"race-{tag}-{n}", state="queued", priority="emergency",
                                  queued_at=utcnow(), summary={}, notices={}) for n in range(ROUNDS)]
            s.add_all(convs)
            await s.commit()
            account_ids, conv_ids = [p.id for p in people], [c.id for c in convs]

        async def attempt(replica: int, conv_id: int) -> bool:
            async with sessions[replica]() as session:
                won = await claim(session, conv_id, account_ids[replica])
                await (session.commit() if won else session.rollback())
                return won

        for conv_id in conv_ids:
            results = await asyncio.gather(attempt(0, conv_id), attempt(1, conv_id))
            assert sorted(results) == [False, True], results
        async with sessions[0]() as s:
            rows = list(await s.scalars(select(Conversation).where(Conversation.id.in_(conv_ids))))
        assert all(r.state == "assigned" and r.assigned_to in account_ids for r in rows)
        # a claim of something already taken changes nothing
        async with sessions[1]() as s:
            assert not await claim(s, conv_ids[0], account_ids[1])
    finally:
        async with sessions[0]() as s:  # leave a shared PostgreSQL database as it was
            await s.execute(delete(Conversation).where(Conversation.user_id.like(f"race-{tag}-%"))
                            .execution_options(synchronize_session=False))
            await s.execute(delete(Account).where(Account.username.like(f"race-{tag}-%"))
                            .execution_options(synchronize_session=False))
            await s.commit()
        for engine in replicas:
            await engine.dispose()


async def test_two_replicas_on_sqlite(db_url: str):
    await race(db_url)


async def test_two_replicas_on_postgresql():
    url = postgres_url()
    if url is None:
        pytest.skip("set TEST_DATABASE_URL (or TEST_DATABASE_URL) to a PostgreSQL database to run this")
    await asyncio.get_running_loop().run_in_executor(None, upgrade, url)
    await race(url)
