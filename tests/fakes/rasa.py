"""A stand-in for Rasa's REST channel, for gateway tests that must not train a model.

Answers by a rule function (text, metadata) -> list of replies; can be switched "down" (HTTP 503,
as when Rasa restarts) or slowed down. Records every message it received.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from aiohttp import web

from bot.text import fold

Rule = Callable[[str, dict[str, Any]], list[dict[str, Any]]]


def echo_rule(text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    lang = metadata.get("language", "vi")
    if "nguoi that" in fold(text) or "counselor" in text.lower():
        return [{"text": "Một tư vấn viên sẽ trả lời bạn." if lang == "vi" else "A counselor will answer you."},
                {"custom": {"handoff": {"priority": "request", "reason": "asked for a person",
                                        "facts": {"age": 15}}}}]
    return [{"text": f"[{lang}] bot: {text}"}]


class FakeRasa:
    def __init__(self, rule: Rule = echo_rule):
        self.rule = rule
        self.received: list[dict[str, Any]] = []
        self.down = False
        self.delay_s = 0.0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _webhook(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503)
        body = await request.json()
        self.received.append(body)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.json_response([{"recipient_id": body["sender"], **r}
                                  for r in self.rule(body["message"], body.get("metadata") or {})])

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(status=503) if self.down else web.Response(text="Hello from Rasa: 3.6.21")

    async def _events(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", self._webhook)
        app.router.add_get("/", self._root)
        app.router.add_post("/conversations/{sender}/tracker/events", self._events)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    async def __aenter__(self) -> "FakeRasa":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
