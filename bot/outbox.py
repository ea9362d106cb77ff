"""The outbox: every message to a person is a row first, then sent with retries and backoff.

A row goes pending -> sending -> sent, or back to pending with a later `next_attempt_at` after a
retryable failure, or to failed (visible in the console) when it cannot be delivered. Rows of one
conversation are sent in order: a row waits while an older one of the same conversation is unsent.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import aliased

from bot.db.models import Conversation, Message, utcnow
from bot.gateway import STOP_GRACE_S, finish
from bot.senders import Outgoing
from channels.base import SendError
from channels.messenger import TEXT_LIMIT, split_text  # Zalo's limit is the same 2,000 characters

if TYPE_CHECKING:
    from bot.gateway import Gateway

logger = logging.getLogger(__name__)
SEND_LEASE = timedelta(seconds=60)
MESSENGER_STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
UNREACHABLE = "unreachable until the person writes again"


def backoff(attempt: int, base_s: float = 1.0) -> timedelta:
    return timedelta(seconds=min(base_s * 2 ** attempt, 300))


def enqueue(session: Any, conv: Conversation, text: str, *, author: str = "bot",
            payload: dict[str, Any] | None = None, account_id: int | None = None) -> list[Message]:
    """The text as outbox rows: one per platform message (TEXT_LIMIT), so that a retry after a
    failed part sends only that part again; quick replies and buttons go with the last part."""
    parts = split_text(text, TEXT_LIMIT) if len(text) > TEXT_LIMIT else [text]
    rows = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        row = Message(conversation_id=conv.id, direction="out", author=author, channel=conv.channel, text=part,
                      payload=(payload or None) if last else None, status="pending", account_id=account_id)
        session.add(row)
        session.info.setdefault(_ENQUEUED, []).append((row, conv))
        rows.append(row)
    return rows


_ENQUEUED = "outbox_rows"


async def claim_enqueued(session: Any) -> None:
    """Just before the commit: when nothing older of their conversations is unsent, the rows this
    session enqueued are committed already claimed (`sending`), so that `send_soon` can send them
    without another transaction; otherwise they wait their turn in the sender loop. Rows left
    `sending` by a crash go back to pending when their lease runs out (`release_stale`)."""
    rows = [row for row, _ in session.info.get(_ENQUEUED, ())]
    if not rows:
        return
    with session.no_autoflush:  # the new rows are not in the database yet
        older = await session.scalar(
            select(Message.id).where(Message.conversation_id.in_({r.conversation_id for r in rows}),
                                     Message.direction == "out", Message.status.in_(("pending", "sending")))
            .limit(1))
    if older is None:
        until = utcnow() + SEND_LEASE
        for row in rows:
            row.status, row.lease_until = "sending", until


def send_soon(gw: "Gateway", session: Any) -> None:
    """After the commit: send the rows the session claimed (`claim_enqueued`) at once, in order,
    rather than when the sender loop finds them. A row that must be retried stops the rest: they
    go back to the loop, which keeps the conversation's order."""
    rows = session.info.pop(_ENQUEUED, [])
    claimed = [(row, conv) for row, conv in rows if row.status == "sending" and row.id is not None]
    if len(claimed) < len(rows):
        gw.outbox_event.set()
    if not claimed:
        return

    async def send_in_order() -> None:
        for index, (row, conv) in enumerate(claimed):
            try:
                status = "pending" if gw.stopping else await send_one(gw, row.id, loaded=(row, conv))
            except Exception:  # the rows stay claimed until their lease ends, then the loop sends them
                logger.exception("sending message %s failed; it stays in the outbox", row.id)
                return
            if status == "pending":
                await _release(gw, [r.id for r, _ in claimed[index:]])  # (only rows still `sending`)
                return

    gw.spawn(send_in_order())


def discard_enqueued(session: Any) -> None:
    """After a rollback: the enqueued rows do not exist."""
    session.info.pop(_ENQUEUED, None)


def reply_window(conv: Conversation, now: datetime | None = None) -> dict[str, Any]:
    """How long the platform lets us answer: Messenger 24 h (7 days for a counselor's reply with the
    HUMAN_AGENT tag), Zalo 7 days for consultation messages."""
    now = now or utcnow()
    last = _aware(conv.last_user_at)
    if last is None:
        return {"open": False, "bot_closes_at": None, "human_closes_at": None}
    standard = last + (MESSENGER_STANDARD_WINDOW if conv.channel == "messenger" else HUMAN_AGENT_WINDOW)
    human = last + HUMAN_AGENT_WINDOW
    return {"open": now < human and not conv.unreachable, "bot_closes_at": standard.isoformat(),
            "human_closes_at": human.isoformat(), "bot_open": now < standard,
            "seconds_left": max(0, int((human - now).total_seconds()))}


def _aware(ts: datetime | None) -> datetime | None:
    if ts is not None and ts.tzinfo is None:  # SQLite returns naive datetimes
        from datetime import timezone

        return ts.replace(tzinfo=timezone.utc)
    return ts


async def release_stale(gw: "Gateway") -> int:
    """After a crash: rows left `sending` past their lease go back to pending."""
    async with gw.sessions() as session:
        result = await session.execute(
            update(Message).where(Message.direction == "out", Message.status == "sending",
                                  Message.lease_until < utcnow()).values(status="pending", lease_until=None))
        await session.commit()
        return result.rowcount or 0


async def _release(gw: "Gateway", message_ids: list[int]) -> None:
    """Claimed rows that will not be sent now go back to pending for the sender loop."""
    if message_ids:
        async with gw.sessions() as session:
            await session.execute(update(Message).where(Message.id.in_(message_ids), Message.status == "sending")
                                  .values(status="pending", lease_until=None))
            await session.commit()
    gw.outbox_event.set()


async def _due(gw: "Gateway", limit: int = 50) -> list[int]:
    """The oldest unsent row of each conversation, when it is due."""
    async with gw.sessions() as session:
        oldest = (select(func.min(Message.id).label("id"))
                  .where(Message.direction == "out", Message.status.in_(("pending", "sending")))
                  .group_by(Message.conversation_id).subquery())
        now = utcnow()
        rows = await session.scalars(
            select(Message.id).join(oldest, oldest.c.id == Message.id)
            .where(Message.status == "pending",
                   or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now))
            .order_by(Message.id).limit(limit))
        return list(rows)


async def _claim(gw: "Gateway", message_id: int) -> bool:
    """Take a due row for sending; refused when another sender holds it or when an older row of
    its conversation is still unsent (rows of one conversation go out in order)."""
    older = aliased(Message)
    now = utcnow()
    async with gw.sessions() as session:
        result = await session.execute(
            update(Message).where(and_(
                Message.id == message_id, Message.status == "pending",
                or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
                ~select(older.id).where(older.conversation_id == Message.conversation_id, older.direction == "out",
                                        older.status.in_(("pending", "sending")), older.id < message_id)
                .exists()))
            .values(status="sending", lease_until=now + SEND_LEASE).execution_options(synchronize_session=False))
        await session.commit()
        return result.rowcount == 1


async def send_one(gw: "Gateway", message_id: int,
                   loaded: tuple[Message, Conversation] | None = None) -> str:
    """Send one claimed row; returns its new status (sent, pending for a retry, or failed).
    `loaded`: the row and its conversation as just committed (by `send_soon`), not read again."""
    async with gw.sessions() as session:
        if loaded is not None:
            row = await session.merge(loaded[0], load=False)
            conv = await session.merge(loaded[1], load=False)
        else:
            row, conv = (await session.execute(
                select(Message, Conversation).join(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.id == message_id))).one()
        sender = gw.senders.get(row.channel)
        now = utcnow()
        window = reply_window(conv, now)
        human_agent = row.author == "counselor" and row.channel == "messenger" and not window.get("bot_open", False)
        error: SendError | None = None
        if sender is None:
            error = SendError(f"the {row.channel} channel is not configured", retryable=False)
        elif not window["open"] or (row.author != "counselor" and not window.get("bot_open", False)):
            error = SendError(UNREACHABLE, retryable=False, unreachable=True)
        else:
            try:
                result = await sender.send(conv.user_id, Outgoing.from_row(row.text, row.payload, human_agent))
            except SendError as exc:
                error = exc
            except ValueError as exc:  # the clients refuse a malformed message: retrying cannot help
                error = SendError(f"not sendable: {exc}", retryable=False)
            except Exception as exc:  # a bug or an unexpected answer: keep the row, retry later
                logger.exception("unexpected error while sending message %s", row.id)
                error = SendError(f"{type(exc).__name__}", retryable=True)
        row.attempts += 1
        row.lease_until = None
        if error is None:
            row.status, row.platform_message_id, row.done_at, row.error = "sent", result.platform_message_id, now, None
            gw.metrics.inc("messages_sent_total", channel=row.channel)
        elif error.retryable and row.attempts < gw.settings.send_max_attempts:
            row.status, row.next_attempt_at, row.error = "pending", now + backoff(row.attempts, gw.settings.retry_base_s), str(error)
            gw.metrics.inc("send_retries_total", channel=row.channel)
        else:
            row.status, row.error, row.done_at = "failed", (UNREACHABLE if error.unreachable else str(error)), now
            if error.unreachable:
                conv.unreachable = True
            gw.metrics.inc("send_failures_total", channel=row.channel)
            logger.warning("message %s to conversation %s failed: %s", row.id, conv.id, row.error)
        await session.commit()
        event = {"type": "message_status", "conversation_id": conv.id, "message_id": row.id,
                 "status": row.status, "error": row.error}
    await gw.live.publish(event)
    if row.status == "pending":
        gw.wake_outbox_at(row.next_attempt_at)
    gw.outbox_event.set()  # the conversation's next row may be due now
    return row.status


async def run(gw: "Gateway") -> None:
    """The sender loop: claims due rows and sends them, several conversations at a time."""
    await release_stale(gw)
    running: set[asyncio.Task] = set()
    limit = asyncio.Semaphore(gw.settings.worker_concurrency)
    last_stale_check = utcnow()

    async def guarded(mid: int) -> None:
        async with limit:
            try:
                await send_one(gw, mid)
            except Exception:
                logger.exception("sending message %s failed; it stays in the outbox", mid)

    try:
        while not gw.stopping:
            gw.outbox_event.clear()
            try:
                for mid in await _due(gw):
                    if await _claim(gw, mid):
                        task = asyncio.create_task(guarded(mid))
                        running.add(task)
                        task.add_done_callback(running.discard)
                if utcnow() - last_stale_check > SEND_LEASE:
                    last_stale_check = utcnow()
                    await release_stale(gw)
            except Exception:
                logger.exception("outbox loop error; retrying in a second")
                await asyncio.sleep(1)
            try:
                await asyncio.wait_for(gw.outbox_event.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
    finally:
        await finish(list(running), STOP_GRACE_S)  # the message or send in hand, then cancel
