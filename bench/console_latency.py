"""Webhook-to-console latency of risk messages, with Rasa up and with Rasa down.

A counselor account is created with `python -m bot users add`, signs in through `POST /api/login`
and keeps the console's WebSocket `/api/live` open. Signed risk messages, each from a new person,
arrive at a steady rate; the clock runs from the moment the webhook is sent to the moment the
console receives the `message` event of that conversation (published once the message has been
screened, the conversation queued and the transaction committed). Rasa up: half the messages are
caught by the safety screen, half only by the NLU model (they go through Rasa before they are
queued). Rasa down (`kill -9`): screen-caught messages only, which must still reach the console.

    .venv/bin/python -m bench.console_latency
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from sqlalchemy import select

from bench.messages import MODEL_RISK, SCREEN_RISK, model_catches
from bench.report import Section, method, print_section
from bench.rig import Rig, bench_command
from bench.stats import fmt_ms, summary_ms
from bot.db.models import Conversation
from bot.db.session import sync_engine
from tests.support.hotline import STAFF_PASSWORD, add_user

N_PER_PHASE = 200
RATE = 5.0  # risk messages per second (18,000 an hour)
SETTLE_S = 10.0
TARGET_P99_MS = 1000.0


class Console:
    """A signed-in counselor's live WebSocket: first `message` event time per conversation."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.first_seen: dict[int, float] = {}
        self.queued: set[int] = set()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task | None = None

    async def open(self, username: str) -> None:
        base = self.rig.gateway.url
        async with self.rig.http.post(base + "/api/login", json={"username": username, "password": STAFF_PASSWORD}) as r:
            if r.status != 200:
                raise RuntimeError(f"login answered {r.status}: {await r.text()}")
        self.ws = await self.rig.http.ws_connect(base + "/api/live", headers={"Origin": base}, heartbeat=20)
        hello = await self.ws.receive_json(timeout=10)
        if hello.get("type") != "hello":
            raise RuntimeError(f"unexpected first live event {hello!r}")
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT or msg.data == "pong":
                continue
            at = time.perf_counter()
            event: dict[str, Any] = json.loads(msg.data)
            conv = event.get("conversation_id")
            if event.get("type") == "message" and (event.get("message") or {}).get("direction") == "in":
                self.first_seen.setdefault(conv, at)
            elif event.get("type") == "queue" and event.get("state") == "queued":
                self.queued.add(conv)

    async def close(self) -> None:
        if self.reader:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()


def conversation_ids(database_url: str, psids: list[str]) -> dict[str, int]:
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Conversation.user_id, Conversation.id)
                                .where(Conversation.channel == "messenger", Conversation.user_id.in_(psids)))
            return {user: conv for user, conv in rows}
    finally:
        engine.dispose()


async def phase(rig: Rig, console: Console, texts: list[str], n: int, tag: str) -> dict[str, Any]:
    sent: dict[str, float] = {}
    started = time.perf_counter()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, started + i / RATE - time.perf_counter()))
        psid = f"console-{tag}-{i}"
        status, _, at = await rig.messenger(psid, texts[i % len(texts)])
        if status == 200:
            sent[psid] = at

    await asyncio.gather(*(one(i) for i in range(n)))
    ids = await asyncio.to_thread(conversation_ids, rig.database_url, list(sent))
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline and any(c not in console.first_seen for c in ids.values()):
        await asyncio.sleep(0.1)
    latencies = [console.first_seen[ids[p]] - t for p, t in sent.items() if ids.get(p) in console.first_seen]
    return {"summary": summary_ms(latencies), "sent": len(sent), "seen": len(latencies),
            "queued": sum(1 for c in ids.values() if c in console.queued)}


async def measure(rig: Rig, n: int = N_PER_PHASE) -> Section:
    section = Section("console", "Risk message to the console", bench_command("console_latency"),
                      method(__doc__))
    started = time.monotonic()
    assert rig.rasa is not None
    await asyncio.to_thread(add_user, rig.database_url, "bench-counselor", "counselor")
    model_only = await asyncio.to_thread(model_catches, rig.rasa.url, MODEL_RISK)
    mixed = [t for pair in zip(SCREEN_RISK, model_only or SCREEN_RISK) for t in pair]
    console = Console(rig)
    await console.open("bench-counselor")
    try:
        up = await phase(rig, console, mixed, n, "up")
        rig.rasa.kill()
        down = await phase(rig, console, list(SCREEN_RISK), n, "down")
    finally:
        await console.close()
    for name, result in (("Rasa up", up), ("Rasa down", down)):
        s = result["summary"]
        complete = result["seen"] == result["sent"] == n
        section.add(f"p99, {name}", fmt_ms(s["p99"]), f"< {TARGET_P99_MS:.0f} ms", s["p99"] < TARGET_P99_MS and complete,
                    f"p50 {fmt_ms(s['p50'])}, max {fmt_ms(s['max'])}; {result['seen']} of {n} reached the console, "
                    f"{result['queued']} queued")
    section.notes += [
        f"{n} risk messages per phase at {RATE:.0f} per second, each from a new person.",
        "Model-only risk wording used (the screen misses it, this model hands it off): "
        + (", ".join(f"“{t}”" for t in model_only) or "none found; screen-caught messages only"),
    ]
    section.raw = {"up": up, "down": down, "model_only": model_only}
    section.seconds = time.monotonic() - started
    return section


async def run() -> Section:
    rig = await Rig.start("console", real_rasa=True)
    try:
        return await measure(rig)
    finally:
        await rig.close()


if __name__ == "__main__":
    print_section(asyncio.run(run()))
