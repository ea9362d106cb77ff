"""/healthz (alive), /readyz (database, Rasa, Redis reachable), /metrics (Prometheus)."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import func, select, text

from bot.db.models import Conversation, Message
from bot.keys import gateway_key

logger = logging.getLogger(__name__)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _database_ok(gw) -> bool:
    try:
        async with gw.sessions() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=2)
        return True
    except Exception:
        return False


async def readyz(request: web.Request) -> web.Response:
    gw = request.app[gateway_key]
    checks = {"database": await _database_ok(gw), "rasa": await gw.rasa.ready()}
    if gw.settings.redis_url:
        checks["redis"] = await gw.redis_ok()
    ok = all(checks.values())
    return web.json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    """Counters and histograms of this process, and gauges read from the database (the same on
    every replica: aggregate them with max(), not sum())."""
    from bot.db.models import utcnow
    from bot.outbox import _aware

    gw = request.app[gateway_key]
    gauges: dict[str, float] = {}
    now = utcnow()

    def age(moment) -> float:
        return max(0.0, (now - _aware(moment)).total_seconds()) if moment else 0.0

    try:
        async with gw.sessions() as session:
            for state, n in await session.execute(
                    select(Conversation.state, func.count()).group_by(Conversation.state)):
                gauges[f'conversations{{state="{state}"}}'] = n
            oldest = await session.scalar(select(func.min(Conversation.queued_at)).where(Conversation.state == "queued"))
            for priority, n, first in await session.execute(
                    select(Conversation.priority, func.count(), func.min(Conversation.queued_at))
                    .where(Conversation.state == "queued").group_by(Conversation.priority)):
                gauges[f'queued{{priority="{priority or "none"}"}}'] = n
                gauges[f'queued_oldest_wait_seconds{{priority="{priority or "none"}"}}'] = age(first)
            pending_in, oldest_in = (await session.execute(
                select(func.count(), func.min(Message.created_at))
                .where(Message.direction == "in", Message.status == "pending"))).one()
            pending_out, oldest_out = (await session.execute(
                select(func.count(), func.min(Message.created_at))
                .where(Message.direction == "out", Message.status.in_(("pending", "sending"))))).one()
            failed_out = await session.scalar(select(func.count()).where(Message.direction == "out", Message.status == "failed"))
        gauges["queue_oldest_wait_seconds"] = age(oldest)
        gauges["inbox_pending"] = pending_in or 0
        gauges["inbox_oldest_pending_seconds"] = age(oldest_in)
        gauges["outbox_pending"] = pending_out or 0
        gauges["outbox_oldest_pending_seconds"] = age(oldest_out)
        gauges["outbox_failed"] = failed_out or 0
        gauges["database_up"] = 1
    except Exception:
        logger.exception("metrics: database unavailable")
        gauges["database_up"] = 0
    gauges["console_connections"] = len(gw.live.subscribers)
    return web.Response(text=gw.metrics.render(gauges), content_type="text/plain", charset="utf-8")


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics, name="metrics")
