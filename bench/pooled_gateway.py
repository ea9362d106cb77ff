"""Experiment, not a fix: the gateway with a pooled SQLite engine (AsyncAdaptedQueuePool) instead of
SQLAlchemy 1.4's default NullPool, which opens a new connection (and aiosqlite thread) for every
session. Run any benchmark with it (bench/rig.py then starts the gateway through this module;
an instrumented gateway such as bench.timed_gateway runs inside it):

    BENCH_SQLITE_POOL=1 .venv/bin/python -m bench.pipeline

Known problem (why this is not simply the fix): under a saturating webhook load with the fake
Rasa busy, this variant ended in "database is locked" after the 15 s busy timeout and kept
spinning afterwards; a bounded pool on SQLite needs write transactions that never wait on
anything while they hold SQLite's write lock.
"""
from __future__ import annotations

import os
import sys
from typing import Any


def patch_engine() -> None:
    import bot.db.session as session
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    create = session.create_async_engine

    def pooled(url: Any, **kwargs: Any) -> Any:
        if url.get_backend_name() == "sqlite":
            kwargs.setdefault("poolclass", AsyncAdaptedQueuePool)
            kwargs.setdefault("pool_size", int(os.environ.get("BENCH_POOL_SIZE", "5")))
            kwargs.setdefault("max_overflow", 20)
        return create(url, **kwargs)

    session.create_async_engine = pooled  # type: ignore[assignment]


def main(argv: list[str]) -> int:
    """`python -m bench.pooled_gateway [MODULE]`: the gateway, or MODULE run as __main__."""
    patch_engine()
    if argv:
        import runpy

        sys.argv = [argv[0]]
        runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        return 0
    from bot.cli import main as bot_main

    return bot_main(["serve"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
