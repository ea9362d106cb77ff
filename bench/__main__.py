"""`python -m bench` (`make bench`): every benchmark, then docs/BENCHMARKS.md and
var/bench/results.json.

Order: webhook acknowledgement (gateway + fake Rasa), the gateway's own cost per message,
memory (gateway + fake Rasa), then one stack with a real Rasa and action server for the
end-to-end comparison and the console latency (which ends by killing Rasa). Each benchmark stops
the processes it started; the whole run takes about 6-8 minutes on 2 cores.

    .venv/bin/python -m bench [--only ack,e2e,...] [--pg postgresql://user@host:5432/postgres]
    .venv/bin/python -m bench --render    # the page again from var/bench/results.json

`--pg` (or BENCH_PG_URL, or TEST_DATABASE_URL) also runs the acknowledgement and per-message benchmarks on a fresh
PostgreSQL database of that server, the production configuration.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable

from bench import ack, console_latency, e2e, memory, pipeline
from bench.report import Section, markdown, print_section, read_json, write_json
from bench.rig import Rig
from bench.stats import machine
from tests.support.processes import PROJECT_ROOT

OUT = PROJECT_ROOT / "docs" / "BENCHMARKS.md"
RAW = PROJECT_ROOT / "var" / "bench" / "results.json"
ALL = ("ack", "pipeline", "memory", "e2e", "console")


def kept_blocks(text: str) -> list[str]:
    """Sections other tools keep in docs/BENCHMARKS.md between `<!-- NAME: begin -->` and
    `<!-- NAME: end -->` (`python -m bench.load --write`): carried over when the page is rewritten."""
    return [m.group(0) for m in re.finditer(r"<!-- ([\w.-]+): begin -->.*?<!-- \1: end -->", text, re.DOTALL)]


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


async def timed(run: Callable[[], Awaitable[Section]]) -> Section:
    before = loadavg()
    section = await run()
    print_section(section)
    section.notes.append(f"Load average (1, 5, 15 min) before / after: {before} / {loadavg()} — other work on this "
                         "machine competes for the same cores.")
    return section


async def real_rasa_sections(only: set[str], gateways: list[tuple[str, float, float]]) -> list[Section]:
    sections = []
    rig = await Rig.start("stack", real_rasa=True)
    try:
        await asyncio.sleep(1)
        idle = rig.gateway_rss_mb()
        if "e2e" in only:
            sections.append(await timed(lambda: e2e.measure(rig)))
        if "console" in only:
            sections.append(await timed(lambda: console_latency.measure(rig)))
        gateways.append(("gateway with real Rasa, after the end-to-end and console loads", idle, rig.gateway_rss_mb()))
    finally:
        await rig.close()
    return sections


def memory_rows(section: Section, gateways: list[tuple[str, float, float]]) -> None:
    for name, idle, after in gateways:
        section.add(f"RSS, {name}", f"{idle:.0f} MB idle → {after:.0f} MB", "< 200 MB", max(idle, after) < 200)


async def main(only: set[str], pg: str | None) -> int:
    started = time.monotonic()
    info = machine()
    sections: list[Section] = []
    gateways: list[tuple[str, float, float]] = []
    if "ack" in only:
        section = await timed(ack.run)
        sections.append(section)
        gateways.append(("ack benchmark gateway", section.raw["rss_idle_mb"], section.raw["rss_after_mb"]))
    if "pipeline" in only:
        sections.append(await timed(pipeline.run))
    if pg and "ack" in only:
        section = await timed(lambda: ack.run(pg_server=pg))
        section.key, section.title = "ack_pg", section.title + " (PostgreSQL)"
        section.command = f"BENCH_PG_URL=<server> {section.command}"
        sections.append(section)
    if pg and "pipeline" in only:
        section = await timed(lambda: pipeline.run(pg))
        section.key, section.title = "pipeline_pg", section.title + " (PostgreSQL)"
        section.command = f"BENCH_PG_URL=<server> {section.command}"
        sections.append(section)
    mem = await timed(memory.run) if "memory" in only else None
    if only & {"e2e", "console"}:
        sections += await real_rasa_sections(only, gateways)
    if mem is not None:
        memory_rows(mem, gateways)
        sections.append(mem)
    total = time.monotonic() - started
    command = "python -m bench" + (f" --only {','.join(sorted(only))}" if set(ALL) - only else "") + \
        (" --pg …" if pg else "")
    run = {"seconds": total, "command": command, "complete": set(ALL) <= only}
    write_json(RAW, info, sections, run)
    print(f"wrote {RAW.relative_to(PROJECT_ROOT)} ({total:.0f} s)")
    if run["complete"]:
        write_page(info, sections, run)
    else:
        print("(a partial run: docs/BENCHMARKS.md is left as it is)")
    return 0


def write_page(info: dict[str, str], sections: list[Section], run: dict) -> None:
    kept = kept_blocks(OUT.read_text(encoding="utf-8")) if OUT.exists() else []
    OUT.write_text(markdown(info, sections, run["seconds"], run["command"]) + "".join(f"\n{b}\n" for b in kept),
                   encoding="utf-8")
    print(f"wrote {OUT.relative_to(PROJECT_ROOT)}")


def render() -> int:
    """--render: docs/BENCHMARKS.md again from the last complete run's var/bench/results.json."""
    info, sections, run = read_json(RAW)
    if not run.get("complete"):
        print(f"{RAW.relative_to(PROJECT_ROOT)} is not from a complete run: run python -m bench", file=sys.stderr)
        return 2
    write_page(info, sections, run)
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {', '.join(ALL)}")
    p.add_argument("--render", action="store_true",
                   help="only rewrite docs/BENCHMARKS.md from the last complete run (var/bench/results.json)")
    p.add_argument("--pg", default=os.environ.get("BENCH_PG_URL") or os.environ.get("TEST_DATABASE_URL") or None,
                   help="a PostgreSQL server URL: also run ack and pipeline on PostgreSQL")
    args = p.parse_args(argv)
    unknown = set(args.only.split(",")) - set(ALL)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


if __name__ == "__main__":
    arguments = _parse(sys.argv[1:])
    # A SIGTERM (a timeout, Ctrl-C from make) unwinds normally, so every started process is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if arguments.render:
        sys.exit(render())
    sys.exit(asyncio.run(main(set(arguments.only.split(",")), arguments.pg)))
