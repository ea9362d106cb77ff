"""The queue: a risk message arrives live, ordering, the atomic take, triage changes."""
from __future__ import annotations

import asyncio

from bot.db.models import AuditEntry, Case, Conversation
from tests.console.conftest import RISK_TEXT, ago, load, post_messenger, queued_conversation
from tests.fakes.payloads import messenger_text_event


async def test_a_risk_message_reaches_the_queue_live(app_client, staff):
    anna = await staff("anna", "counselor")
    async with anna.ws() as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello" and hello["user"]["name"] == "anna"
        assert await post_messenger(app_client, messenger_text_event("psid-risk", RISK_TEXT, "m-risk")) == 200
        events = []
        while not any(e.get("type") == "queue" for e in events):
            events.append(await ws.receive_json(timeout=5))
    queue_event = next(e for e in events if e["type"] == "queue")
    assert queue_event["state"] == "queued" and queue_event["priority"] == "emergency"
    message = next(e for e in events if e["type"] == "message")
    assert message["message"]["text"] == RISK_TEXT
    status, body = await anna.get("/api/queue")
    assert status == 200
    [item] = body["conversations"]
    assert item["id"] == queue_event["conversation_id"]
    assert item["user_id"] == "psid-risk" and item["channel"] == "messenger" and item["state"] == "queued"
    assert item["priority"] == "emergency" and item["reason"] == "held or locked in"
    assert item["language"] == "vi" and item["assigned_to"] is None and item["center"] == "hanoi"
    assert isinstance(item["waiting_s"], int)


async def test_queue_is_ordered_by_priority_then_waiting_time(app_client, staff):
    gw = app_client.gw
    request_old = await queued_conversation(gw, "u1", priority="request", queued_at=ago(minutes=50))
    at_risk_new = await queued_conversation(gw, "u2", priority="at_risk", queued_at=ago(minutes=1))
    emergency_new = await queued_conversation(gw, "u3", priority="emergency", queued_at=ago(minutes=2))
    at_risk_old = await queued_conversation(gw, "u4", priority="at_risk", queued_at=ago(minutes=30))
    emergency_old = await queued_conversation(gw, "u5", priority="emergency", queued_at=ago(minutes=10),
                                              state="assigned")
    await queued_conversation(gw, "u6", priority="emergency", state="bot")
    await queued_conversation(gw, "u7", priority="emergency", state="closed")
    anna = await staff("anna", "counselor")
    status, body = await anna.get("/api/queue")
    assert status == 200
    ids = [c["id"] for c in body["conversations"]]
    assert ids == [emergency_old, emergency_new, at_risk_old, at_risk_new, request_old]
    waits = {c["id"]: c["waiting_s"] for c in body["conversations"]}
    assert 2990 <= waits[request_old] <= 3100


async def test_two_concurrent_takes_one_wins_one_gets_409(app_client, staff):
    cid = await queued_conversation(app_client.gw)
    anna, binh = await staff("anna", "counselor"), await staff("binh", "counselor")
    (s1, b1), (s2, b2) = await asyncio.gather(anna.post(f"/api/conversations/{cid}/take"),
                                              binh.post(f"/api/conversations/{cid}/take"))
    assert sorted((s1, s2)) == [200, 409]
    winner, loser_body = (anna, b2) if s1 == 200 else (binh, b1)
    [conv] = await load(app_client.gw, Conversation, id=cid)
    assert conv.state == "assigned" and conv.assigned_to == winner.id
    assert winner.name in loser_body["error"] and loser_body["assigned_to"] == winner.name
    takes = await load(app_client.gw, AuditEntry, action="take")
    assert [t.account_id for t in takes] == [winner.id]
    # taking it again yourself is harmless; a third counselor is refused
    assert (await winner.post(f"/api/conversations/{cid}/take"))[0] == 200
    chi = await staff("chi", "counselor")
    assert (await chi.post(f"/api/conversations/{cid}/take"))[0] == 409


async def test_take_of_a_missing_or_closed_conversation(app_client, staff):
    anna = await staff("anna", "counselor")
    assert (await anna.post("/api/conversations/424242/take"))[0] == 404
    cid = await queued_conversation(app_client.gw, state="closed")
    status, body = await anna.post(f"/api/conversations/{cid}/take")
    assert status == 409 and "closed" in body["error"]


async def test_take_is_published_live_to_other_counselors(app_client, staff):
    cid = await queued_conversation(app_client.gw)
    anna, binh = await staff("anna", "counselor"), await staff("binh", "counselor")
    async with binh.ws() as ws:
        await ws.receive_json(timeout=5)  # hello
        assert (await anna.post(f"/api/conversations/{cid}/take"))[0] == 200
        event = await ws.receive_json(timeout=5)
    assert event == {"type": "queue", "conversation_id": cid, "state": "assigned", "priority": "at_risk",
                     "reason": "test reason", "center": "hanoi", "assigned_to": anna.id}


async def test_triage_change_is_logged(app_client, staff):
    cid = await queued_conversation(app_client.gw, priority="request", reason="asked for a person")
    anna = await staff("anna", "counselor")
    status, body = await anna.call("PATCH", f"/api/conversations/{cid}/triage",
                                   {"priority": "emergency", "reason": "held by employer"})
    assert status == 200
    assert body == {"priority": "emergency", "reason": "held by employer",
                    "previous": {"priority": "request", "reason": "asked for a person"}}
    [conv] = await load(app_client.gw, Conversation, id=cid)
    [case] = await load(app_client.gw, Case, conversation_id=cid)
    assert (conv.priority, conv.reason) == ("emergency", "held by employer")
    assert (case.priority, case.reason) == ("emergency", "held by employer")
    [entry] = await load(app_client.gw, AuditEntry, action="triage")
    assert entry.account_id == anna.id and entry.target == f"conversation:{cid}"
    assert entry.detail == {"from": {"priority": "request", "reason": "asked for a person"},
                            "to": {"priority": "emergency", "reason": "held by employer"}}


async def test_triage_refuses_bad_values_and_other_holders(app_client, staff):
    cid = await queued_conversation(app_client.gw)
    anna, binh = await staff("anna", "counselor"), await staff("binh", "counselor")
    assert (await anna.call("PATCH", f"/api/conversations/{cid}/triage", {"priority": "urgent"}))[0] == 400
    assert (await anna.call("PATCH", f"/api/conversations/{cid}/triage", {}))[0] == 400
    assert (await anna.call("PATCH", f"/api/conversations/{cid}/triage", {"reason": "x" * 300}))[0] == 400
    await anna.post(f"/api/conversations/{cid}/take")
    assert (await binh.call("PATCH", f"/api/conversations/{cid}/triage", {"priority": "request"}))[0] == 409
    boss = await staff("boss", "supervisor")
    assert (await boss.call("PATCH", f"/api/conversations/{cid}/triage", {"priority": "request"}))[0] == 200
    assert await load(app_client.gw, AuditEntry, action="triage")


async def test_counselors_and_centers(app_client, staff):
    anna = await staff("anna", "counselor", center="danang")
    await staff("ed", "content_editor")
    cid = await queued_conversation(app_client.gw)
    await anna.post(f"/api/conversations/{cid}/take")
    status, body = await anna.get("/api/counselors")
    assert status == 200
    assert body["counselors"] == [{"name": "anna", "display_name": "anna", "role": "counselor", "center": "danang",
                                   "online": True, "active_chats": 1}]
    status, body = await anna.get("/api/centers")
    assert status == 200 and body["fallback"] == "hanoi"
    assert {c["key"] for c in body["centers"]} == {"hanoi", "danang", "angiang"}
    assert next(c for c in body["centers"] if c["key"] == "hanoi")["open"] is True

