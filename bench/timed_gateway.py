"""The gateway (`python -m bot serve`) with the steps of a message's way timed: each call of the
functions below prints `STEP <name> <milliseconds>` on stdout (the process log). A diagnostic
for bench/pipeline.py; the gateway itself is unchanged. Names that do not exist (the code moved
on) are skipped and reported.

    .venv/bin/python -m bench.timed_gateway     # with the gateway's usual environment
"""
from __future__ import annotations

import functools
import sys
import time
from typing import Any, Awaitable, Callable

STEPS: dict[str, tuple[str, ...]] = {  # "module" or "module:Class" -> function names
    "bot.webhooks": ("_receive",),
    "bot.inbox": ("store", "_due_conversations", "_lease", "handle", "_still_leased", "_unlease",
                  "process_conversation", "detect_language"),  # detect_language: the name inbox imported
    "bot.outbox": ("_due", "_claim", "send_one"),
    "bot.rasa_client:RasaClient": ("send",),
    "bot.senders:MessengerSender": ("send",),
}


def _timed(fn: Callable[..., Awaitable[Any]], label: str) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            print(f"STEP {label} {(time.perf_counter() - started) * 1000:.3f}", flush=True)

    return wrapper


def _timed_sync(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            print(f"STEP {label} {(time.perf_counter() - started) * 1000:.3f}", flush=True)

    return wrapper


def instrument() -> list[str]:
    """Wrap the steps in place; returns the names that were not found."""
    import asyncio
    import importlib

    missing = []
    for target, names in STEPS.items():
        module_name, _, class_name = target.partition(":")
        owner: Any = importlib.import_module(module_name)
        if class_name:
            owner = getattr(owner, class_name)
        for name in names:
            fn = getattr(owner, name, None)
            label = f"{class_name or module_name.rsplit('.', 1)[-1]}.{name}"
            if fn is None:
                missing.append(label)
                continue
            wrap = _timed if asyncio.iscoroutinefunction(fn) else _timed_sync
            setattr(owner, name, wrap(fn, label))
    return missing


def main() -> int:
    missing = instrument()
    if missing:
        print(f"STEP-MISSING {' '.join(missing)}", flush=True)
    from bot.cli import main as bot_main

    return bot_main(["serve"])


if __name__ == "__main__":
    sys.exit(main())
