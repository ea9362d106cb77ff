"""Moving a conversation to the counselors' queue: priority, reason, case record, notices, and
the call center it is routed to (bot/routing.py: the region's center while open, else Hanoi)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot import outbox, presence, routing
from bot.db.models import Case, Conversation, utcnow

if TYPE_CHECKING:
    from bot.gateway import Gateway

logger = logging.getLogger(__name__)
PRIORITY_RANK = {"request": 1, "at_risk": 2, "emergency": 3}
SUMMARY_FIELDS = ("safe_now", "where", "with_whom", "wants", "age")


def higher(a: str | None, b: str | None) -> str | None:
    return max((p for p in (a, b) if p in PRIORITY_RANK), key=PRIORITY_RANK.__getitem__, default=None)


def merge_facts(summary: dict[str, Any], facts: dict[str, Any] | None) -> dict[str, Any]:
    """Facts fill empty summary fields; what a counselor wrote is never overwritten."""
    merged = dict(summary or {})
    for key in SUMMARY_FIELDS:
        value = (facts or {}).get(key)
        if value not in (None, "") and merged.get(key) in (None, ""):
            merged[key] = value
    return merged


def region_center_from_text(text: str | None) -> str | None:
    """The call center of a province or place named in free text (the summary's `where`):
    `geo.province_from_text` first, then `geo.find_place_in_text` (towns, border gates, countries)."""
    if not text or not isinstance(text, str):
        return None
    try:
        from bot import geo
    except ImportError:  # a bot-only deployment without the geographic index
        return None
    try:
        found = geo.province_from_text(text) or geo.find_place_in_text(text)
    except Exception:  # a look-up must never stop an escalation
        logger.exception("place look-up failed; routing without a region")
        return None
    return found.center if found is not None else None


async def route_center(gw: "Gateway", session: Any, region: str | None, now: datetime | None = None) -> str:
    """The region's center while it is open and someone of it is online; otherwise the fallback."""
    centers = routing.centers_for(gw.settings.content_dir)
    chosen = routing.route(region, now or utcnow(), centers)
    if chosen != centers.fallback and not await presence.anyone_online(session, center=chosen,
                                                                       fallback=centers.fallback):
        chosen = centers.fallback
    return chosen


async def escalate(gw: "Gateway", session: Any, conv: Conversation, priority: str, reason: str,
                   facts: dict[str, Any] | None = None, *, center: str | None = None) -> bool:
    """Queue the conversation (or raise its priority). Returns True when it newly entered the queue.
    The caller commits; live events are published by the caller after the commit."""
    now = utcnow()
    newly = conv.state in ("bot", "closed")
    conv.summary = merge_facts(conv.summary, facts)
    if newly:
        conv.state, conv.priority, conv.reason, conv.queued_at = "queued", priority, reason, now
        conv.assigned_to = None
        conv.center = await route_center(gw, session, center or region_center_from_text(conv.summary.get("where")),
                                         now)
        session.add(Case(conversation_id=conv.id, priority=priority, reason=reason, summary=dict(conv.summary),
                         opened_at=now))
        gw.metrics.inc("escalations_total", priority=priority)
        return True
    if PRIORITY_RANK.get(priority, 0) > PRIORITY_RANK.get(conv.priority or "", 0):
        conv.priority, conv.reason = priority, reason
        if center and conv.state == "queued":
            conv.center = await route_center(gw, session, center, now)
    return False


async def acknowledge(gw: "Gateway", session: Any, conv: Conversation, *, send_location_link: bool) -> None:
    """What the person is told when they enter the queue: honest about who is online."""
    lang = conv.language or "vi"
    if not await presence.anyone_online(session):
        outbox.enqueue(session, conv, await gw.text("utter_queued_no_counselor", lang))
        conv.notices = {**(conv.notices or {}), "queued": utcnow().isoformat()}
    if send_location_link:
        from bot.location_page import new_link

        url = await new_link(gw, session, conv)
        text = await gw.text("utter_share_location_link", lang, url=url)
        title = "Gửi vị trí" if lang == "vi" else "Share location"
        outbox.enqueue(session, conv, text, payload={"link": {"title": title, "url": url}})
