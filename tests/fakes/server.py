"""The part both fake platform servers share: an aiohttp app on 127.0.0.1, a call log and a
programmable failure queue."""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, TypeVar

from aiohttp import web

logger = logging.getLogger(__name__)

TIMEOUT = "timeout"
Server = TypeVar("Server", bound="FakeServer")


class FakeServer:
    """Start with `await fake.start()` (returns the base URL) or `async with fake:`; `close()`
    releases any request held by a simulated timeout, so shutdown is immediate."""

    def __init__(self, *, timeout_delay: float = 30.0) -> None:
        self.app = web.Application()
        self.url: str | None = None
        self.calls: list[dict[str, Any]] = []
        self.timeout_delay = timeout_delay
        self._failures: deque[Any] = deque()
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()

    def base_url(self, origin: str) -> str:
        return origin

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = self.base_url(f"http://{host}:{port}")
        return self.url

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self: Server) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def fail_next(self, n: int = 1, status: Any = 500) -> None:
        """Make the next `n` send requests fail (see the subclass for what `status` may be)."""
        self._failures.extend([status] * n)

    def _next_failure(self) -> Any:
        return self._failures.popleft() if self._failures else None

    async def _hang(self) -> web.Response:
        """A request that never answers in time: the client's timeout must fire."""
        try:
            await asyncio.wait_for(self._release.wait(), self.timeout_delay)
        except asyncio.TimeoutError:
            pass
        return web.Response(status=504, text="gateway timeout")


async def json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None
