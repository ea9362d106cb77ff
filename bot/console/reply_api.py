"""Counselor replies through the person's own app, within the platform's window rules; canned
replies from the content store; the share-location link."""
from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot import outbox
from bot.auth import CASEWORK, Handler, requires
from bot.console.access import (ApiError, accounts_by_id, conversation_id, ensure_holder, get_conversation,
                                handle_errors, json_object)
from bot.console.views import message_json, window_json
from bot.db.models import Account, Conversation, Message
from bot.keys import gateway_key

logger = logging.getLogger(__name__)
MAX_REPLY = 4000
# (id, Vietnamese label, English label, content keys tried in order)
CANNED: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("safety_advice", "Lời khuyên an toàn", "Safety advice", ("utter_counselor_safety_advice",)),
    ("ask_facts", "Bốn câu hỏi", "The four questions", ("utter_counselor_ask_facts",)),
    ("ask_location", "Hỏi vị trí", "Ask for the location", ("utter_counselor_ask_location",
                                                             "utter_faq_share_location")),
    ("confidentiality", "Bảo mật", "Confidentiality", ("utter_faq_confidentiality",)),
    ("hours", "Giờ làm việc", "Opening hours", ("utter_faq_hours",)),
    ("psych_support", "Hỗ trợ tâm lý", "Psychological support", ("utter_faq_psych_support",)),
)


def check_window(conv: Conversation, gw: Any) -> dict[str, Any]:
    """Refuse (409) what the platform would refuse: a closed window or an unreachable person."""
    window = window_json(conv)
    if conv.channel not in gw.senders:
        raise ApiError(409, f"the {conv.channel} channel is not configured on this gateway", window=window)
    if conv.unreachable:
        raise ApiError(409, "the person cannot be reached until they write again (the platform refused the "
                            "last message)", window=window)
    if not window["open"]:
        limit = "7 days (HUMAN_AGENT tag)" if conv.channel == "messenger" else "7 days"
        raise ApiError(409, f"the reply window has closed: {conv.channel} allows replies up to {limit} after the "
                            "person's last message; wait until they write again", window=window)
    return window


async def _send(request: web.Request, text: str, payload: dict[str, Any] | None = None,
                link: bool = False) -> web.Response:
    gw = request.app[gateway_key]
    me: Account = request["account"]
    cid = conversation_id(request)
    async with gw.sessions() as session:
        conv = await get_conversation(session, cid)
        await ensure_holder(session, me, conv)
        window = check_window(conv, gw)
        if link:
            from bot.location_page import new_link

            url = await new_link(gw, session, conv)
            lang = conv.language or "vi"
            text = await gw.text("utter_share_location_link", lang, url=url)
            payload = {"link": {"title": "Gửi vị trí" if lang == "vi" else "Share location", "url": url}}
        rows = outbox.enqueue(session, conv, text, author="counselor", payload=payload, account_id=me.id)
        await outbox.claim_enqueued(session)
        await session.commit()
    for part in rows:
        await gw.live.publish({"type": "message", "conversation_id": cid, "message": message_json(part, {me.id: me})})
    outbox.send_soon(gw, session)
    row = rows[-1]
    return web.json_response({"message_id": row.id, "status": row.status,
                              "human_agent": conv.channel == "messenger" and not window.get("bot_open", False)},
                             status=202)


async def reply(request: web.Request) -> web.Response:
    """`{text}` -> 202 `{message_id, status}`; the outbox sends it and publishes `message_status`."""
    body = await json_object(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "send {text}")
    if len(text) > MAX_REPLY:
        raise ApiError(400, f"a reply has at most {MAX_REPLY} characters")
    return await _send(request, text.strip())


async def location_link(request: web.Request) -> web.Response:
    """Send the person a one-time share-location link (as the counselor's message)."""
    return await _send(request, "", link=True)


async def canned(request: web.Request) -> web.Response:
    """Ready-made replies from the content store, in `lang` (or the conversation's language)."""
    gw = request.app[gateway_key]
    lang = request.query.get("lang")
    if "conversation" in request.query:
        try:
            cid = int(request.query["conversation"])
        except ValueError:
            raise ApiError(400, "conversation must be a number") from None
        async with gw.sessions() as session:
            conv = await get_conversation(session, cid)
            lang = lang or conv.language
    lang = lang if lang in ("vi", "en") else "vi"
    items = []
    for ident, label_vi, label_en, keys in CANNED:
        for key in keys:
            if await gw.content.raw_text(key, lang):
                items.append({"id": ident, "key": key, "title": label_vi if lang == "vi" else label_en,
                              "title_vi": label_vi, "title_en": label_en, "text": await gw.text(key, lang)})
                break
    return web.json_response({"lang": lang, "canned": items})


async def message_status(request: web.Request) -> web.Response:
    """The current state of one outbound message (what the live `message_status` event says)."""
    gw = request.app[gateway_key]
    cid = conversation_id(request)
    try:
        mid = int(request.match_info["mid"])
    except ValueError:
        raise ApiError(404, "no such message") from None
    async with gw.sessions() as session:
        row = await session.get(Message, mid)
        if row is None or row.conversation_id != cid:
            raise ApiError(404, "no such message")
        accounts = await accounts_by_id(session, [row.account_id])
    return web.json_response({"message": message_json(row, accounts)})


def setup(app: web.Application) -> None:
    def guarded(handler: Handler) -> Handler:
        return requires(*CASEWORK)(handle_errors(handler))

    app.router.add_post(r"/api/conversations/{id:\d+}/reply", guarded(reply), name="api_reply")
    app.router.add_post(r"/api/conversations/{id:\d+}/location-link", guarded(location_link),
                        name="api_location_link")
    app.router.add_get(r"/api/conversations/{id:\d+}/messages/{mid:\d+}", guarded(message_status),
                       name="api_message")
    app.router.add_get("/api/canned", guarded(canned), name="api_canned")
