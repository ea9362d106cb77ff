"""Rasa's REST channel, as the gateway uses it: one message in, the bot's replies out."""
from __future__ import annotations

import logging
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)


class RasaUnavailable(Exception):
    """Rasa (or its action server) could not answer; the message stays pending."""


class RasaClient:
    def __init__(self, http: aiohttp.ClientSession, url: str, token: str | None = None, timeout_s: float = 20):
        self.http = http
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """The bot's replies, as Rasa's REST channel lists them. An empty list is treated as a
        failure: every intent of this assistant answers, so silence means the action server or
        the model is broken."""
        body = {"sender": sender_id, "message": text, "metadata": metadata}
        try:
            async with self.http.post(f"{self.url}/webhooks/rest/webhook", json=body, timeout=self.timeout) as r:
                if r.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {r.status}")
                replies = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RasaUnavailable(f"Rasa unreachable: {type(exc).__name__}") from exc
        if not isinstance(replies, list) or not replies:
            raise RasaUnavailable("Rasa gave no reply (is the action server running?)")
        return [r for r in replies if isinstance(r, dict)]

    async def add_events(self, sender_id: str, events: list[dict[str, Any]]) -> None:
        """Best effort: transcript markers (pause/resume) in Rasa's tracker; needs --enable-api."""
        params = {"token": self.token} if self.token else None
        try:
            async with self.http.post(f"{self.url}/conversations/{sender_id}/tracker/events", json=events,
                                      params=params, timeout=self.timeout) as r:
                if r.status >= 300:
                    logger.info("Rasa tracker events answered %s", r.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.info("Rasa tracker events failed: %s", type(exc).__name__)

    async def ready(self) -> bool:
        try:
            async with self.http.get(f"{self.url}/", timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False
