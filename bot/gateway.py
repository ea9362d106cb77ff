"""The gateway's collaborators in one object, and the lifetime of its background loops."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Iterable

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import sessionmaker

from bot.db.models import utcnow
from bot.live import LiveHub
from bot.metrics import Metrics
from bot.rasa_client import RasaClient
from bot.senders import Sender
from bot.settings import Settings

logger = logging.getLogger(__name__)
STOP_GRACE_S = 5.0


async def finish(tasks: list[asyncio.Task], grace_s: float) -> None:
    """Wait up to `grace_s` for the tasks to end by themselves, then cancel the rest."""
    pending = [t for t in tasks if not t.done()]
    if pending:
        _, pending_set = await asyncio.wait(pending, timeout=grace_s)
        for task in pending_set:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(eq=False)
class Gateway:
    settings: Settings
    engine: AsyncEngine
    sessions: sessionmaker
    http: aiohttp.ClientSession
    rasa: RasaClient
    content: Any  # bot.content.ContentStore
    senders: dict[str, Sender] = field(default_factory=dict)
    live: LiveHub = field(default_factory=LiveHub)
    metrics: Metrics = field(default_factory=Metrics)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    stopping: bool = False
    inbox_event: asyncio.Event = field(default_factory=asyncio.Event)
    outbox_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)
    fanout: Any = None  # bot.redis_fanout.RedisFanout when REDIS_URL is set
    background: set[asyncio.Task] = field(default_factory=set)  # fire-and-forget work, e.g. typing
    inbox_hints: set[int] = field(default_factory=set)  # conversations just given a new message

    def start(self) -> None:
        from bot import inbox, outbox
        from bot.language import load_profiles

        load_profiles()  # now, not on a person's message

        self.tasks = [asyncio.create_task(inbox.run(self), name="inbox"),
                      asyncio.create_task(outbox.run(self), name="outbox")]

    async def stop(self) -> None:
        """Let the loops finish the message or send in hand (they check `stopping`), then cancel
        what is still running after STOP_GRACE_S. Whatever is cut short stays pending in the
        database and is taken again on the next start (or by another replica)."""
        self.stopping = True
        self.inbox_event.set()
        self.outbox_event.set()
        await finish(self.tasks, STOP_GRACE_S)
        await finish(list(self.background), STOP_GRACE_S)

    async def redis_ok(self) -> bool:
        return self.fanout is not None and await self.fanout.ping()

    def wake_inbox(self, conversation_ids: Iterable[int] = ()) -> None:
        """Wake the inbox worker; the conversations named are taken at once, without a scan."""
        self.inbox_hints.update(conversation_ids)
        self.inbox_event.set()

    def take_inbox_hints(self) -> list[int]:
        hints = sorted(self.inbox_hints)
        self.inbox_hints.clear()
        return hints

    def spawn(self, work: Awaitable[Any]) -> None:
        """Fire-and-forget work that stop() cancels (a typing indicator, a reply sent at once)."""
        task = asyncio.ensure_future(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def wake_outbox_at(self, when: datetime | None) -> None:
        delay = 0.0 if when is None else max(0.0, (when - utcnow()).total_seconds())
        asyncio.get_running_loop().call_later(delay, self.outbox_event.set)

    def wake_inbox_at(self, when: datetime | None) -> None:
        delay = 0.0 if when is None else max(0.0, (when - utcnow()).total_seconds())
        asyncio.get_running_loop().call_later(delay, self.inbox_event.set)

    async def text(self, key: str, lang: str | None, **values: Any) -> str:
        return await self.content.text(key, lang or "vi", **values)
