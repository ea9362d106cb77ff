"""Bot reply latency and throughput through the gateway vs Rasa's own REST channel, same model,
same run.

A real Rasa server and action server serve both paths. Through the gateway: a signed webhook to
`python -m bot`, which stores it, answers 200, has the inbox worker ask Rasa and the outbox send
the reply to the fake Graph API; the clock stops when the reply reaches the fake Graph. Direct:
the same text as a POST to Rasa's `/webhooks/rest/webhook` (with the metadata the gateway sends);
the clock stops when Rasa's answer has been read. Messages are ordinary questions (Vietnamese with
and without diacritics, English), only those that get one reply and no handoff on this model
(checked against Rasa first), each user asking several in a row. Low load: one message at a
time, alternating between the two paths. Throughput: a fixed number of concurrent users, each
sending its next message as soon as the reply to the last one arrived; rounds alternate
direct, gateway, gateway, direct so that drift (other processes on the machine) hits both.

    .venv/bin/python -m bench.e2e
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from bench.messages import ORDINARY, one_bubble_answers
from bench.report import Section, method, print_section
from bench.rig import Rig, bench_command
from bench.stats import fmt_ms, summary_ms
from bot.language import detect_language

LOW_LOAD_N = 100  # per path
TURNS_PER_USER = 5
CONCURRENCY = 8
ROUND_N = 150  # messages per throughput round; 2 rounds per path
REPLY_TIMEOUT_S = 30.0
TARGET_ADDED_P50_MS = 10.0
TARGET_RATIO = 0.90

Send = Callable[[str, str], Awaitable[float]]


@dataclass
class Paths:
    rig: Rig
    acks_under_load: list[float] = field(default_factory=list)

    async def direct(self, user: str, text: str) -> float:
        assert self.rig.rasa is not None
        body = {"sender": f"direct-{user}", "message": text,
                "metadata": {"channel": "messenger", "language": detect_language(text, None)}}
        started = time.perf_counter()
        async with self.rig.http.post(self.rig.rasa.url + "/webhooks/rest/webhook", json=body) as r:
            replies = await r.json(content_type=None)
        elapsed = time.perf_counter() - started
        if r.status != 200 or not replies:
            raise RuntimeError(f"Rasa answered {r.status}: {replies!r}")
        return elapsed

    async def gateway(self, user: str, text: str, record_ack: bool = False) -> float:
        psid = f"gw-{user}"
        before = self.rig.arrivals.count(psid)
        status, ack, sent = await self.rig.messenger(psid, text)
        if status != 200:
            raise RuntimeError(f"webhook answered {status}")
        if record_ack:
            self.acks_under_load.append(ack)
        arrived = await self.rig.arrivals.wait(psid, before + 1, REPLY_TIMEOUT_S)
        return arrived - sent

    async def gateway_loaded(self, user: str, text: str) -> float:
        return await self.gateway(user, text, record_ack=True)


async def low_load(paths: Paths, messages: list[str], n: int, tag: str) -> tuple[list[float], list[float]]:
    direct: list[float] = []
    gateway: list[float] = []
    for i in range(n):
        user, text = f"{tag}-{i // TURNS_PER_USER}", messages[i % len(messages)]
        first, second = (paths.direct, paths.gateway) if i % 2 == 0 else (paths.gateway, paths.direct)
        for send in (first, second):
            (direct if send == paths.direct else gateway).append(await send(user, text))
            await asyncio.sleep(0.02)
    return direct, gateway


async def closed_loop(send: Send, messages: list[str], total: int, users: int, tag: str) -> dict[str, float]:
    """`users` concurrent users; each sends its next message when the reply to the last arrived."""
    latencies: list[float] = []
    failures = 0
    counter = iter(range(total))

    async def user(u: int) -> None:
        nonlocal failures
        turn = 0
        for i in counter:
            try:
                latencies.append(await send(f"{tag}-u{u}-{turn // 20}", messages[(i * 7 + u) % len(messages)]))
            except (asyncio.TimeoutError, RuntimeError):
                failures += 1
            turn += 1

    started = time.perf_counter()
    await asyncio.gather(*(user(u) for u in range(users)))
    elapsed = time.perf_counter() - started
    return {"count": len(latencies), "failures": failures, "elapsed": elapsed, "rate": len(latencies) / elapsed,
            "latencies": latencies}  # type: ignore[dict-item]


async def measure(rig: Rig, low_n: int = LOW_LOAD_N, round_n: int = ROUND_N) -> Section:
    section = Section("e2e", "Bot reply end to end: gateway vs Rasa's REST channel", bench_command("e2e"),
                      method(__doc__))
    started = time.monotonic()
    assert rig.rasa is not None
    messages = await asyncio.to_thread(one_bubble_answers, rig.rasa.url, ORDINARY)
    paths = Paths(rig)
    await low_load(paths, messages, 20, "warmup")
    direct_low, gateway_low = await low_load(paths, messages, low_n, "low")
    rounds: dict[str, list[dict[str, float]]] = {"direct": [], "gateway": []}
    for r, name in enumerate(("direct", "gateway", "gateway", "direct")):
        send = paths.direct if name == "direct" else paths.gateway_loaded
        rounds[name].append(await closed_loop(send, messages, round_n, CONCURRENCY, f"tp{r}"))
    rss_after = rig.gateway_rss_mb()

    d, g = summary_ms(direct_low), summary_ms(gateway_low)
    added_p50 = g["p50"] - d["p50"]
    rate = {name: sum(x["count"] for x in rs) / sum(x["elapsed"] for x in rs) for name, rs in rounds.items()}
    ratio = rate["gateway"] / rate["direct"]
    tp_lat = {name: summary_ms([v for x in rs for v in x["latencies"]]) for name, rs in rounds.items()}  # type: ignore[misc]
    failures = {name: sum(int(x["failures"]) for x in rs) for name, rs in rounds.items()}
    acks = summary_ms(paths.acks_under_load)

    section.add("added latency at p50, low load", fmt_ms(added_p50), f"< {TARGET_ADDED_P50_MS:.0f} ms",
                added_p50 < TARGET_ADDED_P50_MS,
                f"gateway p50 {fmt_ms(g['p50'])} vs Rasa p50 {fmt_ms(d['p50'])}, {low_n} messages each")
    section.add("low load p99, gateway / Rasa", f"{fmt_ms(g['p99'])} / {fmt_ms(d['p99'])}",
                note=f"added at p99 {fmt_ms(g['p99'] - d['p99'])}")
    section.add(f"throughput ratio at concurrency {CONCURRENCY}", f"{ratio * 100:.0f} %", f"≥ {TARGET_RATIO * 100:.0f} %",
                ratio >= TARGET_RATIO, f"gateway {rate['gateway']:.1f} msg/s vs Rasa {rate['direct']:.1f} msg/s")
    section.add(f"latency at concurrency {CONCURRENCY}, p50 gateway / Rasa",
                f"{fmt_ms(tp_lat['gateway']['p50'])} / {fmt_ms(tp_lat['direct']['p50'])}",
                note=f"p99 {fmt_ms(tp_lat['gateway']['p99'])} / {fmt_ms(tp_lat['direct']['p99'])}")
    section.add("webhook ack under this load (real Rasa busy)", f"p99 {fmt_ms(acks['p99'])}",
                note=f"p50 {fmt_ms(acks['p50'])}, {acks['n']} webhooks")
    section.add("replies missing (timeout 30 s) gateway / Rasa", f"{failures['gateway']} / {failures['direct']}")
    section.notes += [
        f"{len(messages)} of {len(ORDINARY)} candidate messages kept (one reply, no handoff on this model): "
        + ", ".join(f"“{m}”" for m in messages[:6]) + ", …",
        "Throughput rounds: " + "; ".join(f"{name} {x['count']:.0f} msgs in {x['elapsed']:.1f} s"
                                            for name in ("direct", "gateway") for x in rounds[name]),
        f"Gateway RSS after this load: {rss_after:.0f} MB.",
    ]
    section.raw = {"low_direct": d, "low_gateway": g, "added_p50_ms": added_p50, "rate": rate, "ratio": ratio,
                   "throughput_latency": tp_lat, "failures": failures, "acks_under_load": acks,
                   "messages": messages, "rss_after_mb": rss_after}
    section.seconds = time.monotonic() - started
    return section


async def run() -> Section:
    rig = await Rig.start("e2e", real_rasa=True)
    try:
        return await measure(rig)
    finally:
        await rig.close()


if __name__ == "__main__":
    print_section(asyncio.run(run()))
