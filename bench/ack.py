"""Webhook acknowledgement latency while Rasa is busy.

The gateway runs as a real process; its Rasa is a fake that takes 0.5 s per message, so the
inbox worker is busy all along (8 conversations at a time waiting on "Rasa", a growing backlog
of pending messages, the outbox sending replies) while signed webhooks keep arriving.
Two loads: paced (a fixed arrival rate with several senders, the operating point the target is
about) and saturating (8 senders each posting the next webhook as soon as the last one is
answered: how many webhooks per second the gateway can take at all). Latency is measured by the
sender, from the first byte sent to the last byte of the answer. Afterwards every acknowledged
webhook must be in the database (nothing acknowledged is lost).

    .venv/bin/python -m bench.ack
"""
from __future__ import annotations

import asyncio
import math
import os
import time
from typing import Any

from sqlalchemy import func, select

from bench.messages import ORDINARY
from bench.report import Section, method, print_section
from bench.rig import Rig, bench_command
from bench.stats import fmt_ms, summary_ms
from bot.db.models import Message
from bot.db.session import sync_engine

PACED_N = 1000
PACED_RATE = 20.0  # webhooks per second: 72,000 an hour, far above the hotline's real traffic
SATURATING_N = 1000
SENDERS = 8
TURNS_PER_USER = 5
RASA_DELAY_S = 0.5
TARGET_P99_MS = 20.0


def _user(i: int, phase: str) -> tuple[str, str]:
    """Every fifth user writes on Zalo, the others on Messenger; each writes TURNS_PER_USER times."""
    n = i // TURNS_PER_USER
    return ("zalo" if n % 5 == 4 else "messenger"), f"ack-{phase}-{n}"


async def _send(rig: Rig, i: int, phase: str, statuses: list[int], latencies: list[float]) -> None:
    channel, user = _user(i, phase)
    text = ORDINARY[i % len(ORDINARY)]
    post = rig.zalo_text if channel == "zalo" else rig.messenger
    status, seconds, _ = await post(user, text)
    statuses.append(status)
    latencies.append(seconds)


async def paced(rig: Rig, n: int, rate: float, phase: str) -> dict[str, Any]:
    """Open loop: webhook i leaves at start + i / rate whatever happened to the previous ones."""
    statuses: list[int] = []
    latencies: list[float] = []
    started = time.perf_counter()

    async def at(i: int) -> None:
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        await _send(rig, i, phase, statuses, latencies)

    await asyncio.gather(*(at(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    return {"statuses": statuses, "latencies": latencies, "elapsed": elapsed, "rate": n / elapsed}


async def saturating(rig: Rig, n: int, senders: int, phase: str) -> dict[str, Any]:
    """Closed loop: each sender posts its next webhook as soon as the previous one is answered."""
    statuses: list[int] = []
    latencies: list[float] = []
    counter = iter(range(n))
    started = time.perf_counter()

    async def sender() -> None:
        for i in counter:
            await _send(rig, i, phase, statuses, latencies)

    await asyncio.gather(*(sender() for _ in range(senders)))
    elapsed = time.perf_counter() - started
    return {"statuses": statuses, "latencies": latencies, "elapsed": elapsed, "rate": n / elapsed}


def count_inbound(database_url: str) -> int:
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Message.__table__)
                                    .where(Message.__table__.c.direction == "in")).scalar_one())
    finally:
        engine.dispose()


async def gateway_metric(rig: Rig, name: str) -> float | None:
    async with rig.http.get(rig.gateway.url + "/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith(f"hotline_{name} ") or line.startswith(f"hotline_{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    return None


async def run(paced_n: int = PACED_N, saturating_n: int = SATURATING_N, pg_server: str | None = None) -> Section:
    section = Section("ack", "Webhook acknowledgement while Rasa is busy", bench_command("ack"), method(__doc__))
    started = time.monotonic()
    rig = await Rig.start("ack", real_rasa=False, rasa_delay_s=RASA_DELAY_S, pg_server=pg_server)
    try:
        await asyncio.sleep(1)
        idle_mb = rig.gateway_rss_mb()
        await paced(rig, 50, 50.0, "warmup")
        slow = await paced(rig, paced_n, PACED_RATE, "paced")
        backlog = await gateway_metric(rig, "inbox_pending")
        fast = await saturating(rig, saturating_n, SENDERS, "saturating")
        await asyncio.sleep(0.5)
        stored = await asyncio.to_thread(count_inbound, rig.database_url)
        acked = sum(1 for r in (slow, fast) for s in r["statuses"] if s == 200) + 50
        rasa_calls = len(rig.fake_rasa.received) if rig.fake_rasa else 0
        after_mb = rig.gateway_rss_mb()
    finally:
        await rig.close()
    p, s = summary_ms(slow["latencies"]), summary_ms(fast["latencies"])
    section.add(f"ack p99, paced {PACED_RATE:.0f}/s × {paced_n}", fmt_ms(p["p99"]), f"< {TARGET_P99_MS:.0f} ms",
                p["p99"] < TARGET_P99_MS, f"p50 {fmt_ms(p['p50'])}, p90 {fmt_ms(p['p90'])}, max {fmt_ms(p['max'])}")
    section.add(f"ack p99, saturating, {SENDERS} senders × {saturating_n}", fmt_ms(s["p99"]),
                note=f"p50 {fmt_ms(s['p50'])}, max {fmt_ms(s['max'])}; {fast['rate']:.0f} webhooks/s sustained")
    section.add("acknowledged webhooks stored", f"{stored} of {acked}", "all", stored == acked)
    section.add("non-200 answers", str(sum(1 for r in (slow, fast) for x in r["statuses"] if x != 200)))
    section.notes += [
        f"Rasa busy: the fake Rasa answers after {RASA_DELAY_S} s; it received {rasa_calls} messages during the run "
        f"and {backlog:.0f} messages were still waiting for it after the paced load." if backlog is not None else
        f"Rasa busy: the fake Rasa answers after {RASA_DELAY_S} s; it received {rasa_calls} messages.",
        f"Senders: paced = one task per webhook started on schedule ({PACED_RATE:.0f}/s achieved "
        f"{slow['rate']:.0f}/s); saturating = {SENDERS} closed-loop senders. Users write {TURNS_PER_USER} messages "
        "each; every fifth user is on Zalo.",
        f"Gateway RSS: {idle_mb:.0f} MB idle, {after_mb:.0f} MB after this load.",
    ]
    section.raw = {"paced": p, "saturating": s, "saturating_rate": fast["rate"], "paced_rate": slow["rate"],
                   "stored": stored, "acked": acked, "rss_idle_mb": idle_mb, "rss_after_mb": after_mb,
                   "backlog_after_paced": backlog if backlog is None or not math.isnan(backlog) else None}
    section.seconds = time.monotonic() - started
    return section


if __name__ == "__main__":
    print_section(asyncio.run(run(pg_server=os.environ.get("BENCH_PG_URL") or None)))
