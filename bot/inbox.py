"""The inbox: verified events are stored first (deduplicated), then processed in order, one
conversation at a time, by a worker that holds a lease on the conversation.

Processing one message happens in one transaction: the replies it produces (outbox rows), the
queue change and the message's own `done` mark commit together, so after a crash a message is
either fully handled or still pending — never answered twice.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot import escalation, outbox
from bot.db.models import Conversation, Location, Message, utcnow
from bot.dbutil import insert_ignoring_duplicates
from bot.gateway import STOP_GRACE_S, finish
from bot.language import detect_language
from bot.text import fold, nfc
from channels.base import InboundMessage

if TYPE_CHECKING:
    from bot.gateway import Gateway

logger = logging.getLogger(__name__)
LEASE = timedelta(seconds=30)
EXIT_WORDS = {"thoat", "stop", "exit", "quit", "dung lai", "thoat ra", "huy"}
QUEUED_ACK_EVERY = timedelta(minutes=10)
RASA_DOWN_NOTICE_EVERY = timedelta(minutes=10)
PROCESSING_ATTEMPTS = 3
RASA_RETRY_MAX_S = 10  # a message waiting for Rasa is tried at least this often
RASA_MAX_TEXT = 4_000  # platforms cap a message at about 2,000 characters; anything longer is odd
TYPING_AFTER_S = 0.3  # Messenger's typing indicator when Rasa has not answered by then
MAX_TEXT = 20_000  # longer texts are cut for processing; the stored raw event keeps everything


def is_exit(text: str | None) -> bool:
    return bool(text) and fold(text, teencode=False) in EXIT_WORDS


def sender_id(conv: Conversation) -> str:
    return f"{conv.channel}-{conv.user_id}"


# ---------------------------------------------------------------- storing


async def _conversation(session: Any, channel: str, user_id: str) -> Conversation:
    conv = await session.scalar(select(Conversation).where(Conversation.channel == channel,
                                                           Conversation.user_id == user_id))
    if conv is None:
        try:
            async with session.begin_nested():
                conv = Conversation(channel=channel, user_id=user_id, state="bot", summary={}, notices={})
                session.add(conv)
        except IntegrityError:  # created at the same moment by another request
            conv = await session.scalar(select(Conversation).where(Conversation.channel == channel,
                                                                   Conversation.user_id == user_id))
    return conv


async def store(gw: "Gateway", events: Iterable[InboundMessage]) -> int:
    """Store verified events; a redelivered event (same channel + external id) is a no-op.
    Returns how many were new. Commits before returning: only then may the webhook answer 200."""
    new, conversations = 0, set()
    async with gw.sessions() as session:
        for ev in events:
            conv = await _conversation(session, ev.channel, ev.user_id)
            payload: dict[str, Any] = {"kind": ev.kind}
            if ev.location:
                payload["location"] = {"lat": ev.location.lat, "lon": ev.location.lon, "label": ev.location.label}
            if ev.attachments:
                payload["attachments"] = [{"type": a.type, "url": a.url, "name": a.name} for a in ev.attachments]
            if ev.payload:
                payload["postback"] = ev.payload
            result = await session.execute(insert_ignoring_duplicates(session, Message.__table__, dict(
                conversation_id=conv.id, direction="in", author="user", channel=ev.channel,
                external_id=ev.external_id, text=nfc(ev.text) if ev.text else None, payload=payload,
                status="pending", attempts=0, sent_ts=ev.ts, created_at=utcnow())))
            if result.rowcount:
                new += result.rowcount
                conversations.add(conv.id)
        await session.commit()
    if new:
        gw.metrics.inc("inbound_messages_total", amount=new)
        gw.wake_inbox(conversations)
    return new


# ---------------------------------------------------------------- processing


async def _due_conversations(gw: "Gateway", limit: int = 100) -> list[int]:
    now = utcnow()
    async with gw.sessions() as session:
        rows = await session.execute(
            select(Message.conversation_id, func.min(Message.id).label("first"))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.direction == "in", Message.status == "pending",
                   or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
                   or_(Conversation.lease_until.is_(None), Conversation.lease_until < now,
                       Conversation.lease_owner == gw.worker_id))
            .group_by(Message.conversation_id).order_by("first").limit(limit))
        return [r[0] for r in rows]


async def _lease(gw: "Gateway", conv_id: int) -> bool:
    now = utcnow()
    async with gw.sessions() as session:
        result = await session.execute(
            update(Conversation).where(and_(Conversation.id == conv_id, or_(
                Conversation.lease_until.is_(None), Conversation.lease_until < now,
                Conversation.lease_owner == gw.worker_id)))
            .values(lease_owner=gw.worker_id, lease_until=now + LEASE))
        await session.commit()
        return result.rowcount == 1


async def _still_leased(gw: "Gateway", session: Any, conv_id: int) -> bool:
    """Inside the message's transaction: renew our lease, or learn that we lost it. The UPDATE
    locks the conversation row until the commit, so no other replica can take the lease between
    this check and the commit of the message's `done` mark and replies."""
    result = await session.execute(
        update(Conversation).where(Conversation.id == conv_id, Conversation.lease_owner == gw.worker_id)
        .values(lease_until=utcnow() + LEASE).execution_options(synchronize_session=False))
    return result.rowcount == 1


def _lease_may_have_lapsed(leased_at: float) -> bool:
    """Whether the lease taken (or renewed) at `leased_at` must be checked before a commit. Until a
    third of it has passed no other replica can have taken it, even with clocks some seconds apart
    (replicas keep time with NTP), so a quick message commits without the extra statement."""
    return time.monotonic() - leased_at > LEASE.total_seconds() / 3


async def _unlease(gw: "Gateway", conv_id: int) -> None:
    async with gw.sessions() as session:
        await session.execute(update(Conversation).where(Conversation.id == conv_id,
                                                         Conversation.lease_owner == gw.worker_id)
                              .values(lease_owner=None, lease_until=None))
        await session.commit()


async def process_conversation(gw: "Gateway", conv_id: int) -> None:
    """Handle the conversation's pending messages oldest first; stop at one that must wait."""
    leased_at = time.monotonic()
    if not await _lease(gw, conv_id):
        return
    try:
        while not gw.stopping:
            async with gw.sessions() as session:
                # the conversation comes along (one statement): handle() finds it in the session
                row = (await session.execute(
                    select(Message, Conversation).join(Conversation, Conversation.id == Message.conversation_id)
                    .where(Message.conversation_id == conv_id, Message.direction == "in",
                           Message.status == "pending").order_by(Message.id).limit(1))).first()
                if row is None:
                    return
                msg = row[0]
                if msg.next_attempt_at is not None and outbox._aware(msg.next_attempt_at) > utcnow():
                    gw.wake_inbox_at(outbox._aware(msg.next_attempt_at))
                    return
                msg_id = msg.id
                try:
                    events = await handle(gw, session, msg)
                    if _lease_may_have_lapsed(leased_at):
                        renewing_at = time.monotonic()
                        if not await _still_leased(gw, session, conv_id):
                            # another replica took the conversation after our lease ran out, and
                            # handles this message itself: our replies must not be committed too
                            await session.rollback()
                            gw.metrics.inc("lease_lost_total")
                            logger.warning("conversation %s: lease lost while handling message %s; "
                                           "left to the replica that holds it", conv_id, msg_id)
                            return
                        leased_at = renewing_at  # renewed in this transaction
                    await outbox.claim_enqueued(session)
                    await session.commit()
                    outbox.send_soon(gw, session)
                except Exception:
                    logger.exception("conversation %s: message %s could not be processed", conv_id, msg_id)
                    await session.rollback()
                    outbox.discard_enqueued(session)
                    events = await _processing_failed(gw, conv_id, msg_id)
                    gw.outbox_event.set()
                    leased_at = time.monotonic()
                    if not await _lease(gw, conv_id):  # renew; lost only if we stalled past the lease
                        return
            for event in events:
                await gw.live.publish(event)
    finally:
        await _unlease(gw, conv_id)


async def _processing_failed(gw: "Gateway", conv_id: int, msg_id: int) -> list[dict[str, Any]]:
    """A message whose processing raised: retry with backoff; after a few tries a person must see
    it, so the conversation goes to the queue rather than the message being dropped."""
    async with gw.sessions() as session:
        msg = await session.get(Message, msg_id)
        conv = await session.get(Conversation, conv_id)
        msg.attempts += 1
        msg.error = "processing failed"
        events: list[dict[str, Any]] = []
        if msg.attempts >= PROCESSING_ATTEMPTS:
            msg.status, msg.done_at = "done", utcnow()
            await escalation.escalate(gw, session, conv, "at_risk", "could not be processed automatically")
            events = [_message_event(conv, msg), _queue_event(conv)]
        else:
            msg.next_attempt_at = utcnow() + timedelta(seconds=gw.settings.retry_base_s * 2 ** msg.attempts)
            gw.wake_inbox_at(msg.next_attempt_at)
        await session.commit()
    gw.metrics.inc("processing_failures_total")
    return events


async def run(gw: "Gateway") -> None:
    """The worker loop: picks conversations with pending messages, several at a time."""
    active: dict[int, asyncio.Task] = {}
    limit = asyncio.Semaphore(gw.settings.worker_concurrency)

    async def guarded(conv_id: int) -> None:
        async with limit:
            try:
                await process_conversation(gw, conv_id)
            except Exception:
                logger.exception("processing conversation %s failed; its messages stay pending", conv_id)
            finally:
                active.pop(conv_id, None)
                scan_now.set()  # a message may have arrived while it was finishing
                gw.inbox_event.set()

    last_scan = 0.0
    scan_now = asyncio.Event()
    try:
        while not gw.stopping:
            gw.inbox_event.clear()
            try:
                # Conversations that just received a message start at once; the scan for every
                # due one (retries, other replicas' leftovers) runs when nothing is hinted, and
                # at least every second.
                due = gw.take_inbox_hints()
                if not due or scan_now.is_set() or time.monotonic() - last_scan > 1.0:
                    last_scan = time.monotonic()
                    scan_now.clear()
                    due += await _due_conversations(gw)
                for conv_id in due:
                    if conv_id not in active:
                        active[conv_id] = asyncio.create_task(guarded(conv_id))
            except Exception:
                logger.exception("inbox loop error; retrying in a second")
                await asyncio.sleep(1)
            try:
                await asyncio.wait_for(gw.inbox_event.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
    finally:
        await finish(list(active.values()), STOP_GRACE_S)  # the message or send in hand, then cancel


# ---------------------------------------------------------------- one message


def _notice_due(conv: Conversation, name: str, every: timedelta) -> bool:
    last = (conv.notices or {}).get(name)
    if not last:
        return True
    from datetime import datetime

    return utcnow() - outbox._aware(datetime.fromisoformat(last)) >= every


def _mark_notice(conv: Conversation, name: str) -> None:
    conv.notices = {**(conv.notices or {}), name: utcnow().isoformat()}


def _message_event(conv: Conversation, msg: Message) -> dict[str, Any]:
    return {"type": "message", "conversation_id": conv.id, "message": {
        "id": msg.id, "direction": msg.direction, "author": msg.author, "text": msg.text,
        "payload": msg.payload, "status": msg.status, "created_at": msg.created_at.isoformat() if msg.created_at else None}}


def _queue_event(conv: Conversation) -> dict[str, Any]:
    return {"type": "queue", "conversation_id": conv.id, "state": conv.state, "priority": conv.priority,
            "reason": conv.reason, "center": conv.center, "assigned_to": conv.assigned_to}


async def handle(gw: "Gateway", session: Any, msg: Message) -> list[dict[str, Any]]:
    """Decide what one inbound message means. Returns live events to publish after the commit."""
    started = time.perf_counter()
    conv = await session.get(Conversation, msg.conversation_id)
    payload = msg.payload or {}
    kind = payload.get("kind", "message")
    text = (msg.text or "")[:MAX_TEXT]
    events: list[dict[str, Any]] = []
    now = utcnow()
    msg.status, msg.done_at = "done", now

    if kind == "unfollow":
        return events
    from_page = payload.get("location_source") == "page"
    if not from_page:  # the platform's reply window counts only messages sent on the platform
        conv.last_user_at, conv.unreachable = now, False
    if text:
        conv.language = detect_language(text, conv.language)
    lang = conv.language or "vi"
    if kind == "follow":
        if conv.state in ("bot", "closed"):
            outbox.enqueue(session, conv, await gw.text("utter_greet", lang))
        return events

    was_queued = conv.state in ("queued", "assigned")
    events.append(_message_event(conv, msg))
    screen = await gw.content.safety_screen()
    verdict = screen.check(text) if text else None
    location = payload.get("location")
    resolution = None
    if location:
        resolution = await _store_location(session, conv, msg, location, source="page" if from_page else conv.channel,
                                           accuracy_m=location.get("accuracy_m"))

    if is_exit(text):
        outbox.enqueue(session, conv, await gw.text("utter_exit", lang))
        return events

    if was_queued:
        if verdict and verdict.escalate:
            await escalation.escalate(gw, session, conv, verdict.priority, verdict.reason)
        if resolution:
            conv.summary = escalation.merge_facts(conv.summary, {"where": where_from(resolution)})
        if location:
            outbox.enqueue(session, conv, await gw.text("utter_location_received", lang))
        elif conv.state == "queued" and _notice_due(conv, "queued_more", QUEUED_ACK_EVERY):
            outbox.enqueue(session, conv, await gw.text("utter_queued_more", lang))
            _mark_notice(conv, "queued_more")
        events.append(_queue_event(conv))
        return events

    if verdict and verdict.escalate or location:
        from bot.facts import extract_facts

        texts = [t for t in await _recent_user_texts(session, conv.id)] + ([text] if text else [])
        facts = extract_facts(texts)
        if resolution and not facts.get("where"):
            facts["where"] = where_from(resolution)
        if verdict and verdict.escalate:
            priority, reason = verdict.priority, verdict.reason
            key = "utter_risk_emergency" if priority == "emergency" else "utter_risk_at_risk"
        else:
            priority, reason, key = "at_risk", "shared a location", "utter_location_received"
        outbox.enqueue(session, conv, await gw.text(key, lang))
        center = (resolution or {}).get("center")
        if await escalation.escalate(gw, session, conv, priority, reason, facts, center=center):
            await escalation.acknowledge(gw, session, conv, send_location_link=not location)
        events.append(_queue_event(conv))
        gw.metrics.observe("screen_to_queue_seconds", time.perf_counter() - started)
        return events

    if not text:  # an image, a sticker, a file: the bot cannot read them
        if payload.get("attachments"):
            outbox.enqueue(session, conv, await gw.text("utter_default", lang))
        return events

    if conv.state == "closed":
        conv.state = "bot"
    from bot.rasa_client import RasaUnavailable

    metadata = {"channel": conv.channel, "language": lang}
    try:
        t0 = time.perf_counter()
        async with _typing_while_slow(gw, conv):
            replies = await gw.rasa.send(sender_id(conv), text[:RASA_MAX_TEXT], metadata)
        gw.metrics.observe("rasa_seconds", time.perf_counter() - t0)
    except RasaUnavailable as exc:
        logger.warning("conversation %s: %s; the message stays pending", conv.id, exc)
        msg.status, msg.done_at = "pending", None
        msg.attempts += 1
        msg.next_attempt_at = now + timedelta(seconds=min(gw.settings.retry_base_s * 2 ** msg.attempts, RASA_RETRY_MAX_S))
        msg.error = str(exc)
        if _notice_due(conv, "rasa_down", RASA_DOWN_NOTICE_EVERY):
            outbox.enqueue(session, conv, await gw.text("utter_rasa_down", lang))
            _mark_notice(conv, "rasa_down")
        gw.metrics.inc("rasa_failures_total")
        gw.wake_inbox_at(msg.next_attempt_at)
        return []  # the message is not handled yet: nothing to show before it is
    msg.error = None
    await _apply_replies(gw, session, conv, replies, events)
    return events


def where_from(resolution: dict[str, Any]) -> str | None:
    """A shared location as the summary's "where": the nearest place and its province, or the
    country when abroad ("Móng Cái, Quảng Ninh"; "Đông Hưng, Trung Quốc")."""
    place = resolution.get("place")
    area = resolution.get("province") or (resolution.get("country_name") or {}).get("vi")
    return ", ".join(p for p in (place, area) if p) or None


@contextlib.asynccontextmanager
async def _typing_while_slow(gw: "Gateway", conv: Conversation) -> AsyncIterator[None]:
    """Messenger's typing indicator while Rasa thinks, shown only when the answer takes longer
    than TYPING_AFTER_S (a quick answer needs none, and each indicator is an API call); best
    effort, outside the outbox."""
    sender = gw.senders.get(conv.channel)
    typing = getattr(sender, "typing", None)
    if typing is None:
        yield
        return

    async def show() -> None:
        try:
            await typing(conv.user_id)
        except Exception as exc:  # never let an indicator get in the way of the answer
            logger.debug("typing indicator failed: %s", type(exc).__name__)

    async def after_a_while() -> None:
        await asyncio.sleep(TYPING_AFTER_S)
        gw.spawn(show())  # once started, it is not cancelled with the wait

    waiting = asyncio.create_task(after_a_while())
    try:
        yield
    finally:
        waiting.cancel()


async def _apply_replies(gw: "Gateway", session: Any, conv: Conversation, replies: list[dict[str, Any]],
                         events: list[dict[str, Any]]) -> None:
    from bot.replies import render

    handoff = None
    for out in render(replies):
        if out.handoff:
            handoff = out.handoff
            continue
        outbox.enqueue(session, conv, out.text, payload=out.payload)
    if handoff:
        priority = handoff.get("priority") if handoff.get("priority") in escalation.PRIORITY_RANK else "request"
        facts = handoff.get("facts") or {}
        if await escalation.escalate(gw, session, conv, priority, str(handoff.get("reason") or priority)[:255], facts):
            await escalation.acknowledge(gw, session, conv, send_location_link=priority != "request")
        events.append(_queue_event(conv))


async def _recent_user_texts(session: Any, conv_id: int, limit: int = 20) -> list[str]:
    rows = await session.scalars(
        select(Message.text).where(Message.conversation_id == conv_id, Message.direction == "in",
                                   Message.status == "done", Message.text.is_not(None))
        .order_by(Message.id.desc()).limit(limit))
    return list(reversed([t for t in rows if t]))


async def _store_location(session: Any, conv: Conversation, msg: Message | None, location: dict[str, Any],
                          *, source: str, accuracy_m: float | None = None) -> dict[str, Any]:
    from bot.geo import resolve

    try:
        resolved = resolve(float(location["lat"]), float(location["lon"])).as_dict()
    except (ValueError, TypeError, KeyError):
        resolved = {}
    session.add(Location(conversation_id=conv.id, message_id=msg.id if msg else None, source=source,
                         lat=float(location["lat"]), lon=float(location["lon"]), accuracy_m=accuracy_m,
                         label=(location.get("label") or None), resolved=resolved))
    return resolved
