"""An asyncio event loop in a daemon thread, so synchronous tests and tools can run the aiohttp
fake platform servers (tests/fakes) beside real processes.

    with BackgroundLoop() as loop:
        graph = loop.run(start(FakeGraph()))     # the fake lives in the loop's thread
        texts = loop.call(graph.texts_to, "psid") # read its state in that thread too
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    def __init__(self, name: str = "background-loop") -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "BackgroundLoop":
        if self._thread is not None:
            return self
        ready = threading.Event()

        def main() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

        self._thread = threading.Thread(target=main, name=self.name, daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def run(self, coro: Awaitable[T], timeout: float | None = 60.0) -> T:
        """Run a coroutine in the loop and wait for its result."""
        if self.loop is None:
            raise RuntimeError("the loop is not started")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = 10.0) -> T:
        """Call a plain function in the loop's thread (to read a fake server's state safely)."""
        async def wrapper() -> T:
            return fn(*args)

        return self.run(wrapper(), timeout)

    def stop(self) -> None:
        if self.loop is None or self._thread is None:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._thread = None
        self.loop = None

    def __enter__(self) -> "BackgroundLoop":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
