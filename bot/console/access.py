"""Small helpers the console's handlers share: errors, bodies, loading rows, who may act."""
from __future__ import annotations

import logging
from typing import Any, Iterable

from aiohttp import web
from sqlalchemy import select

from bot.auth import OVERSIGHT
from bot.db.models import Account, Case, Conversation

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """Answered as `{"error": message, ...extra}` with `status`."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra

    def response(self) -> web.Response:
        return web.json_response({"error": self.message, **self.extra}, status=self.status)


async def json_object(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    if optional and not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "the body must be JSON") from None
    if body is None and optional:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def conversation_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except (KeyError, ValueError):
        raise ApiError(404, "no such conversation") from None


async def get_conversation(session: Any, conv_id: int) -> Conversation:
    conv = await session.get(Conversation, conv_id)
    if conv is None:
        raise ApiError(404, "no such conversation")
    return conv


async def accounts_by_id(session: Any, ids: Iterable[int | None]) -> dict[int, Account]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {a.id: a for a in await session.scalars(select(Account).where(Account.id.in_(wanted)))}


async def open_case(session: Any, conv_id: int) -> Case | None:
    return await session.scalar(select(Case).where(Case.conversation_id == conv_id, Case.closed_at.is_(None))
                                .order_by(Case.id.desc()).limit(1))


async def latest_case(session: Any, conv_id: int) -> Case | None:
    return await session.scalar(select(Case).where(Case.conversation_id == conv_id)
                                .order_by(Case.id.desc()).limit(1))


def oversees(account: Account) -> bool:
    return account.role in OVERSIGHT


def require_holder(account: Account, conv: Conversation, holder_name: str | None = None) -> None:
    """Counselors act on conversations they hold; supervisors and admins on any open one."""
    if conv.state not in ("queued", "assigned"):
        raise ApiError(409, f"the conversation is {conv.state}, not in the queue", state=conv.state)
    if oversees(account) or conv.assigned_to == account.id:
        return
    if conv.state == "queued":
        raise ApiError(409, "take the conversation first", state=conv.state)
    raise ApiError(409, f"{holder_name or 'another counselor'} holds this conversation", state=conv.state,
                   assigned_to=holder_name)


async def ensure_holder(session: Any, account: Account, conv: Conversation) -> Account | None:
    """`require_holder` with the holder's name in the refusal; returns the holder (or None)."""
    holder = await session.get(Account, conv.assigned_to) if conv.assigned_to is not None else None
    require_holder(account, conv, holder.username if holder else None)
    return holder


def queue_event(conv: Conversation, **extra: Any) -> dict[str, Any]:
    return {"type": "queue", "conversation_id": conv.id, "state": conv.state, "priority": conv.priority,
            "reason": conv.reason, "center": conv.center, "assigned_to": conv.assigned_to, **extra}


def handle_errors(handler: Any) -> Any:
    """Turn ApiError into its JSON answer (applied inside `auth.requires`)."""
    import functools

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()

    return wrapper
