"""The gateway from the outside: signed webhooks in, platform sends out, through a fake Rasa."""
from __future__ import annotations

import asyncio

import json

from sqlalchemy import func, select

from bot.db.models import Conversation, Location, Message
from channels.messenger import split_text
from tests.fakes.payloads import (
    PAGE_ID,
    messenger_echo_event,
    messenger_envelope,
    messenger_event,
    messenger_location_event,
    messenger_text_event,
    zalo_follow_event,
    zalo_location_event,
    zalo_text_event,
)
from tests.gateway.conftest import VERIFY_TOKEN, eventually, post_messenger, post_zalo


async def count(client, *where) -> int:
    async with client.gw.sessions() as s:
        return await s.scalar(select(func.count()).select_from(Message).where(*where))


async def conversation(client, user_id: str) -> Conversation | None:
    async with client.gw.sessions() as s:
        return await s.scalar(select(Conversation).where(Conversation.user_id == user_id))


async def test_messenger_verification(gateway):
    ok = await gateway.get("/webhooks/messenger", params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                                          "hub.challenge": "4711"})
    assert ok.status == 200 and await ok.text() == "4711"
    bad = await gateway.get("/webhooks/messenger", params={"hub.mode": "subscribe", "hub.verify_token": "nope",
                                                           "hub.challenge": "1"})
    assert bad.status == 403


async def test_text_is_answered_through_the_send_api(gateway, fakes):
    r = await post_messenger(gateway, messenger_text_event("u1", "tong dai lam viec may gio", "m-1"))
    assert r.status == 200
    texts = await eventually(lambda: fakes.graph.texts_to("u1"))
    assert texts == ["[vi] bot: tong dai lam viec may gio"]
    body = fakes.graph.delivered[-1]
    assert body["messaging_type"] == "RESPONSE"
    assert fakes.rasa.received[0]["metadata"] == {"channel": "messenger", "language": "vi"}
    assert fakes.rasa.received[0]["sender"] == "messenger-u1"


async def test_english_is_detected(gateway, fakes):
    await post_messenger(gateway, messenger_text_event("u-en", "How can I check if a recruitment agency is licensed?", "m-en"))
    texts = await eventually(lambda: fakes.graph.texts_to("u-en"))
    assert texts[0].startswith("[en]")


async def test_forged_unsigned_and_malformed_requests_change_nothing(gateway, fakes):
    payload = messenger_text_event("forged", "xin chao", "m-forged")
    forged = await post_messenger(gateway, payload, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
    unsigned = await post_messenger(gateway, payload, headers={})
    wrong_secret = await post_messenger(gateway, payload, secret="another-secret")
    assert (forged.status, unsigned.status, wrong_secret.status) == (403, 403, 403)
    raw = b"{not json"
    from tests.fakes.payloads import sign_messenger

    malformed = await gateway.post("/webhooks/messenger", data=raw, headers=sign_messenger(raw, "test-app-secret"))
    assert malformed.status == 400
    not_a_page = json.dumps({"hello": "world"}).encode()
    assert (await gateway.post("/webhooks/messenger", data=not_a_page,
                               headers=sign_messenger(not_a_page, "test-app-secret"))).status == 400
    big = json.dumps(messenger_text_event("big", "a" * (2 * 1024 * 1024), "m-big")).encode()
    assert (await gateway.post("/webhooks/messenger", data=big, headers=sign_messenger(big, "test-app-secret"))).status == 413
    assert await count(gateway) == 0
    assert fakes.graph.texts_to("forged") == []


async def test_redelivery_is_answered_once(gateway, fakes):
    payload = messenger_text_event("dup", "xin chào", "m-dup")
    assert (await post_messenger(gateway, payload)).status == 200
    assert (await post_messenger(gateway, payload)).status == 200
    await eventually(lambda: fakes.graph.texts_to("dup"))
    await gateway.gw.inbox_event.wait() if False else None
    assert await count(gateway, Message.direction == "in") == 1
    assert len(fakes.rasa.received) == 1


async def test_every_entry_and_event_of_a_batch(gateway, fakes):
    batch = messenger_envelope(messenger_event("b1", {"message": {"mid": "m-b1", "text": "xin chào"}}),
                               messenger_event("b2", {"message": {"mid": "m-b2", "text": "hello"}}))
    batch["entry"] += messenger_text_event("b3", "chao ban", "m-b3")["entry"]
    assert (await post_messenger(gateway, batch)).status == 200
    for psid in ("b1", "b2", "b3"):
        await eventually(lambda psid=psid: fakes.graph.texts_to(psid))


async def test_echoes_receipts_and_unknown_events_are_ignored(gateway, fakes):
    echo = messenger_echo_event(PAGE_ID, "u-echo", "our own reply", "m-echo")
    receipts = messenger_envelope(
        messenger_event("u-echo", {"delivery": {"mids": ["m-x"], "watermark": 1}}),
        messenger_event("u-echo", {"read": {"watermark": 1}}),
        messenger_event("u-echo", {"reaction": {"mid": "m-x", "action": "react", "emoji": "x"}}))
    for payload in (echo, receipts):
        assert (await post_messenger(gateway, payload)).status == 200
    assert await count(gateway) == 0


async def test_messages_of_one_person_are_answered_in_order(gateway, fakes):
    fakes.rasa.delay_s = 0.05
    for i in range(5):
        await post_messenger(gateway, messenger_text_event("order", f"tin {i}", f"m-order-{i}"))
    texts = await eventually(lambda: len(fakes.graph.texts_to("order")) == 5 and fakes.graph.texts_to("order"))
    assert texts == [f"[vi] bot: tin {i}" for i in range(5)]


async def test_risk_message_is_queued_even_when_rasa_is_down(gateway, fakes):
    fakes.rasa.down = True
    text = "cứu tôi với, tôi đang bị giữ ở đây, họ không cho tôi về nhà"
    await post_messenger(gateway, messenger_text_event("risk", text, "m-risk"))
    conv = await eventually(lambda: _queued(gateway, "risk"), timeout=1.0)
    assert conv.priority == "emergency"
    texts = await eventually(lambda: fakes.graph.texts_to("risk"))
    risk_answer = await gateway.gw.text("utter_risk_emergency", "vi")
    assert texts[0] == risk_answer
    assert fakes.rasa.received == []


async def _queued(client, user_id: str):
    conv = await conversation(client, user_id)
    return conv if conv is not None and conv.state == "queued" else None


async def test_rasa_down_gets_an_honest_reply_and_the_answer_comes_later(gateway, fakes):
    fakes.rasa.down = True
    await post_messenger(gateway, messenger_text_event("later", "phí xuất khẩu lao động là bao nhiêu", "m-later"))
    down_text = await gateway.gw.text("utter_rasa_down", "vi")
    await eventually(lambda: fakes.graph.texts_to("later") == [down_text])
    assert await count(gateway, Message.direction == "in", Message.status == "pending") == 1
    fakes.rasa.down = False
    texts = await eventually(lambda: len(fakes.graph.texts_to("later")) == 2 and fakes.graph.texts_to("later"),
                             timeout=8)
    assert texts[1].startswith("[vi] bot:")
    assert fakes.graph.texts_to("later").count(down_text) == 1


async def test_handoff_signal_from_rasa_queues_with_facts(gateway, fakes):
    await post_messenger(gateway, messenger_text_event("human", "cho em gặp người thật", "m-human"))
    conv = await eventually(lambda: _queued(gateway, "human"))
    assert conv.priority == "request" and conv.summary["age"] == 15


async def test_legacy_messenger_location_is_stored_resolved_and_queued(gateway, fakes):
    await post_messenger(gateway, messenger_location_event("loc", 21.5260, 107.9680, "m-loc"))
    conv = await eventually(lambda: _queued(gateway, "loc"))
    async with gateway.gw.sessions() as s:
        loc = await s.scalar(select(Location).where(Location.conversation_id == conv.id))
    assert (round(loc.lat, 3), round(loc.lon, 3)) == (21.526, 107.968)
    assert loc.resolved["country"] in ("VN", "CN")
    assert loc.resolved.get("border")
    assert conv.summary["where"] == f"{loc.resolved['place']}, {loc.resolved['province']}"
    assert await eventually(lambda: fakes.graph.texts_to("loc"))


async def test_a_location_shared_while_queued_fills_the_summary(gateway, fakes):
    await post_messenger(gateway, messenger_text_event("lq", "cứu em, em bị nhốt ở đây", "m-lq-1"))
    await eventually(lambda: _queued(gateway, "lq"))
    await post_messenger(gateway, messenger_location_event("lq", 21.0285, 105.8542, "m-lq-2"))

    async def where():
        conv = await conversation(gateway, "lq")
        return conv.summary.get("where")

    assert "Hà Nội" in await eventually(where)


async def test_zalo_text_and_location(gateway, fakes):
    r = await post_zalo(gateway, zalo_text_event("z1", "xin chao ban", "zm-1"))
    assert r.status == 200
    assert await eventually(lambda: fakes.zalo.texts_to("z1")) == ["[vi] bot: xin chao ban"]
    forged = await post_zalo(gateway, zalo_text_event("z1", "xin chao", "zm-2"),
                             headers={"X-ZEvent-Signature": "mac=" + "0" * 64})
    assert forged.status == 403
    await post_zalo(gateway, zalo_location_event("z2", "10.7923119", "106.7820651", "zm-3", place="Cơm Coffee New Sky"))
    conv = await eventually(lambda: _queued(gateway, "z2"))
    async with gateway.gw.sessions() as s:
        loc = await s.scalar(select(Location).where(Location.conversation_id == conv.id))
    assert loc.label == "Cơm Coffee New Sky" and loc.resolved["country"] == "VN"


async def test_zalo_follow_is_greeted_and_unfollow_ignored(gateway, fakes):
    await post_zalo(gateway, zalo_follow_event("zf"))
    greet = await gateway.gw.text("utter_greet", "vi")
    assert await eventually(lambda: fakes.zalo.texts_to("zf")) == [greet]
    await post_zalo(gateway, zalo_follow_event("zf", unfollow=True))
    assert fakes.zalo.texts_to("zf") == [greet]


async def test_exit_word_stops_at_once(gateway, fakes):
    await post_messenger(gateway, messenger_text_event("exit", "thoát", "m-exit"))
    exit_text = await gateway.gw.text("utter_exit", "vi")
    assert await eventually(lambda: fakes.graph.texts_to("exit")) == [exit_text]
    assert fakes.rasa.received == []


async def test_sends_are_retried_then_delivered_once(gateway, fakes):
    fakes.graph.fail_next(2, 500)
    await post_messenger(gateway, messenger_text_event("retry", "xin chao", "m-retry"))
    async def sent():
        async with gateway.gw.sessions() as s:
            return await s.scalar(select(Message).where(Message.direction == "out", Message.status == "sent"))

    row = await eventually(sent, timeout=10)
    assert row.attempts == 3
    assert fakes.graph.texts_to("retry") == ["[vi] bot: xin chao"]


async def test_a_long_reply_whose_second_part_fails_resends_only_that_part(gateway, fakes):
    words = " ".join(f"tu{i}" for i in range(900))  # about 4,500 characters: three Messenger messages
    deliver, armed = fakes.graph._deliver, []

    def fail_the_second_part_once(body, call):
        response = deliver(body, call)
        if not armed and len(fakes.graph.texts_to("long")) == 1:
            armed.append(True)
            fakes.graph.fail_next(1, 500)
        return response

    fakes.graph._deliver = fail_the_second_part_once
    await post_messenger(gateway, messenger_text_event("long", words, "m-long"))
    expected = split_text("[vi] bot: " + words[:4000])  # the fake Rasa echoes what it was sent
    assert len(expected) == 3
    await eventually(lambda: len(fakes.graph.texts_to("long")) >= 3, timeout=15)
    await asyncio.sleep(0.5)
    parts = fakes.graph.texts_to("long")
    assert armed and parts == expected  # each part once, in order
    failed = [c for c in fakes.graph.calls if not c["delivered"]]
    assert len(failed) == 1 and failed[0]["json"]["message"]["text"] == parts[1]  # the part retried, once


async def test_a_send_that_keeps_failing_is_marked_failed(gateway, fakes):
    fakes.graph.fail_next(1, {"code": 190})  # invalid token: not retryable
    await post_messenger(gateway, messenger_text_event("fail", "xin chao", "m-fail"))

    async def failed():
        async with gateway.gw.sessions() as s:
            return await s.scalar(select(Message).where(Message.direction == "out", Message.status == "failed"))

    row = await eventually(failed)
    assert row.attempts == 1 and row.error


async def test_health_ready_and_metrics(gateway, fakes):
    assert (await gateway.get("/healthz")).status == 200
    ready = await gateway.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"] == {"database": True, "rasa": True}
    fakes.rasa.down = True
    assert (await gateway.get("/readyz")).status == 503
    await post_messenger(gateway, messenger_text_event("m", "xin chao", "m-metrics"))
    text = await (await gateway.get("/metrics")).text()
    assert "hotline_inbound_messages_total 1" in text and "hotline_webhook_ack_seconds_bucket" in text


async def test_messenger_shows_typing_while_rasa_thinks(gateway, fakes):
    fakes.rasa.delay_s = 0.6  # longer than TYPING_AFTER_S
    await post_messenger(gateway, messenger_text_event("typing", "xin chao", "m-typing"))
    await eventually(lambda: fakes.graph.texts_to("typing"))
    assert "typing_on" in fakes.graph.actions_to("typing")


async def test_a_quick_answer_needs_no_typing_indicator(gateway, fakes):
    await post_messenger(gateway, messenger_text_event("quick", "xin chao", "m-quick"))
    await eventually(lambda: fakes.graph.texts_to("quick"))
    await asyncio.sleep(0.5)  # past TYPING_AFTER_S: an indicator still waiting would have been sent
    assert "typing_on" not in fakes.graph.actions_to("quick")


async def test_very_long_and_odd_unicode_text(gateway, fakes):
    odd = "e\u0301m bi\u0323 gi\u01b0\u0303 \u200b\u202e\U0001F600 " + "x" * 30_000
    r = await post_messenger(gateway, messenger_text_event("odd", odd, "m-odd"))
    assert r.status == 200
    await eventually(lambda: fakes.rasa.received)
    sent = fakes.rasa.received[0]["message"]
    assert len(sent) <= 4_000 and sent.startswith("ém bị giữ")  # NFC before anything else
