"""Sustained load through one and through two gateway replicas: PostgreSQL, Redis, the production
configuration.

Each configuration gets a fresh PostgreSQL database; the gateways run as real processes
(`python -m bot`) with REDIS_URL set (live fan-out between replicas). Rasa is a fake in the
benchmark's own process that answers at once (or after `--rasa-delay-ms`), so what is measured is
the gateway: webhook verification and storage, the inbox worker with its conversation leases, the
outbox, the fan-out. The load is closed-loop: `CONCURRENCY` people each send their next message as
soon as the reply to the previous one has reached the fake Graph API, for `DURATION_S` seconds
after a warm-up; with two replicas every person's messages alternate between them (the hardest
case for per-conversation order). Measured: replies per second, reply latency (webhook sent →
reply accepted by the fake Graph), acknowledgement latency, webhook-to-console latency (a
counselor signed in on replica 1 keeps `/api/live` open: webhook sent → the message's live event;
with two replicas half of them travel through Redis), and each gateway's resident memory (peak of
samples every 0.5 s). Every reply is checked: each message answered once, in order. Each
configuration runs twice, in the order 1, 2, 2, 1 replicas (a fresh database each time), and the
two runs are pooled, so that other work on the machine weighs on both configurations alike.

    .venv/bin/python -m bench.load [--pg postgresql://postgres@127.0.0.1:5432/postgres]
                                   [--redis redis://127.0.0.1:6379/15] [--write]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import aiohttp

from bench.report import Section, method, print_section, put_block, section_block
from bench.rig import Arrivals
from bench.stats import fmt_ms, machine, summary_ms
from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import messenger_text_event
from tests.fakes.rasa import FakeRasa
from tests.fakes.zalo import FakeZalo
from tests.support.hotline import (STAFF_PASSWORD, add_user, create_pg_database, drop_pg_database,
                                   fake_platform_env, gateway_env, migrate, signed_messenger)
from tests.support.processes import PROJECT_ROOT, ManagedProcess, Stack

CONCURRENCY = 16
WARMUP_S = 3.0
DURATION_S = 15.0
REPLY_TIMEOUT_S = 30.0
COMMAND = ".venv/bin/python -m bench.load"


@dataclass
class Run:
    replicas: int
    replies: int = 0
    seconds: float = 0.0
    reply_s: list[float] = field(default_factory=list)
    ack_s: list[float] = field(default_factory=list)
    console_s: list[float] = field(default_factory=list)
    console_via_redis_s: list[float] = field(default_factory=list)
    rss_peak_mb: list[float] = field(default_factory=list)
    rss_idle_mb: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.replies / self.seconds if self.seconds else 0.0


class Console:
    """A counselor's `/api/live` on replica 1: when each inbound message's event arrived."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.seen: dict[str, float] = {}
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task | None = None

    async def open(self, username: str) -> None:
        async with self.http.post(self.base + "/api/login", json={"username": username,
                                                                  "password": STAFF_PASSWORD}) as r:
            if r.status != 200:
                raise RuntimeError(f"console login answered {r.status}")
        self.ws = await self.http.ws_connect(self.base + "/api/live", headers={"Origin": self.base}, heartbeat=20)
        await self.ws.receive_json(timeout=10)  # hello
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT or msg.data == "pong":
                continue
            event = json.loads(msg.data)
            message = event.get("message") or {}
            if event.get("type") == "message" and message.get("direction") == "in" and message.get("text"):
                self.seen.setdefault(message["text"], time.perf_counter())

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        if self.ws is not None:
            await self.ws.close()


async def sample_rss(gateways: list[ManagedProcess], peaks: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for i, gw in enumerate(gateways):
            try:
                peaks[i] = max(peaks[i], gw.rss_kb() / 1024)
            except Exception:  # the process is gone: the run reports it elsewhere
                pass
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass


async def one_configuration(replicas: int, pg_server: str, redis_url: str, rasa_delay_s: float,
                            concurrency: int, duration_s: float) -> Run:
    run = Run(replicas)
    database_url = await asyncio.to_thread(create_pg_database, pg_server, f"bench_load_{replicas}")
    arrivals = Arrivals()
    graph, zalo, rasa = FakeGraph(timeout_delay=5), FakeZalo(timeout_delay=5), FakeRasa()
    rasa.delay_s = rasa_delay_s
    graph.app.middlewares.append(arrivals.middleware())
    stack = Stack(f"bench-load-{replicas}", base_env={"DATABASE_URL": database_url})
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128), cookie_jar=aiohttp.CookieJar(unsafe=True))
    console: Console | None = None
    prefix = f"benchload{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.to_thread(migrate, database_url)
        counselor = f"load{uuid.uuid4().hex[:6]}"
        await asyncio.to_thread(add_user, database_url, counselor, "counselor")
        for fake in (graph, zalo, rasa):
            await fake.start()
        gateways = [stack.add_gateway(f"gateway{n}", env=gateway_env(
            database_url=database_url, rasa_url=rasa.url, REDIS_URL=redis_url, REDIS_PREFIX=prefix,
            LOG_LEVEL="WARNING", **fake_platform_env(graph, zalo))) for n in range(1, replicas + 1)]
        launched = stack.launch()  # from this (the main) thread: the processes die with it
        await asyncio.to_thread(stack.wait_ready, launched)
        await asyncio.sleep(1.0)
        run.rss_idle_mb = [gw.rss_kb() / 1024 for gw in gateways]
        console = Console(http, gateways[0].url)
        await console.open(counselor)

        peaks = list(run.rss_idle_mb)
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(gateways, peaks, stop))
        tag = uuid.uuid4().hex[:6]
        sent_at: dict[str, float] = {}
        sent_to: dict[str, int] = {}
        answers: dict[str, list[str]] = defaultdict(list)
        measuring = {"from": time.perf_counter() + WARMUP_S, "until": time.perf_counter() + WARMUP_S + duration_s}

        async def person(p: int) -> None:
            psid = f"load{tag}-{p}"
            turn = 0
            while time.perf_counter() < measuring["until"]:
                words = f"cau hoi {p} so {turn} {tag}"
                target = (p + turn) % replicas
                raw, headers = signed_messenger(messenger_text_event(psid, words, f"{psid}-{turn}"))
                before = arrivals.count(psid)
                started = time.perf_counter()
                async with http.post(gateways[target].url + "/webhooks/messenger", data=raw, headers=headers) as r:
                    await r.read()
                    status = r.status
                acked = time.perf_counter()
                if status != 200:
                    run.errors.append(f"HTTP {status}")
                    await asyncio.sleep(0.1)
                    continue
                sent_at[words], sent_to[words] = started, target
                try:
                    arrived = await arrivals.wait(psid, before + 1, REPLY_TIMEOUT_S)
                except asyncio.TimeoutError:
                    run.errors.append("no reply within 30 s")
                    return
                answers[psid].append(words)
                if measuring["from"] <= started and arrived <= measuring["until"]:
                    run.replies += 1
                    run.reply_s.append(arrived - started)
                    run.ack_s.append(acked - started)
                turn += 1

        await asyncio.gather(*(person(p) for p in range(concurrency)))
        run.seconds = duration_s
        await asyncio.sleep(2.0)  # late console events, and any doubled reply
        stop.set()
        await sampler
        run.rss_peak_mb = peaks
        for words, started in sent_at.items():
            seen = console.seen.get(words)
            if seen is not None and started >= measuring["from"]:
                (run.console_via_redis_s if sent_to[words] != 0 else run.console_s).append(seen - started)
        # every message answered once, in order (the fake Rasa echoes each text)
        for psid, words in answers.items():
            delivered = [t.split(" bot: ", 1)[-1] for t in graph.texts_to(psid)]
            if delivered != words:
                run.errors.append(f"{psid}: replies {len(delivered)} for {len(words)} messages or out of order")
    finally:
        if console is not None:
            await console.close()
        await http.close()
        await asyncio.to_thread(stack.stop_all)
        for fake in (graph, zalo, rasa):
            await fake.close()
        await asyncio.to_thread(drop_pg_database, pg_server, database_url)
    return run


def _row(section: Section, run: Run) -> None:
    name = "1 gateway" if run.replicas == 1 else f"{run.replicas} gateways"
    reply, ack = summary_ms(run.reply_s), summary_ms(run.ack_s)
    section.add(f"{name}: replies per second", f"{run.rate:.0f}/s", note=f"{run.replies} in {run.seconds:.0f} s")
    section.add(f"{name}: reply latency p50 / p99", f"{fmt_ms(reply['p50'])} / {fmt_ms(reply['p99'])}")
    section.add(f"{name}: acknowledgement p50 / p99", f"{fmt_ms(ack['p50'])} / {fmt_ms(ack['p99'])}")
    local = summary_ms(run.console_s)
    section.add(f"{name}: webhook → console p50 / p99" + (", same replica" if run.replicas > 1 else ""),
                f"{fmt_ms(local['p50'])} / {fmt_ms(local['p99'])}", note=f"n={local['n']}")
    if run.replicas > 1:
        remote = summary_ms(run.console_via_redis_s)
        section.add(f"{name}: webhook → console p50 / p99, other replica via Redis",
                    f"{fmt_ms(remote['p50'])} / {fmt_ms(remote['p99'])}", note=f"n={remote['n']}")
    section.add(f"{name}: RSS per gateway, idle → peak",
                ", ".join(f"{i:.0f} → {p:.0f} MB" for i, p in zip(run.rss_idle_mb, run.rss_peak_mb)),
                "< 200 MB", max(run.rss_peak_mb or [0]) < 200)
    section.add(f"{name}: messages answered once and in order", "all" if not run.errors else
                f"{len(run.errors)} problems: {'; '.join(run.errors[:3])}", "all", not run.errors)


def merge(runs: list[Run]) -> Run:
    """Several runs of one configuration as one: replies and seconds added, samples pooled, memory peaks."""
    out = Run(runs[0].replicas)
    for r in runs:
        out.replies += r.replies
        out.seconds += r.seconds
        for name in ("reply_s", "ack_s", "console_s", "console_via_redis_s", "errors"):
            getattr(out, name).extend(getattr(r, name))
    out.rss_idle_mb = [min(r.rss_idle_mb[i] for r in runs) for i in range(len(runs[0].rss_idle_mb))]
    out.rss_peak_mb = [max(r.rss_peak_mb[i] for r in runs) for i in range(len(runs[0].rss_peak_mb))]
    return out


async def run(pg_server: str, redis_url: str, rasa_delay_s: float = 0.0, concurrency: int = CONCURRENCY,
              duration_s: float = DURATION_S, rounds: int = 2) -> Section:
    section = Section("load", "Sustained load through one and two gateway replicas (PostgreSQL, Redis)", COMMAND,
                      method(__doc__))
    started = time.monotonic()
    # ABBA: 1, 2, 2, 1 replicas, so that drift (other work on the machine) weighs on both alike
    order = [1, 2, 2, 1] if rounds > 1 else [1, 2]
    measured = [await one_configuration(n, pg_server, redis_url, rasa_delay_s, concurrency, duration_s)
                for n in order]
    runs = [merge([r for r in measured if r.replicas == n]) for n in (1, 2)]
    for r in runs:
        _row(section, r)
    one, two = runs[0].rate, runs[-1].rate
    section.notes.append(f"{concurrency} people in closed loop, {duration_s:.0f} s measured after {WARMUP_S:.0f} s "
                         f"warm-up, {len(order) // 2} run(s) of each configuration in the order "
                         f"{', '.join(map(str, order))} replicas (figures pooled); fake Rasa delay {rasa_delay_s * 1000:.0f} ms. Two replicas answered "
                         f"{two / one if one else float('nan'):.2f}× the messages per second of one. A gateway is one "
                         "Python process, so it uses at most one core; here both replicas, PostgreSQL, Redis and "
                         "the load generator (which also plays Rasa, Graph and the console) share the machine's "
                         "cores, so neither number is a ceiling for a replica on a machine of its own.")
    section.raw = {"runs": [{"replicas": r.replicas, "rate": r.rate, "replies": r.replies, "seconds": r.seconds,
                             "rss_idle_mb": r.rss_idle_mb, "rss_peak_mb": r.rss_peak_mb, "errors": r.errors}
                            for r in measured]}
    section.seconds = time.monotonic() - started
    return section


def write_section(section: Section, info: dict[str, str]) -> str:
    """Put the section (and the machine it ran on) into docs/BENCHMARKS.md, replacing an earlier one."""
    return put_block("bench.load", section_block(section, info))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--pg", default=os.environ.get("BENCH_PG_URL") or os.environ.get("TEST_DATABASE_URL"),
                   help="a PostgreSQL server URL (a fresh database is created on it per run); "
                        "default BENCH_PG_URL or TEST_DATABASE_URL")
    p.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL") or os.environ.get("TEST_REDIS_URL"),
                   help="a Redis URL; default BENCH_REDIS_URL or TEST_REDIS_URL")
    p.add_argument("--rasa-delay-ms", type=float, default=0.0)
    p.add_argument("--concurrency", type=int, default=CONCURRENCY)
    p.add_argument("--duration", type=float, default=DURATION_S)
    p.add_argument("--rounds", type=int, default=2, help="2: run 1, 2, 2, 1 replicas; 1: run 1, 2")
    p.add_argument("--write", action="store_true",
                   help="put the results into docs/BENCHMARKS.md (replacing an earlier bench.load section)")
    args = p.parse_args(argv)
    if not args.pg or not args.redis:
        p.error("a PostgreSQL server (--pg or BENCH_PG_URL) and Redis (--redis or BENCH_REDIS_URL) are needed")
    info = machine()
    section = asyncio.run(run(args.pg, args.redis, args.rasa_delay_ms / 1000, args.concurrency, args.duration,
                              args.rounds))
    print_section(section)
    if args.write:
        print(f"wrote {write_section(section, info)}")
    return 0 if section.all_met is not False else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
