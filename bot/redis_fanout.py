"""Live events across gateway replicas, through Redis publish/subscribe.

Every replica publishes its live events (queue changes, new messages, send statuses) on one Redis
channel and delivers what arrives on it to its own console WebSockets, so a counselor connected to
replica A sees a message that replica B processed.

- A replica delivers its *own* events locally at once (not through the Redis round trip) and skips
  them when they come back from Redis: a Redis outage never hides a replica's own events.
- While Redis is unreachable, publishing fails quietly (counted in `fanout_errors_total`) and the
  listener reconnects with backoff. Events of other replicas published meanwhile are lost to this
  replica's consoles, so after a reconnection every local console is asked to reload (its
  WebSocket closes with 4000 "reload", the page reconnects and fetches the queue again).
- `ping()` backs `/readyz`.

Nothing is stored in Redis: the database stays the source of truth for conversations, leases and
the outbox; Redis carries only notifications.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from bot.live import LiveHub
from bot.metrics import Metrics

logger = logging.getLogger(__name__)
RECONNECT_MAX_S = 10.0


class RedisFanout:
    def __init__(self, url: str, hub: LiveHub, metrics: Metrics | None = None, *, prefix: str = "hotline",
                 node: str | None = None, timeout_s: float = 2.0) -> None:
        self.url = url
        self.hub = hub
        self.metrics = metrics or Metrics()
        self.channel = f"{prefix}:live"
        # unique per process start: a restarted replica must not skip its predecessor's events
        self.node = f"{node or 'gateway'}:{uuid.uuid4().hex[:8]}"
        self.timeout_s = timeout_s
        self.connected = False
        self._redis: Any = None
        self._task: asyncio.Task | None = None
        self._subscribed = asyncio.Event()
        self._had_connection = False

    # ------------------------------------------------------------ lifetime

    async def start(self) -> None:
        """Connect lazily and listen in the background; never fails when Redis is down."""
        import redis.asyncio as redis

        self._redis = redis.from_url(self.url, socket_timeout=self.timeout_s,
                                     socket_connect_timeout=self.timeout_s, health_check_interval=15)
        self.hub.forward = self.forward
        self.metrics.gauge("redis_connected", lambda: 1.0 if self.connected else 0.0)
        self._task = asyncio.create_task(self._listen(), name="redis-fanout")

    async def close(self) -> None:
        if self.hub.forward == self.forward:
            self.hub.forward = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._redis is not None:
            await self._redis.close()  # and its connection pool
            self._redis = None

    async def wait_subscribed(self, timeout: float = 5.0) -> bool:
        """For tests and start-up checks: True once the listener is subscribed."""
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def ping(self) -> bool:
        if self._redis is None:
            return False
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), self.timeout_s))
        except Exception:
            return False

    # ------------------------------------------------------------ publishing

    async def forward(self, event: dict[str, Any]) -> None:
        """LiveHub's hook: deliver here, then tell the other replicas. Never raises (LiveHub would
        deliver a second time locally)."""
        self.hub.deliver(event)
        try:
            data = json.dumps({"origin": self.node, "event": event}, ensure_ascii=False, default=str)
            await asyncio.wait_for(self._redis.publish(self.channel, data), self.timeout_s)
            self.metrics.inc("fanout_published_total")
        except Exception as exc:
            self.metrics.inc("fanout_errors_total", stage="publish")
            logger.warning("live fan-out: publish failed (%s); other replicas miss this event", type(exc).__name__)

    # ------------------------------------------------------------ listening

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if self._had_connection and not self.connected:
                    self._resync()
                self.connected, self._had_connection, delay = True, True, 0.2
                self._subscribed.set()
                logger.info("live fan-out: subscribed to %s", self.channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._receive(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected:
                    logger.warning("live fan-out: lost Redis (%s); reconnecting", type(exc).__name__)
                self.connected = False
                self._subscribed.clear()
                self.metrics.inc("fanout_errors_total", stage="listen")
                await asyncio.sleep(delay)
                delay = min(RECONNECT_MAX_S, delay * 2)
            finally:
                try:
                    await asyncio.wait_for(pubsub.close(), 1.0)
                except Exception:  # the connection is already gone
                    pass

    def _receive(self, data: Any) -> None:
        try:
            envelope = json.loads(data)
            origin, event = envelope["origin"], envelope["event"]
            if not isinstance(event, dict):
                raise ValueError("event is not an object")
        except (ValueError, KeyError, TypeError):
            self.metrics.inc("fanout_errors_total", stage="decode")
            logger.warning("live fan-out: ignored an unreadable message on %s", self.channel)
            return
        if origin == self.node:
            return  # delivered locally when it was published
        self.metrics.inc("fanout_received_total")
        self.hub.deliver(event)

    def _resync(self) -> None:
        """After an outage: every local console reloads (the WebSocket pump closes a socket whose
        subscriber left the hub with 4000 "reload")."""
        dropped = list(self.hub.subscribers)
        self.hub.subscribers.clear()
        for sub in dropped:  # wake each pump now rather than at its next heartbeat
            try:
                sub.queue.put_nowait({"type": "resync"})
            except asyncio.QueueFull:
                pass
        logger.info("live fan-out: Redis is back; %d console connections asked to reload", len(dropped))
