"""`GET /api/live`: the console's WebSocket. Cookie-authenticated, same-origin only, events filtered
by role (content editors get no conversation events); while open it heartbeats presence."""
from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from bot import auth, presence
from bot.console.state import sockets_key, spawn
from bot.db.models import Account, StaffSession, utcnow
from bot.keys import gateway_key
from bot.outbox import _aware

logger = logging.getLogger(__name__)
PING_EVERY_S = 25.0


def same_origin(request: web.Request) -> bool:
    """A browser always sends Origin on a WebSocket handshake; it must name this host."""
    origin = request.headers.get("Origin")
    if not origin:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()


def visible(event: dict[str, Any], role: str) -> bool:
    if "conversation_id" in event and role not in auth.CASEWORK:
        return False
    roles = event.get("roles")
    return not roles or role in roles


async def _still_valid(request: web.Request, session_id: int, account_id: int, role: str) -> bool:
    gw = request.app[gateway_key]
    async with gw.sessions() as session:
        row = await session.get(StaffSession, session_id)
        account = await session.get(Account, account_id)
        now = utcnow()
        if row is None or row.revoked_at is not None or _aware(row.expires_at) < now:
            return False
        if account is None or not account.active or account.role != role:
            return False
        await presence.heartbeat(session, account_id, now)
        row.last_seen_at = now  # an open console is activity: no idle sign-out while it is open
        await session.commit()
    return True


CLOSING = "console_closing"


async def _close(ws: web.WebSocketResponse, code: int, message: bytes) -> None:
    """Close from the sending side; the reading side sees the flag and lets this finish."""
    ws[CLOSING] = True  # type: ignore[index]
    await ws.close(code=code, message=message)


async def _pump(request: web.Request, ws: web.WebSocketResponse, sub: Any, staff_session_id: int,
                account: Account) -> None:
    """Send the subscriber's events; every HEARTBEAT, mark presence and re-check the sign-in."""
    gw = request.app[gateway_key]
    interval = presence.HEARTBEAT.total_seconds()
    loop = asyncio.get_running_loop()
    next_beat = loop.time() + interval
    while not ws.closed:
        if sub not in gw.live.subscribers:  # dropped for falling behind: the page reloads its state
            await _close(ws, 4000, b"reload")
            return
        try:
            event = await asyncio.wait_for(sub.queue.get(), timeout=max(0.1, next_beat - loop.time()))
        except asyncio.TimeoutError:
            event = None
        if loop.time() >= next_beat:
            next_beat = loop.time() + interval
            if not await _still_valid(request, staff_session_id, account.id, account.role):
                await _close(ws, 4401, b"signed out")
                return
        if event is not None and visible(event, account.role):
            await ws.send_json({k: v for k, v in event.items() if k != "roles"})


async def _guarded_pump(request: web.Request, ws: web.WebSocketResponse, sub: Any, staff_session_id: int,
                        account: Account) -> None:
    try:
        await _pump(request, ws, sub, staff_session_id, account)
    except asyncio.CancelledError:
        raise
    except Exception:  # e.g. the database is unreachable: the page reconnects and reloads
        logger.exception("live connection of account %s failed", account.id)
        await _close(ws, 1011, b"server error")


async def _went_away(gw: Any, account_id: int) -> None:
    async with gw.sessions() as session:
        await presence.went_away(session, account_id)
        await session.commit()


async def live(request: web.Request) -> web.StreamResponse:
    gw = request.app[gateway_key]
    if not same_origin(request):
        return web.json_response({"error": "cross-origin WebSocket refused"}, status=403)
    found = await auth.current(request)
    if found is None:
        return web.json_response({"error": "sign in first"}, status=401)
    account, staff_session = found
    ws = web.WebSocketResponse(heartbeat=PING_EVERY_S, max_msg_size=4096)
    if not ws.can_prepare(request).ok:
        return web.json_response({"error": "this endpoint speaks WebSocket only"}, status=400)
    await ws.prepare(request)
    sockets = request.app[sockets_key]
    sockets.add(ws)
    sub = gw.live.subscribe(account.id, account.role)
    async with gw.sessions() as session:
        await presence.heartbeat(session, account.id)
        await session.commit()
    pump = asyncio.create_task(_guarded_pump(request, ws, sub, staff_session.id, account))
    try:
        await ws.send_json({"type": "hello", "user": auth.user_json(account)})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str("pong")
            elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
            if pump.done():
                break
    finally:
        # aiohttp may cancel this handler once the peer has gone: clean up before any await
        gw.live.unsubscribe(sub)
        sockets.discard(ws)
        if not any(s.account_id == account.id for s in gw.live.subscribers):
            spawn(request.app, _went_away(gw, account.id), "presence update")
        if CLOSING in ws and not pump.done():  # let the sending side finish the close it started
            await asyncio.wait({pump}, timeout=2)
        pump.cancel()
    return ws


async def online(request: web.Request) -> web.Response:
    """Who is online now (any replica), for the console header."""
    gw = request.app[gateway_key]
    async with gw.sessions() as session:
        rows = await presence.online_accounts(session)
    return web.json_response({"online": [{"name": a.username, "display_name": a.display_name or a.username,
                                          "role": a.role, "center": a.center} for a in rows]})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/live", live, name="api_live")
    app.router.add_get("/api/presence", auth.requires(*auth.CASEWORK)(online), name="api_presence")
