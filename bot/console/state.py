"""Typed keys of the console's state in the aiohttp application, and its background tasks."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable

from aiohttp import web

logger = logging.getLogger(__name__)

sockets_key: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("console_sockets", set)
tasks_key: web.AppKey[set[asyncio.Task]] = web.AppKey("console_tasks", set)


def spawn(app: web.Application, coro: Awaitable[Any], name: str) -> None:
    """Run best-effort work (e.g. a Rasa transcript marker) without delaying the answer."""
    task = asyncio.ensure_future(coro)
    tasks = app[tasks_key]
    tasks.add(task)

    def done(t: asyncio.Task) -> None:
        tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            logger.warning("background %s failed: %s", name, type(t.exception()).__name__)

    task.add_done_callback(done)


async def close_all(app: web.Application) -> None:
    """On shutdown: close open console sockets (they reconnect to another replica) and finish tasks."""
    for ws in list(app[sockets_key]):
        await ws.close(code=1001, message=b"server shutdown")
    app[sockets_key].clear()
    tasks = list(app[tasks_key])
    if tasks:
        await asyncio.wait(tasks, timeout=5)
