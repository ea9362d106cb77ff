"""One conversation: opening it (audited), the editable summary, transfer, release and close."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select, update

from bot.auth import CASEWORK, Handler, audit, requires
from bot.console.access import (ApiError, accounts_by_id, conversation_id, ensure_holder, get_conversation,
                                handle_errors, json_object, latest_case, open_case, queue_event)
from bot.console.state import spawn
from bot.console.views import (case_json, conversation_json, location_json, message_json, summary_json,
                               window_json)
from bot.db.models import Account, Case, Conversation, Location, Message, utcnow
from bot.keys import gateway_key

logger = logging.getLogger(__name__)
MAX_MESSAGES = 1000
MAX_FIELD = 500
OUTCOMES = ("information", "anti_trafficking_information", "referral_police", "referral_border_guard",
            "referral_ngo", "referral_social_affairs", "referral_health", "referral_justice",
            "psychological_counseling")
RELEASED = "released_to_bot"
CHILD_AGE = 16


async def get(request: web.Request) -> web.Response:
    """Everything the conversation view shows. Every opening is written to the audit log."""
    gw = request.app[gateway_key]
    me: Account = request["account"]
    cid = conversation_id(request)
    now = utcnow()
    async with gw.sessions() as session:
        conv = await get_conversation(session, cid)
        messages = list(reversed(list(await session.scalars(
            select(Message).where(Message.conversation_id == cid).order_by(Message.id.desc()).limit(MAX_MESSAGES)))))
        locations = list(await session.scalars(select(Location).where(Location.conversation_id == cid)
                                               .order_by(Location.id)))
        case_row = await latest_case(session, cid)
        accounts = await accounts_by_id(session, [conv.assigned_to, case_row.closed_by if case_row else None,
                                                  *(m.account_id for m in messages)])
        await audit(session, me, "open_conversation", f"conversation:{cid}")
        await session.commit()
    return web.json_response({
        "conversation": conversation_json(conv, accounts, now), "summary": summary_json(conv),
        "messages": [message_json(m, accounts) for m in messages],
        "locations": [location_json(loc) for loc in locations],
        "window": window_json(conv, now), "case": case_json(case_row, accounts)})


def _text_field(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_FIELD:
        raise ApiError(400, f"{key} must be text of at most {MAX_FIELD} characters")
    return value.strip() or None


def parse_summary(body: dict[str, Any]) -> dict[str, Any]:
    """safe_now (true/false/null), where, with_whom, wants, notes (text), age (5-120 or null)."""
    out: dict[str, Any] = {}
    if "safe_now" in body:
        if body["safe_now"] not in (True, False, None):
            raise ApiError(400, "safe_now must be true, false or null")
        out["safe_now"] = body["safe_now"]
    for key in ("where", "with_whom", "wants", "notes"):
        if key in body:
            out[key] = _text_field(body, key)
    if "age" in body:
        age = body["age"]
        if isinstance(age, str) and age.strip().isdigit():
            age = int(age.strip())
        if age in ("", None):
            age = None
        elif isinstance(age, bool) or not isinstance(age, int) or not 1 <= age <= 120:
            raise ApiError(400, "age must be a whole number of years or null")
        out["age"] = age
    if not out:
        raise ApiError(400, "send at least one of safe_now, where, with_whom, wants, age, notes")
    return out


async def put_summary(request: web.Request) -> web.Response:
    gw = request.app[gateway_key]
    me: Account = request["account"]
    cid = conversation_id(request)
    changes = parse_summary(await json_object(request))
    async with gw.sessions() as session:
        conv = await get_conversation(session, cid)
        await ensure_holder(session, me, conv)
        conv.summary = {**(conv.summary or {}), **changes}
        row = await open_case(session, cid)
        if row is not None:
            row.summary = case_summary(conv)
        await audit(session, me, "edit_summary", f"conversation:{cid}", {"fields": sorted(changes)})
        await session.commit()
        answer = {"summary": summary_json(conv)}
    await gw.live.publish({"type": "summary", "conversation_id": cid})
    return web.json_response(answer)


def case_summary(conv: Conversation) -> dict[str, Any]:
    return {**(conv.summary or {}), "language": conv.language or "vi", "channel": conv.channel}


async def transfer(request: web.Request) -> web.Response:
    """`{to}`: hand the conversation to another counselor (by user name); audited."""
    gw = request.app[gateway_key]
    me: Account = request["account"]
    cid = conversation_id(request)
    body = await json_object(request)
    to = body.get("to")
    if not isinstance(to, str) or not to.strip():
        raise ApiError(400, "send {to: user name}")
    async with gw.sessions() as session:
        target = await session.scalar(select(Account).where(Account.username == to.strip()))
        if target is None or not target.active or target.role not in CASEWORK:
            raise ApiError(400, f"{to!r} is not an active counselor, supervisor or admin")
        conv = await get_conversation(session, cid)
        previous = await ensure_holder(session, me, conv)
        if conv.assigned_to == target.id:
            raise ApiError(400, f"{target.username} already holds this conversation")
        # conditional on what we just read: a take or transfer in between makes this one fail
        held_by = (Conversation.assigned_to.is_(None) if conv.assigned_to is None
                   else Conversation.assigned_to == conv.assigned_to)
        result = await session.execute(
            update(Conversation).where(Conversation.id == cid, Conversation.state == conv.state, held_by)
            .values(state="assigned", assigned_to=target.id, updated_at=utcnow())
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            await session.rollback()
            raise ApiError(409, "the conversation changed hands meanwhile; reload it")
        await audit(session, me, "transfer", f"conversation:{cid}",
                    {"from": previous.username if previous else None, "to": target.username})
        await session.commit()
        await session.refresh(conv)
        event = queue_event(conv, transferred_to=target.username, transferred_by=me.username)
        answer = {"conversation": conversation_json(conv, {target.id: target}, utcnow())}
    await gw.live.publish(event)
    return web.json_response(answer)


async def release(request: web.Request) -> web.Response:
    """Back to the bot: state -> bot, the case ends as released, Rasa gets a resume marker."""
    gw = request.app[gateway_key]
    me: Account = request["account"]
    cid = conversation_id(request)
    now = utcnow()
    async with gw.sessions() as session:
        conv = await get_conversation(session, cid)
        await ensure_holder(session, me, conv)
        await _finish(session, conv, me, now, outcome=RELEASED, referral=None)
        conv.state, conv.assigned_to = "bot", None
        await audit(session, me, "release", f"conversation:{cid}")
        await session.commit()
        event = queue_event(conv)
    await gw.live.publish(event)
    resume_marker(request, conv)
    return web.json_response({"state": "bot"})


def resume_marker(request: web.Request, conv: Conversation) -> None:
    """Best effort: a `resume` event in Rasa's tracker marks where the bot takes over again. (The
    gateway never pauses Rasa: a paused tracker would answer nothing until its session expires.)"""
    from bot.inbox import sender_id

    gw = request.app[gateway_key]
    spawn(request.app, gw.rasa.add_events(sender_id(conv), [{"event": "resume"}]), "rasa resume marker")


async def _finish(session: Any, conv: Conversation, me: Account, now: datetime, *, outcome: str,
                  referral: dict[str, Any] | None) -> Case:
    row = await open_case(session, conv.id)
    if row is None:  # queued by a path that opened no case: record one now
        row = Case(conversation_id=conv.id, priority=conv.priority, reason=conv.reason,
                   opened_at=conv.queued_at or now)
        session.add(row)
    row.outcome, row.referral, row.summary = outcome, referral, case_summary(conv)
    row.priority, row.reason = conv.priority, conv.reason
    row.closed_at, row.closed_by = now, me.id
    return row


def _age(summary: dict[str, Any]) -> int | None:
    age = summary.get("age")
    if isinstance(age, str) and age.strip().isdigit():
        age = int(age.strip())
    return age if isinstance(age, int) and not isinstance(age, bool) else None


def parse_referral(raw: Any, conv: Conversation, now: datetime) -> dict[str, Any]:
    """`{agency, sent, consent}` -> the stored record. Consent is not required for a child (age under
    16 in the summary) or in imminent danger (priority emergency); otherwise the person must agree."""
    if not isinstance(raw, dict):
        raise ApiError(400, "a referral outcome needs referral: {agency, sent, consent}")
    agency, sent = raw.get("agency"), raw.get("sent")
    if not isinstance(agency, str) or not agency.strip() or len(agency) > 255:
        raise ApiError(400, "referral.agency: the agency the case was referred to (text)")
    if not isinstance(sent, str) or not sent.strip() or len(sent) > 2000:
        raise ApiError(400, "referral.sent: what was sent to the agency (text)")
    consent = raw.get("consent")
    if consent not in (True, False, None):
        raise ApiError(400, "referral.consent must be true, false or null")
    sent_at = raw.get("sent_at")
    if sent_at is not None:
        try:
            sent_at = datetime.fromisoformat(str(sent_at).replace("Z", "+00:00")).isoformat()
        except ValueError:
            raise ApiError(400, "referral.sent_at must be an ISO date and time") from None
    age = _age(conv.summary or {})
    reasons = []
    if age is not None and age < CHILD_AGE:
        reasons.append(f"child (age {age})")
    if conv.priority == "emergency":
        reasons.append("imminent danger (priority emergency)")
    if not reasons and consent is not True:
        raise ApiError(400, "the person is an adult in no imminent danger: refer only with their consent "
                            "(referral.consent = true)")
    return {"agency": agency.strip(), "sent": sent.strip(), "sent_at": sent_at or now.isoformat(),
            "consent": consent, "consent_required": not reasons,
            "consent_not_required_because": "; ".join(reasons) or None}


async def close(request: web.Request) -> web.Response:
    """`{outcome, referral?}`: the open case gets outcome, referral, summary, closed_at, closed_by."""
    gw = request.app[gateway_key]
    me: Account = request["account"]
    cid = conversation_id(request)
    body = await json_object(request)
    outcome = body.get("outcome")
    if outcome not in OUTCOMES:
        raise ApiError(400, f"outcome must be one of {', '.join(OUTCOMES)}")
    now = utcnow()
    async with gw.sessions() as session:
        conv = await get_conversation(session, cid)
        await ensure_holder(session, me, conv)
        referral = None
        if outcome.startswith("referral_"):
            referral = parse_referral(body.get("referral"), conv, now)
        elif body.get("referral") is not None:
            raise ApiError(400, "a referral record belongs only to a referral_* outcome")
        row = await _finish(session, conv, me, now, outcome=outcome, referral=referral)
        conv.state, conv.assigned_to = "closed", None
        await audit(session, me, "close", f"conversation:{cid}", {"outcome": outcome, "referral": referral})
        await session.commit()
        event = queue_event(conv)
        answer = {"state": "closed", "case": case_json(row, {me.id: me})}
    await gw.live.publish(event)
    resume_marker(request, conv)
    return web.json_response(answer)


def setup(app: web.Application) -> None:
    def guarded(handler: Handler) -> Handler:
        return requires(*CASEWORK)(handle_errors(handler))

    app.router.add_get(r"/api/conversations/{id:\d+}", guarded(get), name="api_conversation")
    app.router.add_put(r"/api/conversations/{id:\d+}/summary", guarded(put_summary), name="api_summary")
    app.router.add_post(r"/api/conversations/{id:\d+}/transfer", guarded(transfer), name="api_transfer")
    app.router.add_post(r"/api/conversations/{id:\d+}/release", guarded(release), name="api_release")
    app.router.add_post(r"/api/conversations/{id:\d+}/close", guarded(close), name="api_close")
