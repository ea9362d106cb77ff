"""The platforms' Send APIs failing: Graph answering 500, 429, a transient error code or nothing at
all, Zalo answering 500, its rate-limit error or nothing at all, while two replicas send from one
outbox on PostgreSQL. Every reply is delivered, once, in order. Needs TEST_DATABASE_URL."""
from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from types import SimpleNamespace

import aiohttp
import pytest
from sqlalchemy import text

from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import ZALO_APP_ID, encode, messenger_text_event, sign_messenger, sign_zalo, zalo_text_event
from tests.fakes.rasa import FakeRasa
from tests.fakes.zalo import FakeZalo
from tests.gateway.conftest import eventually
from tests.production.inproc import APP_SECRET, OA_SECRET, gateway_settings, replica


@pytest.fixture
async def fakes():
    async with FakeGraph(timeout_delay=3) as graph, FakeZalo(timeout_delay=3) as zalo, FakeRasa() as rasa:
        yield SimpleNamespace(graph=graph, zalo=zalo, rasa=rasa)


async def test_send_api_errors_and_timeouts_are_retried_none_lost_none_doubled(aiohttp_client, pg_url, fakes):
    """Two replicas send from one outbox while Graph answers 500, 429, a transient error code or
    nothing at all, and Zalo answers 500, its rate-limit error or nothing at all."""
    settings = gateway_settings(pg_url, fakes, retry_base_s=0.05, send_max_attempts=8)
    replicas = [await replica(aiohttp_client, settings, f"send-{n}") for n in (1, 2)]
    for r in replicas:  # a client timeout of 1 s instead of 10 (the fakes hang for 3 s)
        for sender in r.gw.senders.values():
            sender.client._timeout = aiohttp.ClientTimeout(total=1)
    fakes.graph.fail_next(1, 500)
    fakes.graph.fail_next(1, 429)
    fakes.graph.fail_next(1, "timeout")
    fakes.graph.fail_next(1, {"code": 2, "message": "(#2) Service temporarily unavailable"})
    fakes.graph.fail_next(1, 503)
    fakes.graph.fail_next(1, "timeout")
    fakes.zalo.fail_next(1, 500)
    fakes.zalo.fail_next(1, -32)
    fakes.zalo.fail_next(1, "timeout")
    fakes.zalo.fail_next(1, 502)

    tag = f"{uuid.uuid4().int % 10**6:06d}"  # digits: a hex tag such as "81af3d" can make a text English
    expected_m: dict[str, list[str]] = {}
    expected_z: dict[str, list[str]] = {}
    for i in range(6):
        m_user, z_user = f"sm{tag}-{i}", f"sz{tag}-{i}"
        expected_m[m_user], expected_z[z_user] = [], []
        for j in range(3):
            words = f"gui {i} {j} {tag}"
            raw = encode(messenger_text_event(m_user, words, f"{m_user}-{j}"))
            async with replicas[(i + j) % 2].post("/webhooks/messenger", data=raw,
                                                  headers=sign_messenger(raw, APP_SECRET)) as r:
                assert r.status == 200
            raw = encode(zalo_text_event(z_user, words, f"{z_user}-{j}"))
            async with replicas[(i + j + 1) % 2].post("/webhooks/zalo", data=raw,
                                                      headers=sign_zalo(raw, ZALO_APP_ID, OA_SECRET)) as r:
                assert r.status == 200
            expected_m[m_user].append(f"[vi] bot: {words}")
            expected_z[z_user].append(f"[vi] bot: {words}")

    def done() -> bool:
        return all(len(fakes.graph.texts_to(u)) >= 3 for u in expected_m) and \
            all(len(fakes.zalo.texts_to(u)) >= 3 for u in expected_z)

    await eventually(done, timeout=60, interval=0.1)
    await asyncio.sleep(2.0)  # a doubled send would have arrived by now
    for user, texts in expected_m.items():
        assert fakes.graph.texts_to(user) == texts, user  # all there, once each, in order
    for user, texts in expected_z.items():
        assert fakes.zalo.texts_to(user) == texts, user
    failed_graph = [c for c in fakes.graph.calls if not c["delivered"]]
    failed_zalo = [c for c in fakes.zalo.calls if not c["delivered"]]
    assert len(failed_graph) >= 6 and len(failed_zalo) >= 4, "the injected failures were not all hit"
    async with replicas[0].gw.sessions() as s:
        statuses = Counter(r for (r,) in await s.execute(text(
            "SELECT m.status FROM chat_message m JOIN chat_conversation c ON c.id = m.conversation_id "
            "WHERE m.direction = 'out' AND (c.user_id LIKE :a OR c.user_id LIKE :b)"),
            {"a": f"sm{tag}-%", "b": f"sz{tag}-%"}))
    assert statuses == {"sent": 36}
