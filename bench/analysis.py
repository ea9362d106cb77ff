"""The "why" part of docs/BENCHMARKS.md: where a message's time goes in this run, what in the
gateway keeps it short, and — when a target is missed — where to look first."""
from __future__ import annotations

from typing import Any

from bench.report import Section

NOT_DATABASE = ("inbox.process_conversation", "inbox.handle", "RasaClient.send", "MessengerSender.send",
                "inbox.detect_language", "webhooks._receive")


def _num(value: Any, fmt: str = ".1f") -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else "n/a"


def _database_steps(pipeline: Section) -> tuple[list[str], float]:
    """Table rows of the database steps of one message and their summed median time."""
    rows, total = [], 0.0
    for name, step in sorted(pipeline.raw.get("steps", {}).items(), key=lambda kv: -kv[1]["median_ms"]):
        if name in NOT_DATABASE:
            continue  # containers of other steps, or not database work
        per = step["per_message"]
        rows.append(f"| `{name}` | {per:.1f} | {step['median_ms']:.1f} ms |")
        total += per * step["median_ms"]
    return rows, total


DESIGN = [
    "What keeps the gateway's share small (each was measured with these benchmarks, `py-spy` and "
    "`bench/timed_gateway.py`; see `git log` for the before/after figures):",
    "",
    "- **Kept SQLite connections** (`bot/db/session.py`): SQLAlchemy's default for an aiosqlite file opens a "
    "connection, its thread and the PRAGMAs for every session — about 6 ms, many times per message.",
    "- **Writers take turns in asyncio** (`bot/db/sqlite_writes.py`): with kept connections, a writer waiting "
    "in SQLite's busy handler could freeze the event loop for the whole 15 s busy timeout (the garbage "
    "collector freeing one of its cursors blocks on its mutex while holding the GIL); in-process writers now "
    "queue on one asyncio lock per database, first come first served, and never poll inside SQLite.",
    "- **One trip to the driver's thread per statement** instead of four (cursor, execute, fetch, close).",
    "- **Fewer round trips per message**: a webhook names its conversation to the worker (no scan), the lease "
    "is re-checked only when it may have lapsed, replies are committed already claimed and sent at once from "
    "the rows just written (no outbox scan, claim or re-read), Messenger's typing indicator only when Rasa "
    "takes longer than 0.3 s.",
    "- **langdetect only when its vote can change the answer**, its profiles loaded at start, and every object "
    "alive after start-up moved out of the garbage collector's generations (`gc.freeze()`): its ~90,000 "
    "profile lists made each full collection pause the event loop 20–60 ms under load.",
    "- **The safety screen is compiled again only when its phrases changed** (it was rebuilt every 5 s, "
    "~15 ms on the event loop, a stall every 5 s in the acknowledgement tail).",
]


def analysis(sections: list[Section]) -> list[str]:
    by = {s.key: s for s in sections}
    pipe = by.get("pipeline")
    out = ["", "## Where the time goes", ""]
    if pipe is not None:
        rows, total = _database_steps(pipe)
        out += [f"With Rasa answering at once, the gateway spends {_num(pipe.raw.get('cpu_ms_per_message'))} ms of "
                f"CPU per message (all threads) and its database steps add up to about {total:.0f} ms "
                "(SQLite, medians; not all on the reply's way: the lease release and the scans of the "
                "inbox and outbox loops run after the reply has gone):", "",
                "| step | times per message | median |", "|---|---|---|", *rows, ""]
    out += DESIGN
    missed = [s for s in sections if s.all_met is False]
    if missed:
        out += ["", "## Missed in this run", ""]
        for section in missed:
            names = ", ".join(r.metric for r in section.rows if r.met is False)
            out.append(f"- **{section.title}**: {names}. Compare the per-step table above with an earlier run "
                       "(`var/bench/results.json`), and the load average under the section: other work on "
                       "this machine's two cores moves the tails by tens of milliseconds.")
    out += ["", "### The machine", "",
            "Two cores, shared by the gateway, Rasa, the action server, the fake platforms and the load generator "
            "(one process for the last two). Absolute numbers move between runs; the ratios and the per-step "
            "table are steadier. The Rasa and gateway paths of the end-to-end benchmark run in the same minutes, "
            "alternating, so both see the same load."]
    return out
