"""Conversation leases across replicas (bot/inbox.py).

A replica leases a conversation, then handles its messages one by one. If handling one message
outlasts the lease (Rasa slow, the database stalled), another replica may take the conversation
and handle the same message. The message's `done` mark and its replies must then commit only for
the replica that still holds the lease: each message is answered once, in order.

Runs on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set.
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bot import inbox
from bot.db.models import Conversation, Message
from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import encode, messenger_text_event, sign_messenger
from tests.fakes.rasa import FakeRasa
from tests.fakes.zalo import FakeZalo
from tests.gateway.conftest import eventually
from tests.production.inproc import APP_SECRET, gateway_settings, replica


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, db_url: str) -> str:
    return db_url if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
async def fakes():
    async with FakeGraph(timeout_delay=3) as graph, FakeZalo(timeout_delay=3) as zalo, FakeRasa() as rasa:
        yield SimpleNamespace(graph=graph, zalo=zalo, rasa=rasa)


async def post(client, payload: dict) -> int:
    raw = encode(payload)
    async with client.post("/webhooks/messenger", data=raw, headers=sign_messenger(raw, APP_SECRET)) as r:
        return r.status


async def test_a_lease_that_expires_mid_message_never_answers_twice(aiohttp_client, database, fakes, monkeypatch):
    monkeypatch.setattr(inbox, "LEASE", timedelta(seconds=0.3))
    fakes.rasa.delay_s = 0.7  # every message outlasts the lease
    settings = gateway_settings(database, fakes)
    a = await replica(aiohttp_client, settings, "replica-a")
    b = await replica(aiohttp_client, settings, "replica-b")
    user = f"lease-{uuid.uuid4().hex[:8]}"

    assert await post(a, messenger_text_event(user, "mot", f"{user}-1")) == 200
    await asyncio.sleep(0.45)  # replica A waits on Rasa; its lease has run out
    assert await post(b, messenger_text_event(user, "hai", f"{user}-2")) == 200  # wakes replica B

    await eventually(lambda: len(fakes.graph.texts_to(user)) >= 2, timeout=20)
    await asyncio.sleep(2.0)  # a second handling of either message would have been sent by now
    assert fakes.graph.texts_to(user) == ["[vi] bot: mot", "[vi] bot: hai"]
    # the replicas did race for the conversation: Rasa saw at least one message twice
    assert len([r for r in fakes.rasa.received if r["sender"] == f"messenger-{user}"]) > 2
    async with a.gw.sessions() as s:
        rows = list(await s.execute(
            select(Message.direction, Message.text, Message.status).join(Conversation)
            .where(Conversation.user_id == user).order_by(Message.id)))
    assert [(d, t) for d, t, _ in rows if d == "out"] == [("out", "[vi] bot: mot"), ("out", "[vi] bot: hai")]
    assert [st for d, _, st in rows if d == "in"] == ["done", "done"]


async def test_a_long_backlog_keeps_its_lease_renewed_and_is_answered_once_in_order(aiohttp_client, database, fakes,
                                                                                 monkeypatch):
    """Quick messages skip the lease check until a third of the lease has passed; a backlog that
    takes longer than the lease must still renew it, or another replica would take it midway."""
    monkeypatch.setattr(inbox, "LEASE", timedelta(seconds=0.3))
    fakes.rasa.delay_s = 0.03
    settings = gateway_settings(database, fakes)
    a = await replica(aiohttp_client, settings, "replica-a")
    b = await replica(aiohttp_client, settings, "replica-b")  # scans for due conversations every second
    user = f"backlog-{uuid.uuid4().hex[:8]}"
    words = [f"tin {i}" for i in range(40)]  # about 1.5 s of handling, five leases' worth
    for i, text in enumerate(words):
        assert await post(a, messenger_text_event(user, text, f"{user}-{i}")) == 200
    await eventually(lambda: len(fakes.graph.texts_to(user)) >= len(words), timeout=30)
    await asyncio.sleep(1.5)  # b's scan has run meanwhile; a doubled answer would have arrived
    assert fakes.graph.texts_to(user) == [f"[vi] bot: {t}" for t in words]
