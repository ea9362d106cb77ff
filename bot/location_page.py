"""The share-location page: a one-time link the bot or a counselor sends; the page asks the
browser for its position (works in Messenger's and Zalo's in-app browsers) and posts it back.

Only a hash of the token is stored. A link expires after LOCATION_LINK_TTL and works once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import select, update

from bot.db.models import Conversation, LocationToken, Message, utcnow
from bot.keys import gateway_key
from bot.outbox import _aware
from bot.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from bot.gateway import Gateway

logger = logging.getLogger(__name__)
PAGE = PROJECT_ROOT / "bot" / "static" / "location.html"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def new_link(gw: "Gateway", session: Any, conv: Conversation) -> str:
    token = secrets.token_urlsafe(24)
    session.add(LocationToken(token_hash=_hash(token), conversation_id=conv.id,
                              expires_at=utcnow() + timedelta(seconds=gw.settings.location_link_ttl_s)))
    return f"{gw.settings.public_base_url}/l/{token}"


async def _valid_token(session: Any, token: str) -> LocationToken | None:
    row = await session.scalar(select(LocationToken).where(LocationToken.token_hash == _hash(token)))
    if row is None or row.used_at is not None or _aware(row.expires_at) < utcnow():
        return None
    return row


async def page(request: web.Request) -> web.Response:
    gw: Gateway = request.app[gateway_key]
    async with gw.sessions() as session:
        ok = await _valid_token(session, request.match_info["token"]) is not None
    html = PAGE.read_text(encoding="utf-8").replace("__STATE__", "ready" if ok else "expired")
    return web.Response(text=html, content_type="text/html", status=200 if ok else 410,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                 "X-Frame-Options": "DENY",
                                 "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
                                                            "style-src 'unsafe-inline'; connect-src 'self'"})


def _coordinates(body: Any) -> tuple[float, float, float | None]:
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    lat, lon = float(body["lat"]), float(body["lon"])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError("coordinates out of range")
    accuracy = body.get("accuracy")
    return lat, lon, float(accuracy) if isinstance(accuracy, (int, float)) else None


async def submit(request: web.Request) -> web.Response:
    gw: Gateway = request.app[gateway_key]
    try:
        lat, lon, accuracy = _coordinates(json.loads(await request.read()))
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "send {lat, lon} as numbers"}, status=400)
    token_hash = _hash(request.match_info["token"])
    async with gw.sessions() as session:
        # One use only: the UPDATE succeeds for exactly one request even when two race.
        result = await session.execute(
            update(LocationToken).where(LocationToken.token_hash == token_hash, LocationToken.used_at.is_(None),
                                        LocationToken.expires_at > utcnow()).values(used_at=utcnow()))
        if result.rowcount != 1:
            await session.rollback()
            return web.json_response({"error": "this link has expired or was already used"}, status=410)
        row = await session.scalar(select(LocationToken).where(LocationToken.token_hash == token_hash))
        conv = await session.get(Conversation, row.conversation_id)
        session.add(Message(conversation_id=conv.id, direction="in", author="user", channel=conv.channel,
                            external_id=f"page-{token_hash[:32]}", status="pending", attempts=0,
                            payload={"kind": "message", "location_source": "page",
                                     "location": {"lat": lat, "lon": lon, "label": None, "accuracy_m": accuracy}}))
        await session.commit()
    gw.wake_inbox()
    return web.json_response({"ok": True})


def setup(app: web.Application) -> None:
    app.router.add_get("/l/{token}", page, name="location_page")
    app.router.add_post("/l/{token}", submit, name="location_submit")

