"""The gateway's own cost per message, Rasa excluded.

A fake Rasa answers at once; one message at a time goes from a signed webhook to the fake Graph
API. The gateway runs under bench/timed_gateway.py, which logs how long each step of the
message's way took; the table shows the median per step and how many times a step runs per
message (`process_conversation` contains the lease steps and `handle`). Also the gateway's CPU
time per message (utime + stime of /proc/<pid>/stat over the run). This is where the end-to-end
overhead comes from.

    .venv/bin/python -m bench.pipeline
"""
from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench.messages import ORDINARY
from bench.report import Section, method, print_section
from bench.rig import Rig, bench_command
from bench.stats import fmt_ms, summary_ms

N = 100


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def step_times(log: Path, start_offset: int) -> dict[str, list[float]]:
    steps: dict[str, list[float]] = defaultdict(list)
    with open(log, "rb") as f:
        f.seek(start_offset)
        for line in f.read().decode(errors="replace").splitlines():
            if line.startswith("STEP "):
                _, name, ms = line.split()
                steps[name].append(float(ms))
    return steps


def sqlite_sessions(path: Path, n: int = 200) -> dict[str, float]:
    """What one short write costs on SQLite: a connection per session (the gateway's engine uses
    SQLAlchemy 1.4's default NullPool for SQLite files: connect, the four PRAGMAs of
    bot/db/session.py, write, commit, close) vs the same write on a connection kept open."""
    import sqlite3

    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER)")
    setup.execute("INSERT OR REPLACE INTO t VALUES (1, 0)")
    setup.commit()
    setup.close()
    pragmas = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
               "PRAGMA busy_timeout=15000")
    started = time.perf_counter()
    for _ in range(n):
        conn = sqlite3.connect(path)
        for pragma in pragmas:
            conn.execute(pragma)
        conn.execute("UPDATE t SET v = v + 1 WHERE id = 1")
        conn.commit()
        conn.close()
    per_session = (time.perf_counter() - started) / n * 1000
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    for _ in range(n):
        conn.execute("UPDATE t SET v = v + 1 WHERE id = 1")
        conn.commit()
    kept = (time.perf_counter() - started) / n * 1000
    conn.close()
    return {"connection_per_session_ms": per_session, "kept_connection_ms": kept}


async def measure(rig: Rig, n: int = N) -> Section:
    section = Section("pipeline", "Gateway cost per message, Rasa excluded", bench_command("pipeline"),
                      method(__doc__))
    started = time.monotonic()
    for i in range(10):  # warm-up: the first message loads langdetect's profiles
        await rig.messenger(f"pipe-warm-{i}", ORDINARY[i])
        await rig.arrivals.wait(f"pipe-warm-{i}", 1, 30)
    await asyncio.sleep(1.5)  # the worker's lease renewal and release of the last message
    offset = rig.gateway.log_path.stat().st_size
    pid = rig.gateway.pid
    assert pid is not None
    cpu0 = cpu_seconds(pid)
    totals, acks = [], []
    for i in range(n):
        psid = f"pipe-{i}"
        status, ack, sent = await rig.messenger(psid, ORDINARY[i % len(ORDINARY)])
        totals.append(await rig.arrivals.wait(psid, 1, 30) - sent)
        acks.append(ack)
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    cpu_per_msg = (cpu_seconds(pid) - cpu0) / n * 1000
    steps = step_times(rig.gateway.log_path, offset)
    total, ack = summary_ms(totals), summary_ms(acks)
    section.add("webhook → fake Graph, Rasa answering at once, p50", fmt_ms(total["p50"]),
                note=f"p99 {fmt_ms(total['p99'])}; the part of the end-to-end latency the gateway adds")
    section.add("webhook acknowledgement, idle, p50", fmt_ms(ack["p50"]), note=f"p99 {fmt_ms(ack['p99'])}")
    section.add("gateway CPU time per message", f"{cpu_per_msg:.1f} ms",
                note="user + system, all threads, including the background loops")
    for name, values in sorted(steps.items(), key=lambda kv: -statistics.median(kv[1]) * len(kv[1])):
        section.add(f"step {name}", f"{statistics.median(values):.1f} ms median",
                    note=f"{len(values) / n:.1f} per message, p90 {sorted(values)[int(len(values) * 0.9) - 1]:.1f} ms")
    if rig.database_url.startswith("sqlite"):
        micro = await asyncio.to_thread(sqlite_sessions, rig.workdir / "micro.db")
        section.add("one SQLite write in its own connection (as with NullPool)",
                    f"{micro['connection_per_session_ms']:.2f} ms",
                    note=f"vs {micro['kept_connection_ms']:.3f} ms on a connection kept open; same file system, "
                         "sqlite3 module without aiosqlite's thread")
        section.raw["sqlite"] = micro
    section.raw.update({"total": total, "ack": ack, "cpu_ms_per_message": cpu_per_msg,
                   "steps": {k: {"median_ms": statistics.median(v), "per_message": len(v) / n} for k, v in steps.items()}})
    section.seconds = time.monotonic() - started
    return section


async def run(pg_server: str | None = None) -> Section:
    rig = await Rig.start("pipeline", real_rasa=False, pg_server=pg_server,
                          gateway_cmd=[sys.executable, "-m", "bench.timed_gateway"])
    try:
        return await measure(rig)
    finally:
        await rig.close()


if __name__ == "__main__":
    print_section(asyncio.run(run(os.environ.get("BENCH_PG_URL") or None)))
