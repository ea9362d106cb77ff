"""Data retention, and one person's data: export and erasure.

**Purge** (`python -m bot retention purge [--days N] [--dry-run]`, daily from a timer): what people
wrote and where they were is kept RETENTION_DAYS (default 90), then deleted — unless the
conversation's case is still open (queued, assigned, or a case without `closed_at`): a counselor
may still need the whole transcript. Purged:

- messages (both directions) older than the cut-off, except rows the inbox or outbox still has to
  handle (`pending` / `sending`);
- shared locations older than the cut-off;
- the conversation's gathered summary, once its last message is older than the cut-off (the case
  record keeps its own copy: outcome, priority, referral and summary are the hotline's case file
  and stay until erased);
- conversations left with nothing (no message, no case) whose last activity is older than the
  cut-off: the platform user id goes with them;
- expired share-location tokens, staff sessions expired before the cut-off, old failed sign-ins;
- Rasa's tracker events older than the cut-off (when TRACKER_DATABASE_URL names Rasa's SQL
  tracker store), except those of conversations that are kept.

**Export** (`python -m bot person export CHANNEL USER_ID`): everything stored about one person on one
channel, as JSON on stdout. **Erase** (`python -m bot person erase CHANNEL USER_ID`): deletes it,
including the case records and Rasa's tracker; refuses while a case is open unless `--force`.
Both are written to the audit log (ids and counts only).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (Column, Float, Integer, MetaData, String, Table, Text, and_, delete, exists, func, not_,
                        or_, select, update)
from sqlalchemy.orm import sessionmaker

from bot.db.models import (AuditEntry, Case, Conversation, Location, LocationToken, LoginFailure, Message,
                           StaffSession, utcnow)

logger = logging.getLogger(__name__)
PURGE_LOCK_ID = 111_2026  # PostgreSQL advisory lock: one purge at a time, whichever host runs it
LOGIN_FAILURE_KEEP = timedelta(days=1)
BATCH = 5000

# Rasa's SQL tracker store table (rasa.core.tracker_store.SQLTrackerStore.SQLEvent).
_tracker_meta = MetaData()
TRACKER_EVENTS = Table("events", _tracker_meta,
                       Column("id", Integer, primary_key=True), Column("sender_id", String(255)),
                       Column("type_name", String(255)), Column("timestamp", Float),
                       Column("intent_name", String(255)), Column("action_name", String(255)),
                       Column("data", Text))


class PersonNotFound(LookupError):
    pass


class CaseStillOpen(RuntimeError):
    pass


def sender_id(channel: str, user_id: str) -> str:
    """The conversation id the gateway uses with Rasa (bot.inbox.sender_id)."""
    return f"{channel}-{user_id}"


def _open_case_exists() -> Any:
    return exists().where(Case.conversation_id == Conversation.id, Case.closed_at.is_(None))


def _kept_conversations() -> Any:
    """Conversations whose data is kept whatever their age: in the queue or with an open case."""
    return (select(Conversation.id)
            .where(or_(Conversation.state.in_(("queued", "assigned")), _open_case_exists()))
            .correlate(None))  # a self-contained list, also inside statements on chat_conversation


@dataclass
class PurgeReport:
    cutoff: str
    dry_run: bool
    messages: int = 0
    locations: int = 0
    summaries: int = 0
    conversations: int = 0
    location_tokens: int = 0
    staff_sessions: int = 0
    login_failures: int = 0
    tracker_events: int | None = None  # None: no tracker store configured
    kept_open: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        tracker = ("" if self.tracker_events is None else f", {self.tracker_events} Rasa tracker events")
        return (f"{verb} data older than {self.cutoff}: {self.messages} messages, {self.locations} locations, "
                f"{self.summaries} conversation summaries, {self.conversations} conversations, "
                f"{self.location_tokens} location links, {self.staff_sessions} staff sessions, "
                f"{self.login_failures} failed sign-ins{tracker}; kept {self.kept_open} conversations "
                "with an open case")


async def _count_or_delete(session: Any, table: Any, condition: Any, dry_run: bool) -> int:
    if dry_run:
        return int(await session.scalar(select(func.count()).select_from(table).where(condition)) or 0)
    result = await session.execute(delete(table).where(condition).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


async def _advisory_lock(session: Any) -> bool:
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        return True
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(PURGE_LOCK_ID))))


async def purge(sessions: sessionmaker, days: int, *, dry_run: bool = False, now: datetime | None = None,
                tracker_url: str | None = None) -> PurgeReport:
    """Delete (or with dry_run count) what is older than `days`, as described in the module doc.
    One transaction for the gateway's database; Rasa's tracker store after it commits."""
    if days < 1:
        raise ValueError("the retention period is at least one day")
    now = now or utcnow()
    cutoff = now - timedelta(days=days)
    report = PurgeReport(cutoff=cutoff.isoformat(timespec="seconds"), dry_run=dry_run)
    kept = _kept_conversations()
    async with sessions() as session:
        if not await _advisory_lock(session):
            raise RuntimeError("another purge is running")
        report.kept_open = int(await session.scalar(select(func.count()).select_from(kept.subquery())) or 0)
        report.locations = await _count_or_delete(
            session, Location, and_(Location.created_at < cutoff, Location.conversation_id.not_in(kept)), dry_run)
        report.messages = await _count_or_delete(
            session, Message, and_(Message.created_at < cutoff, Message.conversation_id.not_in(kept),
                                   Message.status.not_in(("pending", "sending"))), dry_run)
        # summaries of conversations idle since before the cut-off (the case keeps its own copy)
        # (JSON columns cannot be compared in PostgreSQL: the non-empty ones are picked here)
        idle = and_(Conversation.id.not_in(kept),
                    func.coalesce(Conversation.last_user_at, Conversation.created_at) < cutoff)
        ids = [cid for cid, summary, notices in await session.execute(
            select(Conversation.id, Conversation.summary, Conversation.notices).where(idle)) if summary or notices]
        report.summaries = len(ids)
        if not dry_run:
            for start in range(0, len(ids), BATCH):
                await session.execute(update(Conversation).where(Conversation.id.in_(ids[start:start + BATCH]))
                                      .values(summary={}, notices={})
                                      .execution_options(synchronize_session=False))
        has_messages = exists().where(Message.conversation_id == Conversation.id)
        if dry_run:  # the messages that would go are still there: count what would be left
            has_messages = exists().where(Message.conversation_id == Conversation.id, or_(
                Message.created_at >= cutoff, Message.status.in_(("pending", "sending"))))
        empty = and_(Conversation.id.not_in(kept), not_(has_messages),
                     not_(exists().where(Case.conversation_id == Conversation.id)),
                     func.coalesce(Conversation.last_user_at, Conversation.created_at) < cutoff)
        report.conversations = await _count_or_delete(session, Conversation, empty, dry_run)
        report.location_tokens = await _count_or_delete(session, LocationToken, LocationToken.expires_at < now,
                                                        dry_run)
        report.staff_sessions = await _count_or_delete(session, StaffSession, StaffSession.expires_at < cutoff,
                                                       dry_run)
        report.login_failures = await _count_or_delete(session, LoginFailure,
                                                       LoginFailure.at < now - LOGIN_FAILURE_KEEP, dry_run)
        kept_senders = [sender_id(c, u) for c, u in await session.execute(
            select(Conversation.channel, Conversation.user_id).where(Conversation.id.in_(kept)))]
        if not dry_run:
            session.add(AuditEntry(account_id=None, action="retention_purge", target=None, at=utcnow(),
                                   detail={k: v for k, v in report.as_dict().items() if k != "tracker_events"}))
            await session.commit()
    if tracker_url:
        report.tracker_events = await _purge_tracker(tracker_url, cutoff, kept_senders, dry_run)
    logger.info("retention purge: %s", report.describe(), extra=report.as_dict())
    return report


# ---------------------------------------------------------------- Rasa's tracker store


async def _tracker_engine(url: str) -> Any:
    from bot.db.session import async_engine

    return async_engine(url)


async def _purge_tracker(url: str, cutoff: datetime, kept_senders: list[str], dry_run: bool) -> int:
    engine = await _tracker_engine(url)
    try:
        async with engine.begin() as conn:
            if not await _has_tracker_table(conn):
                return 0
            condition = TRACKER_EVENTS.c.timestamp < cutoff.timestamp()
            if kept_senders:
                condition = and_(condition, TRACKER_EVENTS.c.sender_id.not_in(kept_senders))
            if dry_run:
                return int(await conn.scalar(select(func.count()).select_from(TRACKER_EVENTS).where(condition)) or 0)
            result = await conn.execute(delete(TRACKER_EVENTS).where(condition))
            return int(result.rowcount or 0)
    finally:
        await engine.dispose()


async def _has_tracker_table(conn: Any) -> bool:
    from sqlalchemy import inspect

    return await conn.run_sync(lambda sync_conn: inspect(sync_conn).has_table("events"))


async def _tracker_events(url: str, sender: str) -> list[dict[str, Any]]:
    import json

    engine = await _tracker_engine(url)
    try:
        async with engine.connect() as conn:
            if not await _has_tracker_table(conn):
                return []
            rows = await conn.execute(select(TRACKER_EVENTS).where(TRACKER_EVENTS.c.sender_id == sender)
                                      .order_by(TRACKER_EVENTS.c.id))
            out = []
            for row in rows:
                try:
                    data = json.loads(row.data) if row.data else None
                except ValueError:
                    data = row.data
                out.append({"type": row.type_name, "timestamp": row.timestamp, "intent": row.intent_name,
                            "action": row.action_name, "data": data})
            return out
    finally:
        await engine.dispose()


async def _erase_tracker(url: str, sender: str) -> int:
    engine = await _tracker_engine(url)
    try:
        async with engine.begin() as conn:
            if not await _has_tracker_table(conn):
                return 0
            result = await conn.execute(delete(TRACKER_EVENTS).where(TRACKER_EVENTS.c.sender_id == sender))
            return int(result.rowcount or 0)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- one person


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat()


def _row(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for column in obj.__table__.columns:
        if column.key in skip:
            continue
        value = getattr(obj, column.key)
        out[column.key] = _iso(value) if isinstance(value, datetime) else value
    return out


async def _find(session: Any, channel: str, user_id: str) -> Conversation:
    conv = await session.scalar(select(Conversation).where(Conversation.channel == channel,
                                                           Conversation.user_id == user_id))
    if conv is None:
        raise PersonNotFound(f"nothing is stored for {channel} user {user_id!r}")
    return conv


async def export_person(sessions: sessionmaker, channel: str, user_id: str, *, tracker_url: str | None = None,
                        operator: str | None = None) -> dict[str, Any]:
    """Everything stored about the person: conversation, messages, locations, cases, the audit of who
    opened the conversation, and Rasa's tracker events. The export itself is audited."""
    async with sessions() as session:
        conv = await _find(session, channel, user_id)
        target = f"conversation:{conv.id}"
        messages = list(await session.scalars(select(Message).where(Message.conversation_id == conv.id)
                                              .order_by(Message.id)))
        locations = list(await session.scalars(select(Location).where(Location.conversation_id == conv.id)
                                               .order_by(Location.id)))
        cases = list(await session.scalars(select(Case).where(Case.conversation_id == conv.id).order_by(Case.id)))
        audit = list(await session.scalars(select(AuditEntry).where(AuditEntry.target == target)
                                           .order_by(AuditEntry.id)))
        data: dict[str, Any] = {
            "exported_at": utcnow().isoformat(),
            "channel": channel, "user_id": user_id,
            "conversation": _row(conv, skip=("lease_owner", "lease_until")),
            "messages": [_row(m, skip=("lease_until",)) for m in messages],
            "locations": [_row(loc) for loc in locations],
            "cases": [_row(c) for c in cases],
            "access_log": [{"at": _iso(a.at), "account_id": a.account_id, "action": a.action} for a in audit],
        }
        session.add(AuditEntry(account_id=None, action="person_export", target=target, at=utcnow(),
                               detail={"via": "command line", "operator": operator, "messages": len(messages)}))
        await session.commit()
    if tracker_url:
        data["rasa_tracker_events"] = await _tracker_events(tracker_url, sender_id(channel, user_id))
    return data


@dataclass
class EraseReport:
    conversation_id: int
    messages: int
    locations: int
    cases: int
    location_tokens: int
    tracker_events: int | None

    def describe(self) -> str:
        tracker = "" if self.tracker_events is None else f", {self.tracker_events} Rasa tracker events"
        return (f"erased conversation {self.conversation_id}: {self.messages} messages, {self.locations} "
                f"locations, {self.cases} case records, {self.location_tokens} location links{tracker}")


async def erase_person(sessions: sessionmaker, channel: str, user_id: str, *, force: bool = False,
                       tracker_url: str | None = None, operator: str | None = None) -> EraseReport:
    """Delete the person's conversation and everything hanging from it. Refused while the case is open
    (a counselor is working on it) unless `force`. The audit log keeps that it happened, with counts."""
    async with sessions() as session:
        conv = await _find(session, channel, user_id)
        cid = conv.id
        open_case = await session.scalar(select(func.count()).select_from(Case)
                                         .where(Case.conversation_id == cid, Case.closed_at.is_(None)))
        if not force and (conv.state in ("queued", "assigned") or open_case):
            raise CaseStillOpen(f"conversation {cid} has an open case ({conv.state}); close it first or use --force")
        counts = {}
        for name, model in (("locations", Location), ("location_tokens", LocationToken), ("cases", Case),
                            ("messages", Message)):
            result = await session.execute(delete(model).where(model.conversation_id == cid)
                                           .execution_options(synchronize_session=False))
            counts[name] = int(result.rowcount or 0)
        await session.execute(delete(Conversation).where(Conversation.id == cid)
                              .execution_options(synchronize_session=False))
        session.add(AuditEntry(account_id=None, action="person_erase", target=f"conversation:{cid}", at=utcnow(),
                               detail={"via": "command line", "operator": operator, "forced": force, **counts}))
        await session.commit()
    tracker = await _erase_tracker(tracker_url, sender_id(channel, user_id)) if tracker_url else None
    report = EraseReport(conversation_id=cid, tracker_events=tracker, **counts)
    logger.info("person erased: conversation %s", cid, extra=asdict(report))
    return report
