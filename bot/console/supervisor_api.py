"""Supervisor view: who is waiting and for how long, active chats per counselor, referrals, and
the audit log (supervisors and admins)."""
from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from aiohttp import web
from sqlalchemy import select

from bot import presence, routing
from bot.auth import CASEWORK, OVERSIGHT, requires
from bot.console.access import ApiError, accounts_by_id, handle_errors
from bot.console.queue_api import PRIORITY_ORDER
from bot.console.views import iso, queue_item
from bot.db.models import Account, AuditEntry, Case, Conversation, utcnow
from bot.keys import gateway_key

logger = logging.getLogger(__name__)
RECENT = timedelta(days=30)
MAX_AUDIT = 500


async def overview(request: web.Request) -> web.Response:
    gw = request.app[gateway_key]
    now = utcnow()
    centers = routing.centers_for(gw.settings.content_dir)
    async with gw.sessions() as session:
        open_convs = list(await session.scalars(
            select(Conversation).where(Conversation.state.in_(("queued", "assigned")))
            .order_by(PRIORITY_ORDER.desc(), Conversation.queued_at.asc(), Conversation.id.asc())))
        staff = list(await session.scalars(select(Account).where(Account.active.is_(True),
                                                                 Account.role.in_(CASEWORK))
                                           .order_by(Account.username)))
        closed = list(await session.scalars(select(Case).where(Case.closed_at.is_not(None),
                                                               Case.closed_at > now - RECENT)
                                            .order_by(Case.closed_at.desc())))
        accounts = {a.id: a for a in staff}
        accounts.update(await accounts_by_id(session, [c.closed_by for c in closed if c.closed_by not in accounts]))
    waiting = [queue_item(c, accounts, now, routing.route(c.center, now, centers))
               for c in open_convs if c.state == "queued"]
    by_counselor: dict[int, list[dict]] = {}
    for conv in open_convs:
        if conv.state == "assigned" and conv.assigned_to is not None:
            by_counselor.setdefault(conv.assigned_to, []).append(queue_item(conv, accounts, now))
    counselors = [{"name": a.username, "display_name": a.display_name or a.username, "role": a.role,
                   "center": a.center, "online": presence.is_online(a, now), "last_seen_at": iso(a.last_seen_at),
                   "active_chats": len(by_counselor.get(a.id, [])), "conversations": by_counselor.get(a.id, [])}
                  for a in staff]
    referrals = [{"case_id": c.id, "conversation_id": c.conversation_id, "outcome": c.outcome,
                  "priority": c.priority, "closed_at": iso(c.closed_at),
                  "closed_by": accounts[c.closed_by].username if c.closed_by in accounts else None,
                  **(c.referral or {})} for c in closed if c.referral]
    return web.json_response({
        "now": now.isoformat(), "waiting": waiting,
        "longest_wait_s": max((w["waiting_s"] for w in waiting), default=0),
        "counts": {"queued": len(waiting), "assigned": sum(1 for c in open_convs if c.state == "assigned"),
                   "by_priority": dict(Counter(c.priority for c in open_convs if c.priority))},
        "counselors": counselors, "centers": routing.status(centers, now),
        "outcomes_30d": dict(Counter(c.outcome for c in closed if c.outcome)), "referrals_30d": referrals})


async def audit_log(request: web.Request) -> web.Response:
    """Newest first. Filters: action, account (user name), target; paging with before=<id>."""
    gw = request.app[gateway_key]
    q = request.query
    try:
        limit = min(MAX_AUDIT, max(1, int(q.get("limit", 100))))
        before = int(q["before"]) if q.get("before") else None
    except ValueError:
        raise ApiError(400, "limit and before must be numbers") from None
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(AuditEntry.id < before)
    if q.get("action"):
        stmt = stmt.where(AuditEntry.action == q["action"])
    if q.get("target"):
        stmt = stmt.where(AuditEntry.target == q["target"])
    async with gw.sessions() as session:
        if q.get("account"):
            account_id = await session.scalar(select(Account.id).where(Account.username == q["account"]))
            stmt = stmt.where(AuditEntry.account_id == account_id)
        rows = list(await session.scalars(stmt))
        accounts = await accounts_by_id(session, (r.account_id for r in rows))
    entries = [{"id": r.id, "at": iso(r.at), "account": accounts[r.account_id].username
                if r.account_id in accounts else None, "action": r.action, "target": r.target,
                "detail": r.detail} for r in rows]
    return web.json_response({"entries": entries, "next_before": rows[-1].id if len(rows) == limit else None})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/supervisor/overview", requires(*OVERSIGHT)(handle_errors(overview)),
                       name="api_supervisor_overview")
    app.router.add_get("/api/audit", requires(*OVERSIGHT)(handle_errors(audit_log)), name="api_audit")
