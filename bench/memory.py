"""Gateway memory: resident set size (VmRSS of /proc/<pid>/status) idle and after load.

Standalone: a gateway on a fake Rasa that answers at once is started, measured idle, then
`CONVERSATIONS` people each send `TURNS` messages through the whole pipeline (webhook, inbox,
Rasa, outbox, fake Send API), sampling RSS every 0.2 s; measured again once every reply has been
delivered. `python -m bench` also reports the RSS of the gateways of the other benchmarks, idle
and after their loads.

    .venv/bin/python -m bench.memory
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.messages import ORDINARY
from bench.report import Section, print_section
from bench.rig import Rig, bench_command

CONVERSATIONS = 1000
TURNS = 3
SENDERS = 16
TARGET_MB = 200.0
DRAIN_TIMEOUT_S = 120.0


async def sample_rss(rig: Rig, samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(rig.gateway_rss_mb())
        try:
            await asyncio.wait_for(stop.wait(), 0.2)
        except asyncio.TimeoutError:
            pass


async def load(rig: Rig, conversations: int, turns: int) -> dict[str, Any]:
    """Every person sends `turns` messages; returns when every one has been answered."""
    queue = iter((c, t) for t in range(turns) for c in range(conversations))
    started = time.perf_counter()

    async def sender() -> None:
        for c, t in queue:
            psid = f"mem-{c}"
            await rig.messenger(psid, ORDINARY[(c + t) % len(ORDINARY)])

    await asyncio.gather(*(sender() for _ in range(SENDERS)))
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    missing = conversations
    while time.monotonic() < deadline:
        missing = sum(1 for c in range(conversations) if rig.arrivals.count(f"mem-{c}") < turns)
        if not missing:
            break
        await asyncio.sleep(0.2)
    return {"seconds": time.perf_counter() - started, "missing": missing}


async def measure(rig: Rig, conversations: int = CONVERSATIONS, turns: int = TURNS) -> tuple[Section, dict[str, Any]]:
    section = Section("memory", "Gateway memory", bench_command("memory"), __doc__.split("\n\n")[1])
    started = time.monotonic()
    await asyncio.sleep(2)
    idle = rig.gateway_rss_mb()
    samples: list[float] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(rig, samples, stop))
    result = await load(rig, conversations, turns)
    stop.set()
    await sampler
    await asyncio.sleep(1)
    after = rig.gateway_rss_mb()
    peak = max(samples + [after])
    section.add("RSS idle", f"{idle:.0f} MB", f"< {TARGET_MB:.0f} MB", idle < TARGET_MB)
    section.add(f"RSS peak during {conversations} people × {turns} messages", f"{peak:.0f} MB", f"< {TARGET_MB:.0f} MB",
                peak < TARGET_MB, f"{conversations * turns} messages answered in {result['seconds']:.0f} s, "
                f"{result['missing']} people still waiting for a reply")
    section.add("RSS after that load", f"{after:.0f} MB", f"< {TARGET_MB:.0f} MB", after < TARGET_MB)
    raw = {"idle_mb": idle, "peak_mb": peak, "after_mb": after, **result}
    section.raw = raw
    section.seconds = time.monotonic() - started
    return section, raw


async def run() -> Section:
    rig = await Rig.start("memory", real_rasa=False)
    try:
        section, _ = await measure(rig)
        return section
    finally:
        await rig.close()


if __name__ == "__main__":
    print_section(asyncio.run(run()))
