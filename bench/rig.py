"""A running hotline for a benchmark: fake Graph and Zalo APIs (and optionally a fake Rasa) in the
benchmark's own event loop, a fresh SQLite database, and real processes started by
tests/support/processes: the gateway, and for `real_rasa` a Rasa server with its action server.

The fake Send APIs record when each reply arrives (`Arrivals`), which is where end-to-end and
console latencies end."""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp
from aiohttp import web

from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import messenger_text_event, zalo_text_event
from tests.fakes.rasa import FakeRasa
from tests.fakes.zalo import FakeZalo
from tests.support.hotline import (create_pg_database, drop_pg_database, fake_platform_env, gateway_env, migrate,
                                   signed_messenger, signed_zalo, sqlite_url)
from tests.support.processes import ManagedProcess, Stack, ensure_model

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Arrivals:
    """perf_counter() of every message the fake platforms accepted, per recipient."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self._waiters: dict[str, list[asyncio.Event]] = defaultdict(list)

    def record(self, recipient: str, at: float) -> None:
        self.times[recipient].append(at)
        for event in self._waiters.pop(recipient, []):
            event.set()

    def count(self, recipient: str) -> int:
        return len(self.times.get(recipient, ()))

    async def wait(self, recipient: str, count: int, timeout: float) -> float:
        """The arrival time of the recipient's `count`-th message; TimeoutError if it never came."""
        deadline = time.monotonic() + timeout
        while len(self.times.get(recipient, ())) < count:
            event = asyncio.Event()
            self._waiters[recipient].append(event)
            await asyncio.wait_for(event.wait(), max(0.001, deadline - time.monotonic()))
        return self.times[recipient][count - 1]

    def middleware(self) -> Any:
        @web.middleware
        async def record_arrival(request: web.Request, handler: Handler) -> web.StreamResponse:
            response = await handler(request)
            at = time.perf_counter()
            if request.method == "POST" and response.status == 200:
                try:
                    body = await request.json()  # the handler read it already: served from aiohttp's cache
                except ValueError:
                    body = None
                if isinstance(body, dict) and isinstance(body.get("message"), dict) \
                        and isinstance(body.get("recipient"), dict) and _accepted(response):
                    recipient = body["recipient"].get("id") or body["recipient"].get("user_id")
                    if recipient:
                        self.record(str(recipient), at)
            return response

        return record_arrival


def _accepted(response: web.StreamResponse) -> bool:
    """Graph answers errors with HTTP 4xx; Zalo with HTTP 200 and a negative `error`."""
    if not isinstance(response, web.Response) or not response.body:
        return False
    try:
        answer = json.loads(bytes(response.body))
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("error") in (None, 0)


@dataclass
class Rig:
    label: str
    workdir: Path
    database_url: str
    graph: FakeGraph
    zalo: FakeZalo
    fake_rasa: FakeRasa | None
    stack: Stack
    http: aiohttp.ClientSession
    arrivals: Arrivals
    acks: list[float] = field(default_factory=list)
    pg_server: str | None = None

    @property
    def gateway(self) -> ManagedProcess:
        return self.stack["gateway"]

    @property
    def rasa(self) -> ManagedProcess | None:
        return self.stack.processes.get("rasa")

    @classmethod
    async def start(cls, label: str, *, real_rasa: bool, rasa_delay_s: float = 0.0,
                    gateway_cmd: list[str] | None = None, pg_server: str | None = None) -> "Rig":
        """`pg_server`: a PostgreSQL server URL to create a fresh database on (default: SQLite)."""
        workdir = Path(tempfile.mkdtemp(prefix=f"hotline-bench-{label}-"))
        if pg_server:
            database_url = await asyncio.to_thread(create_pg_database, pg_server, f"bench_{label}")
        else:
            database_url = sqlite_url(workdir / "hotline.db")
        await asyncio.to_thread(migrate, database_url)
        arrivals = Arrivals()
        graph, zalo = FakeGraph(timeout_delay=5), FakeZalo(timeout_delay=5)
        for fake in (graph, zalo):
            fake.app.middlewares.append(arrivals.middleware())
            await fake.start()
        fake_rasa = None
        stack = Stack(f"bench-{label}", base_env={"DATABASE_URL": database_url})
        if real_rasa:
            actions = stack.add_action_server()
            rasa_url = stack.add_rasa(actions=actions, model=await asyncio.to_thread(ensure_model)).url
        else:
            fake_rasa = FakeRasa()
            fake_rasa.delay_s = rasa_delay_s
            rasa_url = await fake_rasa.start()
        stack.add_gateway(env=gateway_env(database_url=database_url, rasa_url=rasa_url,
                                          **fake_platform_env(graph, zalo)), cmd=gateway_cmd)
        await asyncio.to_thread(stack.wait_ready, stack.launch())
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True))
        return cls(label, workdir, database_url, graph, zalo, fake_rasa, stack, http, arrivals, pg_server=pg_server)

    async def close(self) -> None:
        await self.http.close()
        await asyncio.to_thread(self.stack.stop_all)
        for fake in (self.graph, self.zalo, self.fake_rasa):
            if fake is not None:
                await fake.close()
        if self.pg_server:
            await asyncio.to_thread(drop_pg_database, self.pg_server, self.database_url)
        shutil.rmtree(self.workdir, ignore_errors=True)

    async def __aenter__(self) -> "Rig":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _post(self, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, float]:
        started = time.perf_counter()
        async with self.http.post(self.gateway.url + path, data=raw, headers=headers) as r:
            await r.read()
            status = r.status
        return status, time.perf_counter() - started

    async def messenger(self, psid: str, text: str) -> tuple[int, float, float]:
        """POST a signed text webhook; returns (status, ack seconds, perf_counter when sent)."""
        raw, headers = signed_messenger(messenger_text_event(psid, text, f"m-{uuid.uuid4().hex}"))
        sent = time.perf_counter()
        status, seconds = await self._post("/webhooks/messenger", raw, headers)
        self.acks.append(seconds)
        return status, seconds, sent

    async def zalo_text(self, user_id: str, text: str) -> tuple[int, float, float]:
        raw, headers = signed_zalo(zalo_text_event(user_id, text, uuid.uuid4().hex))
        sent = time.perf_counter()
        status, seconds = await self._post("/webhooks/zalo", raw, headers)
        self.acks.append(seconds)
        return status, seconds, sent

    def gateway_rss_mb(self) -> float:
        return self.gateway.rss_kb() / 1024


def bench_command(module: str) -> str:
    """How to reproduce one benchmark from the project's root."""
    return f".venv/bin/python -m bench.{module}"
