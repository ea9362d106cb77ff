"""Live events for the console: queue changes and new messages, fanned out to subscribers.

In one process this is a set of asyncio queues. With several gateway replicas the same events
travel through Redis (see bot/redis_fanout.py) so every console sees every replica's events.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

logger = logging.getLogger(__name__)
QUEUE_LIMIT = 500


@dataclass(eq=False)
class Subscriber:
    account_id: int
    role: str
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))


class LiveHub:
    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        # Set by the Redis fan-out: publish goes to Redis, and Redis delivers to every replica.
        self.forward: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    def subscribe(self, account_id: int, role: str) -> Subscriber:
        sub = Subscriber(account_id, role)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def online(self, roles: tuple[str, ...] = ("counselor", "supervisor", "admin")) -> set[int]:
        return {s.account_id for s in self.subscribers if s.role in roles}

    async def publish(self, event: dict[str, Any]) -> None:
        if self.forward is not None:
            try:
                await self.forward(event)
                return
            except Exception:  # Redis down: still deliver locally
                logger.exception("live fan-out failed; delivering locally only")
        self.deliver(event)

    def deliver(self, event: dict[str, Any]) -> None:
        roles = event.get("roles") or ("counselor", "supervisor", "admin")
        for sub in list(self.subscribers):
            if sub.role not in roles:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:  # a stuck browser: drop it, it reconnects and reloads
                logger.warning("dropping a live subscriber whose queue is full")
                self.subscribers.discard(sub)
