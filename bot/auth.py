"""Console sign-in: server-side sessions in an HttpOnly cookie, CSRF tokens, roles, throttling,
and the audit log.

Every state-changing `/api/` request must carry `X-CSRF-Token` with the token returned at sign-in
(403 otherwise). A role outside an endpoint's set gets 403; no session gets 401.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any, Awaitable, Callable

from aiohttp import web
from sqlalchemy import delete, func, select

from bot import accounts
from bot.db.models import Account, AuditEntry, LoginFailure, StaffSession, utcnow
from bot.keys import gateway_key

logger = logging.getLogger(__name__)
COOKIE = "hotline_session"
SESSION_TTL = timedelta(hours=12)
IDLE_TTL = timedelta(hours=2)
THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_MAX_FAILURES = 5
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
ALL_STAFF = ("counselor", "supervisor", "content_editor", "admin")
CASEWORK = ("counselor", "supervisor", "admin")
CONTENT = ("content_editor", "admin")
OVERSIGHT = ("supervisor", "admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_ip(request: web.Request) -> str:
    return request.remote or "unknown"


def _secure(request: web.Request) -> bool:
    settings = request.app[gateway_key].settings
    return settings.public_base_url.startswith("https://") or request.secure


def user_json(account: Account) -> dict[str, Any]:
    return {"id": account.id, "name": account.username, "display_name": account.display_name or account.username,
            "role": account.role, "center": account.center}


async def audit(session: Any, account: Account | None, action: str, target: str | None = None,
                detail: dict[str, Any] | None = None) -> None:
    session.add(AuditEntry(account_id=account.id if account else None, action=action, target=target,
                           detail=detail or None, at=utcnow()))


async def _throttled(session: Any, username: str, ip: str) -> bool:
    since = utcnow() - THROTTLE_WINDOW
    by_name = await session.scalar(select(func.count()).select_from(LoginFailure)
                                   .where(LoginFailure.username == username, LoginFailure.at > since))
    by_ip = await session.scalar(select(func.count()).select_from(LoginFailure)
                                 .where(LoginFailure.ip == ip, LoginFailure.at > since))
    return (by_name or 0) >= THROTTLE_MAX_FAILURES or (by_ip or 0) >= THROTTLE_MAX_FAILURES * 4


async def login(request: web.Request) -> web.Response:
    gw = request.app[gateway_key]
    try:
        body = await request.json()
        username, password = str(body["username"]), str(body["password"])
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "send {username, password}"}, status=400)
    ip = client_ip(request)
    async with gw.sessions() as session:
        if await _throttled(session, username, ip):
            await audit(session, None, "login_throttled", username, {"ip": ip})
            await session.commit()
            return web.json_response({"error": "too many failed sign-ins; wait 15 minutes"}, status=429,
                                     headers={"Retry-After": str(int(THROTTLE_WINDOW.total_seconds()))})
        account = await accounts.authenticate(session, username, password)
        if account is None:
            session.add(LoginFailure(username=username[:64], ip=ip[:64], at=utcnow()))
            await audit(session, None, "login_failed", username[:64], {"ip": ip})
            await session.commit()
            return web.json_response({"error": "wrong name or password"}, status=401)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = utcnow()
        session.add(StaffSession(token_hash=_hash(token), account_id=account.id, csrf_token=csrf,
                                 created_at=now, last_seen_at=now, expires_at=now + SESSION_TTL))
        await session.execute(delete(LoginFailure).where(LoginFailure.username == username))
        account.last_seen_at = now
        await audit(session, account, "login", account.username, {"ip": ip})
        await session.commit()
        response = web.json_response({"user": user_json(account), "csrf_token": csrf})
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=_secure(request),
                        max_age=int(SESSION_TTL.total_seconds()), path="/")
    return response


async def current(request: web.Request) -> tuple[Account, StaffSession] | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    gw = request.app[gateway_key]
    from bot.outbox import _aware

    async with gw.sessions() as session:
        row = await session.scalar(select(StaffSession).where(StaffSession.token_hash == _hash(token)))
        if row is None or row.revoked_at is not None:
            return None
        now = utcnow()
        if _aware(row.expires_at) < now or _aware(row.last_seen_at) + IDLE_TTL < now:
            return None
        account = await session.get(Account, row.account_id)
        if account is None or not account.active:
            return None
        if now - _aware(row.last_seen_at) > timedelta(minutes=1):
            row.last_seen_at = now
            await session.commit()
        return account, row


async def logout(request: web.Request) -> web.Response:
    gw = request.app[gateway_key]
    who = request.get("account")
    async with gw.sessions() as session:
        row = await session.get(StaffSession, request["staff_session"].id)
        row.revoked_at = utcnow()
        if who is not None:  # drops out of presence soon unless a console is still open elsewhere
            from bot.presence import went_away

            await went_away(session, who.id)
        await audit(session, who, "logout", who.username if who else None)
        await session.commit()
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    return web.json_response({"user": user_json(request["account"]), "csrf_token": request["staff_session"].csrf_token})


def requires(*roles: str) -> Callable[[Handler], Handler]:
    """Signed in (401), in one of `roles` (403), and for state changes the CSRF header (403)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            found = await current(request)
            if found is None:
                return web.json_response({"error": "sign in first"}, status=401)
            account, staff_session = found
            if request.method not in SAFE_METHODS:
                sent = request.headers.get("X-CSRF-Token", "")
                if not hmac.compare_digest(sent.encode(), staff_session.csrf_token.encode()):
                    return web.json_response({"error": "missing or wrong X-CSRF-Token"}, status=403)
            if roles and account.role not in roles:
                return web.json_response({"error": f"your role ({account.role}) cannot do this"}, status=403)
            request["account"], request["staff_session"] = account, staff_session
            return await handler(request)

        wrapper.roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate


def setup(app: web.Application) -> None:
    app.router.add_post("/api/login", login, name="api_login")
    app.router.add_post("/api/logout", requires(*ALL_STAFF)(logout), name="api_logout")
    app.router.add_get("/api/me", requires(*ALL_STAFF)(me), name="api_me")
