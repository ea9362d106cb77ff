"""The "why" part of docs/BENCHMARKS.md: what the profile of this run says about missed targets
and what would fix them, with the numbers of the run filled in."""
from __future__ import annotations

from typing import Any

from bench.report import Section


def _num(value: Any, fmt: str = ".1f") -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else "n/a"


def _steps(pipeline: Section | None) -> tuple[list[str], float]:
    """Table rows of the database steps of one message and their summed median time."""
    if pipeline is None:
        return [], 0.0
    rows, total = [], 0.0
    for name, step in sorted(pipeline.raw.get("steps", {}).items(), key=lambda kv: -kv[1]["median_ms"]):
        if name in ("inbox.process_conversation", "inbox.handle", "RasaClient.send", "MessengerSender.send",
                    "inbox.detect_language", "webhooks._receive"):
            continue  # containers of other steps, or not database work
        per = step["per_message"]
        rows.append(f"| `{name}` | {per:.1f} | {step['median_ms']:.1f} ms |")
        total += per * step["median_ms"]
    return rows, total


def analysis(sections: list[Section]) -> list[str]:
    by = {s.key: s for s in sections}
    pipe, ack, ack_pg, e2e = by.get("pipeline"), by.get("ack"), by.get("ack_pg"), by.get("e2e")
    console = by.get("console")
    if all(s.all_met is not False for s in sections):
        return []
    pipe_pg = by.get("pipeline_pg")
    out = ["", "## Why targets are missed, and what would fix them", "",
           "Profiled with py-spy (`py-spy record --gil` on the gateway process) and with the per-step timings of "
           "`bench/timed_gateway.py` (the *Gateway cost per message* tables). Rasa is not the problem: on the same "
           "model its own REST round trip is the *Rasa* column of the end-to-end table. The gateway's time goes "
           "into database round trips: about fifteen separate transactions per message, each a few milliseconds "
           "through SQLAlchemy's ORM and the driver on this machine, and on SQLite more, because every session "
           "opens a new connection. All of it is gateway code (`bot/`), outside the benchmark's files."]
    if pipe is not None:
        rows, total = _steps(pipe)
        pg_note = ""
        if pipe_pg is not None:
            _, pg_total = _steps(pipe_pg)
            pg_note = (f" On PostgreSQL (pooled asyncpg connections) the same steps add up to about {pg_total:.0f} ms "
                       f"and the gateway spends {_num(pipe_pg.raw.get('cpu_ms_per_message'))} ms of CPU per message: "
                       "the number of round trips, not only SQLite, is the cost.")
        out += ["", "### 1. Too many transactions per message", "",
                "One bot reply takes, in separate transactions: store the webhook; find due conversations; take the "
                "lease; handle the message (renewing the lease inside); take the lease again; look for the next "
                "message; release the lease; find due outbox rows; claim the row; send and mark it sent. With Rasa "
                f"answering at once the gateway spends {_num(pipe.raw.get('cpu_ms_per_message'))} ms of CPU per "
                f"message on SQLite, and the database steps of one message add up to about {total:.0f} ms:", "",
                "| step (SQLite) | times per message | median |", "|---|---|---|", *rows, "",
                pg_note.strip() + (" " if pg_note else "") +
                "**Fix (gateway):** take the lease and read the pending message in one statement, release it in the "
                "handling transaction when nothing else is pending (no second lease, no separate release), and hand "
                "the outbox the ids of the rows just committed (claim them in the same UPDATE) instead of scanning "
                "for due rows after every wake-up: about five transactions per message instead of fifteen."]
        sqlite = pipe.raw.get("sqlite", {})
        out += ["", "### 2. A new SQLite connection for every session", "",
                "`bot/db/session.py` creates the SQLite engine without a pool class, so SQLAlchemy 1.4 uses "
                "`NullPool` for a SQLite file: every `async with gw.sessions()` starts an aiosqlite thread, opens "
                "the file, runs the four PRAGMAs and closes it again. Measured in this run: one short write costs "
                f"{_num(sqlite.get('connection_per_session_ms'), '.2f')} ms in its own connection vs "
                f"{_num(sqlite.get('kept_connection_ms'), '.3f')} ms on a connection kept open (plain sqlite3, "
                "without aiosqlite's thread start).",
                "",
                "An experiment with a pooled engine (`BENCH_SQLITE_POOL=1`, `bench/pooled_gateway.py`), at the time "
                "of writing, back-to-back runs on this machine: per-message pipeline p50 82 → 38 ms, gateway CPU per "
                "message 83 → 44 ms, each database step ~10 → ~3 ms; end to end, added latency at p50 68 → 33 ms and "
                "throughput ratio 66 % → 94 %. It is not a drop-in fix: under a paced webhook load with the fake "
                "Rasa busy that variant ended in `database is locked` after the 15 s busy timeout and kept spinning "
                "after the load stopped. **Fix (gateway):** a persistent pool for SQLite *and* write transactions "
                "that never wait for anything (another connection, the content store, Rasa) while they hold "
                "SQLite's write lock — or one writer connection behind an `asyncio.Lock`."]
    if ack is not None and ack.all_met is False:
        paced = ack.raw.get("paced", {})
        out += ["", "### 3. Webhooks wait for SQLite's write lock while the worker is busy", "",
                f"At {_num(ack.raw.get('paced_rate'), '.0f')} webhooks/s with the fake Rasa busy, acknowledgements "
                f"took p50 {_num(paced.get('p50'))} ms and p99 {_num(paced.get('p99'), '.0f')} ms although storing "
                "one webhook is one INSERT and a COMMIT. The webhook's transaction competes for SQLite's single "
                "write lock with the inbox worker (lease, message done, outbox rows, release) and the outbox "
                "(claim, sent). A writer that finds the lock taken sleeps in SQLite's busy handler in growing steps "
                "(1, 2, 5, 10 … 100 ms) and is not served in arrival order, hence the long tail. **Fix (gateway):** "
                "for SQLite, serialise write transactions in the process (one `asyncio.Lock`, FIFO, no busy "
                "sleeps) with pooled connections; fewer write transactions per message (point 1)."]
        if ack_pg is not None:
            pg = ack_pg.raw.get("paced", {})
            out += ["", f"On PostgreSQL (row locks, no file lock) the same paced load gave p50 {_num(pg.get('p50'))} ms "
                        f"and p99 {_num(pg.get('p99'), '.0f')} ms: better, and still above 20 ms at p99 on this "
                        "machine, because a webhook's INSERT waits behind the worker's CPU-heavy turns on the one "
                        "event loop (point 1)."]
    if pipe is not None and "inbox.detect_language" in pipe.raw.get("steps", {}):
        lang = pipe.raw["steps"]["inbox.detect_language"]["median_ms"]
        out += ["", "### 4. Language detection", "",
                f"`detect_language` takes {lang:.1f} ms per message (median, CPU on the event loop), and the first "
                "message after a start loads langdetect's profiles (about half a second of CPU in the py-spy profile). "
                "**Fix (gateway):** load the profiles at start-up; skip langdetect when the Vietnamese heuristic "
                "is already sure (diacritics present)."]
    if console is not None and console.all_met is False:
        out += ["", "### 5. Risk messages to the console", "",
                "A risk message does more work than a bot reply (safety screen, facts, queue entry, share-location "
                "token, two or three outbox rows, live events): about 85 ms of gateway CPU each (measured with "
                "/proc/<pid>/stat while 100 screen-caught messages arrived at 10/s), all through the same "
                "per-session connections. So a few risk messages per second already take most of a core, and on "
                "this shared 2-core machine they queue behind each other: at 10/s, earlier runs gave p99 from "
                "0.5 s to 4.4 s depending on the machine's load; at 2/s, p99 0.36 s. Points 1–3 address it."]
    memory = by.get("memory")
    if memory is not None and memory.raw.get("seconds"):
        messages = memory.raw.get("messages", 0)
        out += ["", "### Capacity", "",
                f"With a Rasa that answers at once, the memory benchmark's {messages} messages took "
                f"{memory.raw['seconds']:.0f} s: about {messages / memory.raw['seconds']:.0f} messages/s is what "
                "this gateway can process on this machine, close to what Rasa itself serves here — so the "
                "throughput ratio of the end-to-end table holds only while Rasa is the slower of the two. Points "
                "1–3 raise this ceiling."]
    if e2e is not None:
        out += ["", "### Also found: after Rasa comes back", "",
                "A message that found Rasa down is retried with backoff (1 s × 2^attempt, capped at 30 s) and nothing "
                "wakes it when Rasa is reachable again, so an answer can come up to 30 s after Rasa is back "
                "(tests/e2e: answered within the 45 s the test allows). **Fix (gateway):** when a Rasa call succeeds "
                "after failures (or `/readyz` sees Rasa again), wake the inbox for messages waiting on Rasa."]
    out += ["", "### The machine", "",
            "Two cores shared with the other work of this machine (other test suites ran at the same time; see the "
            "load averages under each table). Absolute numbers move by ±50 % between runs; the ratios and the "
            "per-step table are steadier. The Rasa and gateway paths of the end-to-end benchmark run in the same "
            "minutes, alternating, so both see the same load."]
    return out
