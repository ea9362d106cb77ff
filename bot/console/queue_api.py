"""The queue: listing (priority, then waiting time), the atomic take, and triage changes."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import case, select, update

from bot import presence, routing
from bot.auth import CASEWORK, Handler, audit, requires
from bot.console.access import (ApiError, accounts_by_id, conversation_id, get_conversation, handle_errors,
                                json_object, open_case, queue_event)
from bot.console.views import conversation_json, queue_item
from bot.db.models import Account, Conversation, utcnow
from bot.escalation import PRIORITY_RANK
from bot.keys import gateway_key

logger = logging.getLogger(__name__)
MAX_REASON = 255
PRIORITY_ORDER = case(*[(Conversation.priority == p, r) for p, r in PRIORITY_RANK.items()], else_=0)


async def queue(request: web.Request) -> web.Response:
    """Waiting and assigned conversations, most urgent first, then the longest waiting."""
    gw = request.app[gateway_key]
    now = utcnow()
    centers = routing.centers_for(gw.settings.content_dir)
    async with gw.sessions() as session:
        rows = list(await session.scalars(
            select(Conversation).where(Conversation.state.in_(("queued", "assigned")))
            .order_by(PRIORITY_ORDER.desc(), Conversation.queued_at.asc(), Conversation.id.asc())))
        accounts = await accounts_by_id(session, (c.assigned_to for c in rows))
    items = []
    for conv in rows:
        # a waiting conversation whose center has closed meanwhile overflows to the fallback
        center = routing.route(conv.center, now, centers) if conv.state == "queued" else conv.center
        items.append(queue_item(conv, accounts, now, center))
    return web.json_response({"conversations": items, "now": now.isoformat()})


async def claim(session: Any, conv_id: int, account_id: int, now: datetime | None = None) -> bool:
    """Assign a waiting conversation to the account: one conditional UPDATE ... WHERE
    state = 'queued', so of several racing claims (any replica, SQLite or PostgreSQL) exactly one
    changes the row. The caller commits (or rolls back when this returns False)."""
    result = await session.execute(
        update(Conversation).where(Conversation.id == conv_id, Conversation.state == "queued")
        .values(state="assigned", assigned_to=account_id, updated_at=now or utcnow())
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


async def take(request: web.Request) -> web.Response:
    """Atomic: exactly one of two racing takes wins (200); the other gets 409 naming the winner."""
    gw = request.app[gateway_key]
    me: Account = request["account"]
    cid = conversation_id(request)
    now = utcnow()
    async with gw.sessions() as session:
        if not await claim(session, cid, me.id, now):
            await session.rollback()
            conv = await get_conversation(session, cid)
            if conv.state == "assigned" and conv.assigned_to == me.id:
                accounts = await accounts_by_id(session, [me.id])
                return web.json_response({"conversation": conversation_json(conv, accounts, now), "already": True})
            holder = (await accounts_by_id(session, [conv.assigned_to])).get(conv.assigned_to)  # type: ignore[arg-type]
            if conv.state == "assigned":
                raise ApiError(409, f"{holder.username if holder else 'another counselor'} already took this "
                                    "conversation", state=conv.state, assigned_to=holder.username if holder else None)
            raise ApiError(409, f"the conversation is {conv.state}, not waiting in the queue", state=conv.state)
        await audit(session, me, "take", f"conversation:{cid}")
        await session.commit()
        conv = await get_conversation(session, cid)
        await session.refresh(conv)
        accounts = await accounts_by_id(session, [me.id])
        body = {"conversation": conversation_json(conv, accounts, now)}
        event = queue_event(conv)
    await gw.live.publish(event)
    return web.json_response(body)


async def triage(request: web.Request) -> web.Response:
    """A counselor corrects the priority or reason set by triage; logged in the audit."""
    gw = request.app[gateway_key]
    me: Account = request["account"]
    cid = conversation_id(request)
    body = await json_object(request)
    priority, reason = body.get("priority"), body.get("reason")
    if priority is None and reason is None:
        raise ApiError(400, "send priority and/or reason")
    if priority is not None and priority not in PRIORITY_RANK:
        raise ApiError(400, f"priority must be one of {', '.join(PRIORITY_RANK)}")
    if reason is not None and (not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON):
        raise ApiError(400, f"reason must be text of 1 to {MAX_REASON} characters")
    async with gw.sessions() as session:
        conv = await get_conversation(session, cid)
        if conv.state not in ("queued", "assigned"):
            raise ApiError(409, f"the conversation is {conv.state}, not in the queue", state=conv.state)
        if conv.state == "assigned" and conv.assigned_to != me.id and me.role == "counselor":
            raise ApiError(409, "another counselor holds this conversation", state=conv.state)
        before = {"priority": conv.priority, "reason": conv.reason}
        conv.priority = priority or conv.priority
        conv.reason = reason.strip() if reason is not None else conv.reason
        after = {"priority": conv.priority, "reason": conv.reason}
        row = await open_case(session, cid)
        if row is not None:
            row.priority, row.reason = conv.priority, conv.reason
        await audit(session, me, "triage", f"conversation:{cid}", {"from": before, "to": after})
        await session.commit()
        event = queue_event(conv)
    await gw.live.publish(event)
    return web.json_response({"priority": after["priority"], "reason": after["reason"], "previous": before})


async def counselors(request: web.Request) -> web.Response:
    """Casework accounts, who is online, and how many chats each holds (for transfers)."""
    gw = request.app[gateway_key]
    now = utcnow()
    async with gw.sessions() as session:
        accounts = list(await session.scalars(
            select(Account).where(Account.active.is_(True), Account.role.in_(CASEWORK)).order_by(Account.username)))
        held = [c for c in await session.scalars(select(Conversation.assigned_to)
                                                 .where(Conversation.state == "assigned"))]
    return web.json_response({"counselors": [
        {"name": a.username, "display_name": a.display_name or a.username, "role": a.role, "center": a.center,
         "online": presence.is_online(a, now), "active_chats": held.count(a.id)} for a in accounts]})


async def centers(request: web.Request) -> web.Response:
    gw = request.app[gateway_key]
    now = utcnow()
    config = routing.centers_for(gw.settings.content_dir)
    return web.json_response({"centers": routing.status(config, now), "fallback": config.fallback,
                              "local_time": routing.local(now).isoformat()})


def setup(app: web.Application) -> None:
    def guarded(handler: Handler) -> Handler:
        return requires(*CASEWORK)(handle_errors(handler))

    app.router.add_get("/api/queue", guarded(queue), name="api_queue")
    app.router.add_post(r"/api/conversations/{id:\d+}/take", guarded(take), name="api_take")
    app.router.add_patch(r"/api/conversations/{id:\d+}/triage", guarded(triage), name="api_triage")
    app.router.add_get("/api/counselors", guarded(counselors), name="api_counselors")
    app.router.add_get("/api/centers", guarded(centers), name="api_centers")
