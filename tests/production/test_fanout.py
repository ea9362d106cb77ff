"""Live events across replicas through Redis (bot/redis_fanout.py), and /readyz's Redis check.

Two gateway apps share one PostgreSQL database; a counselor's console is connected to replica A
while the webhook lands on replica B. Needs TEST_DATABASE_URL and TEST_REDIS_URL.
"""
from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import WSMsgType
from sqlalchemy.engine import make_url

from bot import accounts
from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import encode, messenger_text_event, sign_messenger
from tests.fakes.rasa import FakeRasa
from tests.fakes.zalo import FakeZalo
from tests.production.inproc import APP_SECRET, gateway_settings, replica
from tests.production.tcpproxy import TcpProxy

PASSWORD = "Fanout-test-password-7"


@pytest.fixture
async def fakes():
    async with FakeGraph(timeout_delay=3) as graph, FakeZalo(timeout_delay=3) as zalo, FakeRasa() as rasa:
        yield SimpleNamespace(graph=graph, zalo=zalo, rasa=rasa)


async def post(client: Any, payload: dict) -> int:
    raw = encode(payload)
    async with client.post("/webhooks/messenger", data=raw, headers=sign_messenger(raw, APP_SECRET)) as r:
        return r.status


async def console(client: Any, aiohttp_client: Any) -> Any:
    """A counselor signed in on `client`'s replica, with its live WebSocket open."""
    name = f"c{uuid.uuid4().hex[:8]}"
    async with client.gw.sessions() as session:
        await accounts.create_account(session, name, "counselor", PASSWORD)
        await session.commit()
    browser = await aiohttp_client(client.server)
    async with browser.post("/api/login", json={"username": name, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
    ws = await browser.ws_connect("/api/live", headers={"Origin": f"http://{browser.server.host}:{browser.server.port}"})
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello"
    return ws


async def events_for(ws: Any, user_text: str, timeout: float) -> list[dict]:
    """Live events until one carries `user_text` (or the time is up)."""
    seen: list[dict] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            msg = await ws.receive(timeout=max(0.05, deadline - loop.time()))
        except asyncio.TimeoutError:
            break
        if msg.type != WSMsgType.TEXT:
            seen.append({"closed": msg.type.name, "code": ws.close_code})
            break
        event = msg.json()
        seen.append(event)
        if event.get("type") == "message" and event.get("message", {}).get("text") == user_text:
            break
    return seen


def carries(events: list[dict], text: str) -> bool:
    return any(e.get("type") == "message" and e.get("message", {}).get("text") == text for e in events)


async def test_a_console_on_one_replica_sees_what_another_replica_processed(aiohttp_client, pg_url, redis_url,
                                                                           redis_prefix, fakes):
    settings = gateway_settings(pg_url, fakes, redis_url=redis_url, redis_prefix=redis_prefix)
    a = await replica(aiohttp_client, settings, "fanout-a")
    b = await replica(aiohttp_client, settings, "fanout-b")
    assert await a.gw.fanout.wait_subscribed() and await b.gw.fanout.wait_subscribed()
    ws = await console(a, aiohttp_client)
    user = f"fan-{uuid.uuid4().hex[:8]}"

    assert await post(b, messenger_text_event(user, "xin chào từ B", f"{user}-1")) == 200
    assert carries(await events_for(ws, "xin chào từ B", timeout=5), "xin chào từ B")
    # and A's own events still arrive exactly once (delivered locally, skipped when Redis echoes them)
    assert await post(a, messenger_text_event(user, "xin chào từ A", f"{user}-2")) == 200
    seen = await events_for(ws, "xin chào từ A", timeout=5)
    assert carries(seen, "xin chào từ A")
    later = await events_for(ws, "never", timeout=1.0)
    assert not carries(later, "xin chào từ A"), "an own event was delivered twice"
    assert "hotline_fanout_received_total" in a.gw.metrics.render()
    await ws.close()


async def test_without_redis_the_other_replica_s_events_do_not_arrive(aiohttp_client, pg_url, fakes):
    """The control for the test above: what Redis adds is exactly the cross-replica delivery."""
    settings = gateway_settings(pg_url, fakes)
    a = await replica(aiohttp_client, settings, "alone-a")
    b = await replica(aiohttp_client, settings, "alone-b")
    ws = await console(a, aiohttp_client)
    user = f"alone-{uuid.uuid4().hex[:8]}"
    assert await post(b, messenger_text_event(user, "chỉ ở B", f"{user}-1")) == 200
    assert not carries(await events_for(ws, "chỉ ở B", timeout=2), "chỉ ở B")
    await ws.close()


async def test_a_redis_outage_degrades_to_local_delivery_and_consoles_reload_after(
        aiohttp_client, pg_url, redis_url, redis_prefix, fakes):
    url = make_url(redis_url)
    proxy = await TcpProxy(url.host or "127.0.0.1", url.port or 6379).start()
    proxied = f"redis://127.0.0.1:{proxy.port}/{url.database or 0}"
    settings = gateway_settings(pg_url, fakes, redis_url=proxied, redis_prefix=redis_prefix + "out")
    a = await replica(aiohttp_client, settings, "outage-a")
    assert await a.gw.fanout.wait_subscribed()
    ready = await a.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"]["redis"] is True
    ws = await console(a, aiohttp_client)
    user = f"out-{uuid.uuid4().hex[:8]}"
    try:
        await proxy.cut()
        ready = await a.get("/readyz")
        assert ready.status == 503 and (await ready.json())["checks"]["redis"] is False
        # the replica's own events still reach its consoles while Redis is away
        assert await post(a, messenger_text_event(user, "trong lúc mất Redis", f"{user}-1")) == 200
        assert carries(await events_for(ws, "trong lúc mất Redis", timeout=5), "trong lúc mất Redis")
        assert "fanout_errors_total" in a.gw.metrics.render()
    finally:
        await proxy.restore()
    # back: the listener resubscribes and asks the console to reload what it may have missed
    seen = await events_for(ws, "never", timeout=20)
    assert {"type": "resync"} in seen and seen[-1] == {"closed": "CLOSE", "code": 4000}, seen
    assert await a.gw.fanout.wait_subscribed(10)
    assert (await (await a.get("/readyz")).json())["checks"]["redis"] is True
    await proxy.close()


async def test_readyz_reports_an_unreachable_redis(aiohttp_client, pg_url, fakes):
    settings = gateway_settings(pg_url, fakes, redis_url="redis://127.0.0.1:1/0")
    a = await replica(aiohttp_client, settings, "noredis")
    r = await a.get("/readyz")
    body = await r.json()
    assert r.status == 503 and body["checks"] == {"database": True, "rasa": True, "redis": False}
    # webhooks are still taken: Redis only carries notifications
    assert await post(a, messenger_text_event("noredis-user", "xin chao", "noredis-1")) == 200
