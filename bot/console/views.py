"""The JSON shapes of the console API (conversation, queue item, message, location, window).

User text is passed through as data; the pages render it with textContent only.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Mapping
from urllib.parse import urlencode

from bot.db.models import Account, Case, Conversation, Location, Message, utcnow
from bot.outbox import _aware, reply_window

logger = logging.getLogger(__name__)
WINDOW_WARNING = timedelta(hours=2)
SUMMARY_FIELDS = ("safe_now", "where", "with_whom", "wants", "age", "notes")
MAP_SPAN_DEG = 0.01


def iso(ts: datetime | None) -> str | None:
    return _aware(ts).isoformat() if ts is not None else None


def names(accounts: Mapping[int, Account], account_id: int | None) -> str | None:
    account = accounts.get(account_id) if account_id is not None else None
    return account.username if account else None


def waiting_s(conv: Conversation, now: datetime) -> int:
    start = _aware(conv.queued_at) or _aware(conv.created_at)
    return max(0, int((now - start).total_seconds())) if start else 0


def window_json(conv: Conversation, now: datetime | None = None) -> dict[str, Any]:
    """`outbox.reply_window` plus what the console shows: which rule applies, time left, a warning."""
    now = now or utcnow()
    window = dict(reply_window(conv, now))
    window["channel"] = conv.channel
    window["unreachable"] = bool(conv.unreachable)
    left = window.get("seconds_left") or 0
    if conv.channel == "messenger":
        window["mode"] = "standard" if window.get("bot_open") else ("human_agent" if window["open"] else "closed")
    else:
        window["mode"] = "consultation" if window["open"] else "closed"
    window["warning"] = bool(window["open"] and left < WINDOW_WARNING.total_seconds())
    return window


def queue_item(conv: Conversation, accounts: Mapping[int, Account], now: datetime,
               center: str | None = None) -> dict[str, Any]:
    summary = conv.summary or {}
    return {
        "id": conv.id, "channel": conv.channel, "user_id": conv.user_id, "state": conv.state,
        "priority": conv.priority, "reason": conv.reason, "language": conv.language or "vi",
        "waiting_s": waiting_s(conv, now), "queued_at": iso(conv.queued_at),
        "assigned_to": names(accounts, conv.assigned_to), "assigned_to_id": conv.assigned_to,
        "center": center or conv.center, "routed_center": conv.center,
        "last_user_at": iso(conv.last_user_at), "unreachable": bool(conv.unreachable),
        "where": summary.get("where"), "age": summary.get("age"),
    }


def conversation_json(conv: Conversation, accounts: Mapping[int, Account], now: datetime) -> dict[str, Any]:
    item = queue_item(conv, accounts, now)
    item.update(created_at=iso(conv.created_at), updated_at=iso(conv.updated_at))
    return item


def summary_json(conv: Conversation) -> dict[str, Any]:
    summary = conv.summary or {}
    out = {key: summary.get(key) for key in SUMMARY_FIELDS}
    out.update(language=conv.language or "vi", channel=conv.channel)
    return out


def message_json(msg: Message, accounts: Mapping[int, Account]) -> dict[str, Any]:
    payload = msg.payload or {}
    return {
        "id": msg.id, "direction": msg.direction, "author": msg.author,
        "account": names(accounts, msg.account_id), "text": msg.text, "status": msg.status,
        "error": msg.error if msg.direction == "out" else None,
        "created_at": iso(msg.created_at), "done_at": iso(msg.done_at),
        "location": payload.get("location"), "link": payload.get("link"),
        "attachments": payload.get("attachments"), "quick_replies": payload.get("quick_replies"),
    }


def map_urls(lat: float, lon: float) -> dict[str, str]:
    bbox = f"{lon - MAP_SPAN_DEG:.5f},{lat - MAP_SPAN_DEG:.5f},{lon + MAP_SPAN_DEG:.5f},{lat + MAP_SPAN_DEG:.5f}"
    embed = "https://www.openstreetmap.org/export/embed.html?" + urlencode(
        {"bbox": bbox, "layer": "mapnik", "marker": f"{lat:.6f},{lon:.6f}"})
    link = f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=15/{lat:.6f}/{lon:.6f}"
    return {"embed_url": embed, "link_url": link}


def location_json(loc: Location) -> dict[str, Any]:
    return {"id": loc.id, "message_id": loc.message_id, "source": loc.source, "lat": loc.lat, "lon": loc.lon,
            "accuracy_m": loc.accuracy_m, "label": loc.label, "resolved": loc.resolved or {},
            "created_at": iso(loc.created_at), "map": map_urls(loc.lat, loc.lon)}


def case_json(case: Case | None, accounts: Mapping[int, Account]) -> dict[str, Any] | None:
    if case is None:
        return None
    return {"id": case.id, "priority": case.priority, "reason": case.reason, "summary": case.summary or {},
            "outcome": case.outcome, "referral": case.referral, "opened_at": iso(case.opened_at),
            "closed_at": iso(case.closed_at), "closed_by": names(accounts, case.closed_by)}
