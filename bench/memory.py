"""Gateway memory: resident set size (VmRSS of /proc/<pid>/status), idle and after load.

A gateway on a fake Rasa that answers at once is measured idle; then `PEOPLE` people each send
`ROUNDS` messages through the whole pipeline (webhook, inbox, Rasa, outbox, fake Send API), one
round at a time (every person sends one message, and the round ends when all have their reply),
with RSS sampled every 0.2 s and read after each round: growth that stops after the first
rounds is caches filling, growth in every round would be a leak. `python -m bench` also reports
the RSS of the gateways of the other benchmarks, idle and after their loads.

    .venv/bin/python -m bench.memory
"""
from __future__ import annotations

import asyncio
import time

from bench.messages import ORDINARY
from bench.report import Section, method, print_section
from bench.rig import Rig, bench_command

PEOPLE = 300
ROUNDS = 3
SENDERS = 16
TARGET_MB = 200.0
ROUND_TIMEOUT_S = 90.0


async def sample_rss(rig: Rig, samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(rig.gateway_rss_mb())
        try:
            await asyncio.wait_for(stop.wait(), 0.2)
        except asyncio.TimeoutError:
            pass


async def one_round(rig: Rig, people: int, turn: int) -> int:
    """Every person sends message number `turn`; returns how many got no reply in time."""
    queue = iter(range(people))

    async def sender() -> None:
        for person in queue:
            await rig.messenger(f"mem-{person}", ORDINARY[(person + turn) % len(ORDINARY)])

    await asyncio.gather(*(sender() for _ in range(SENDERS)))
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    while True:
        missing = sum(1 for p in range(people) if rig.arrivals.count(f"mem-{p}") < turn + 1)
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(0.2)


async def measure(rig: Rig, people: int = PEOPLE, rounds: int = ROUNDS) -> Section:
    section = Section("memory", "Gateway memory", bench_command("memory"), method(__doc__))
    started = time.monotonic()
    await asyncio.sleep(2)
    idle = rig.gateway_rss_mb()
    samples: list[float] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(rig, samples, stop))
    after_round: list[float] = []
    missing = 0
    load_started = time.monotonic()
    try:
        for turn in range(rounds):
            missing += await one_round(rig, people, turn)
            after_round.append(rig.gateway_rss_mb())
    finally:
        stop.set()
        await sampler
    seconds = time.monotonic() - load_started
    peak = max(samples + after_round)
    section.add("RSS idle", f"{idle:.0f} MB", f"< {TARGET_MB:.0f} MB", idle < TARGET_MB)
    section.add(f"RSS peak, {people} people × {rounds} messages", f"{peak:.0f} MB", f"< {TARGET_MB:.0f} MB",
                peak < TARGET_MB, f"{people * rounds} messages answered in {seconds:.0f} s, {missing} replies missing")
    section.add("RSS after each round", " → ".join(f"{mb:.0f}" for mb in after_round) + " MB")
    section.raw = {"idle_mb": idle, "peak_mb": peak, "after_round_mb": after_round, "seconds": seconds,
                   "messages": people * rounds, "missing": missing}
    section.seconds = time.monotonic() - started
    return section


async def run() -> Section:
    rig = await Rig.start("memory", real_rasa=False)
    try:
        return await measure(rig)
    finally:
        await rig.close()


if __name__ == "__main__":
    print_section(asyncio.run(run()))
