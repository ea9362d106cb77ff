"""The conversation view: opening (audited), summary, replies within the window rules, location
link, transfer, release, close with an outcome and referral."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from bot.db.models import AuditEntry, Case, Conversation, Location, Message, utcnow
from tests.console.conftest import ago, eventually, load, queued_conversation


async def taken(app_client, member, **kw) -> int:
    cid = await queued_conversation(app_client.gw, **kw)
    assert (await member.post(f"/api/conversations/{cid}/take"))[0] == 200
    return cid


async def test_opening_a_conversation_is_audited_and_readable_by_supervisors(app_client, staff):
    cid = await queued_conversation(app_client.gw, summary={"where": "Móng Cái", "age": 15, "safe_now": False})
    anna, boss = await staff("anna", "counselor"), await staff("boss", "supervisor")
    for _ in range(2):
        status, body = await anna.get(f"/api/conversations/{cid}")
        assert status == 200
    assert set(body) >= {"conversation", "summary", "messages", "locations", "window"}
    assert body["summary"] == {"safe_now": False, "where": "Móng Cái", "with_whom": None, "wants": None, "age": 15,
                               "notes": None, "language": "vi", "channel": "messenger"}
    opened = await load(app_client.gw, AuditEntry, action="open_conversation")
    assert [(e.account_id, e.target) for e in opened] == [(anna.id, f"conversation:{cid}")] * 2
    status, audit = await boss.get("/api/audit?action=open_conversation")
    assert status == 200
    assert [(e["account"], e["target"]) for e in audit["entries"]] == [("anna", f"conversation:{cid}")] * 2
    assert (await anna.get("/api/audit"))[0] == 403


async def test_audit_paging_and_filters(app_client, staff):
    cid = await queued_conversation(app_client.gw)
    anna, boss = await staff("anna", "counselor"), await staff("boss", "supervisor")
    for _ in range(5):
        await anna.get(f"/api/conversations/{cid}")
    status, page1 = await boss.get("/api/audit?limit=3&account=anna")
    assert status == 200 and len(page1["entries"]) == 3 and page1["next_before"]
    status, page2 = await boss.get(f"/api/audit?limit=3&account=anna&before={page1['next_before']}")
    ids = [e["id"] for e in page1["entries"] + page2["entries"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert {e["account"] for e in page1["entries"] + page2["entries"]} == {"anna"}
    assert (await boss.get("/api/audit?limit=abc"))[0] == 400


async def test_transcript_marks_authors_and_locations_show_on_the_map(app_client, staff):
    gw = app_client.gw
    cid = await queued_conversation(gw)
    async with gw.sessions() as s:
        msg = Message(conversation_id=cid, direction="in", author="user", channel="messenger", text="<b>hi</b>",
                      payload={"kind": "message", "location": {"lat": 21.53, "lon": 107.97, "label": None}},
                      status="done")
        s.add(msg)
        s.add(Message(conversation_id=cid, direction="out", author="bot", channel="messenger", text="bot says",
                      status="sent"))
        await s.flush()
        s.add(Location(conversation_id=cid, message_id=msg.id, source="messenger", lat=21.53, lon=107.97,
                       resolved={"country": "VN", "province": "Quảng Ninh", "border": "China", "center": "hanoi",
                                 "referral": "Border Guard"}))
        await s.commit()
    anna = await staff("anna", "counselor")
    status, body = await anna.get(f"/api/conversations/{cid}")
    assert status == 200
    assert [(m["author"], m["direction"], m["text"]) for m in body["messages"]] == [
        ("user", "in", "<b>hi</b>"), ("bot", "out", "bot says")]
    [loc] = body["locations"]
    assert loc["resolved"]["province"] == "Quảng Ninh" and loc["resolved"]["border"] == "China"
    embed = urlsplit(loc["map"]["embed_url"])
    assert embed.netloc == "www.openstreetmap.org" and embed.path == "/export/embed.html"
    assert parse_qs(embed.query)["marker"] == ["21.530000,107.970000"]
    west, south, east, north = map(float, parse_qs(embed.query)["bbox"][0].split(","))
    assert west < 107.97 < east and south < 21.53 < north
    assert loc["map"]["link_url"].startswith("https://www.openstreetmap.org/?mlat=21.530000&mlon=107.970000")


async def test_summary_is_edited_and_becomes_the_case_record(app_client, staff):
    anna = await staff("anna", "counselor")
    cid = await taken(app_client, anna, summary={"where": "Lào Cai", "age": 17})
    status, body = await anna.call("PUT", f"/api/conversations/{cid}/summary",
                                   {"safe_now": True, "with_whom": "mẹ", "wants": "go home", "age": "19"})
    assert status == 200
    assert body["summary"] == {"safe_now": True, "where": "Lào Cai", "with_whom": "mẹ", "wants": "go home",
                               "age": 19, "notes": None, "language": "vi", "channel": "messenger"}
    [case] = await load(app_client.gw, Case, conversation_id=cid)
    assert case.summary["with_whom"] == "mẹ" and case.summary["age"] == 19 and case.summary["channel"] == "messenger"
    for bad in ({"age": "old"}, {"safe_now": "maybe"}, {"where": 3}, {"notes": "x" * 600}, {}):
        assert (await anna.call("PUT", f"/api/conversations/{cid}/summary", bad))[0] == 400, bad
    binh = await staff("binh", "counselor")
    assert (await binh.call("PUT", f"/api/conversations/{cid}/summary", {"where": "Huế"}))[0] == 409


async def test_a_reply_reaches_the_person_through_the_same_app(app_client, staff, fakes):
    anna = await staff("anna", "counselor")
    cid = await queued_conversation(app_client.gw, "psid-reply")
    status, body = await anna.post(f"/api/conversations/{cid}/reply", {"text": "Chào em, chị là tư vấn viên."})
    assert status == 409 and "take" in body["error"]
    await anna.post(f"/api/conversations/{cid}/take")
    status, body = await anna.post(f"/api/conversations/{cid}/reply", {"text": "Chào em, chị là tư vấn viên."})
    # "sending": claimed for sending at once; "pending": waits behind an older unsent message
    assert status == 202 and body["status"] in ("sending", "pending") and body["human_agent"] is False
    await eventually(lambda: fakes.graph.texts_to("psid-reply") == ["Chào em, chị là tư vấn viên."])
    assert fakes.graph.delivered[-1]["messaging_type"] == "RESPONSE"
    [row] = await load(app_client.gw, Message, id=body["message_id"])
    assert (row.author, row.account_id, row.direction) == ("counselor", anna.id, "out")
    await eventually(lambda: load_status(app_client, body["message_id"], "sent"))
    assert (await anna.post(f"/api/conversations/{cid}/reply", {"text": "  "}))[0] == 400
    assert (await anna.post(f"/api/conversations/{cid}/reply", {"text": "x" * 5000}))[0] == 400


async def load_status(app_client, message_id: int, status: str) -> bool:
    [row] = await load(app_client.gw, Message, id=message_id)
    return row.status == status


async def test_messenger_after_24_hours_uses_human_agent(app_client, staff, fakes):
    anna = await staff("anna", "counselor")
    cid = await taken(app_client, anna, user_id="psid-late", last_user_at=ago(hours=30))
    fakes.graph.set_outside_window("psid-late")  # Graph refuses anything but HUMAN_AGENT now
    status, conv = await anna.get(f"/api/conversations/{cid}")
    assert conv["window"]["open"] is True and conv["window"]["mode"] == "human_agent"
    assert conv["window"]["bot_open"] is False and conv["window"]["warning"] is False
    status, body = await anna.post(f"/api/conversations/{cid}/reply", {"text": "Em còn ở đó không?"})
    assert status == 202 and body["human_agent"] is True
    await eventually(lambda: fakes.graph.texts_to("psid-late") == ["Em còn ở đó không?"])
    sent = fakes.graph.delivered[-1]
    assert sent["messaging_type"] == "MESSAGE_TAG" and sent["tag"] == "HUMAN_AGENT"


async def test_window_warning_before_it_closes(app_client, staff):
    anna = await staff("anna", "counselor")
    cid = await taken(app_client, anna, last_user_at=ago(days=6, hours=23))
    _, conv = await anna.get(f"/api/conversations/{cid}")
    assert conv["window"]["open"] is True and conv["window"]["warning"] is True
    assert 0 < conv["window"]["seconds_left"] <= 3600


async def test_after_seven_days_the_reply_is_refused(app_client, staff, fakes):
    anna = await staff("anna", "counselor")
    messenger = await taken(app_client, anna, user_id="psid-old", last_user_at=ago(days=7, minutes=1))
    zalo = await taken(app_client, anna, user_id="zalo-old", channel="zalo", last_user_at=ago(days=8))
    zalo_ok = await taken(app_client, anna, user_id="zalo-ok", channel="zalo", last_user_at=ago(days=6))
    for cid in (messenger, zalo):
        status, body = await anna.post(f"/api/conversations/{cid}/reply", {"text": "hello?"})
        assert status == 409 and "window" in body["error"] and body["window"]["open"] is False
    counselor_rows = [m for m in await load(app_client.gw, Message) if m.author == "counselor"]
    assert counselor_rows == []
    status, _ = await anna.post(f"/api/conversations/{zalo_ok}/reply", {"text": "Chào bạn"})
    assert status == 202
    await eventually(lambda: any("Chào bạn" in t for t in fakes.zalo.texts_to("zalo-ok")))
    assert fakes.graph.texts_to("psid-old") == []


async def test_an_unreachable_person_is_refused_with_a_clear_message(app_client, staff):
    anna = await staff("anna", "counselor")
    cid = await taken(app_client, anna)
    async with app_client.gw.sessions() as s:
        conv = await s.get(Conversation, cid)
        conv.unreachable = True
        await s.commit()
    status, body = await anna.post(f"/api/conversations/{cid}/reply", {"text": "hello?"})
    assert status == 409 and "cannot be reached" in body["error"]


async def test_a_delivery_failure_is_shown_live(app_client, staff, fakes):
    anna = await staff("anna", "counselor")
    cid = await taken(app_client, anna, user_id="psid-gone")
    fakes.graph.set_unavailable("psid-gone")
    async with anna.ws() as ws:
        await ws.receive_json(timeout=5)
        status, body = await anna.post(f"/api/conversations/{cid}/reply", {"text": "Em ơi?"})
        assert status == 202
        events = [await ws.receive_json(timeout=5)]
        while events[-1]["type"] != "message_status":
            events.append(await ws.receive_json(timeout=5))
    assert events[0]["type"] == "message" and events[0]["message"]["author"] == "counselor"
    assert events[0]["message"]["account"] == "anna" and events[0]["message"]["text"] == "Em ơi?"
    assert events[-1]["message_id"] == body["message_id"] and events[-1]["status"] == "failed"
    assert events[-1]["error"]
    status, shown = await anna.get(f"/api/conversations/{cid}/messages/{body['message_id']}")
    assert shown["message"]["status"] == "failed" and shown["message"]["error"]


async def test_sending_the_share_location_link(app_client, staff, fakes):
    anna = await staff("anna", "counselor")
    cid = await taken(app_client, anna, user_id="psid-loc")
    status, body = await anna.post(f"/api/conversations/{cid}/location-link")
    assert status == 202
    [row] = await load(app_client.gw, Message, id=body["message_id"])
    assert row.author == "counselor" and row.account_id == anna.id
    url = row.payload["link"]["url"]
    assert url.startswith("http://gateway.test/l/") and url in row.text
    await eventually(lambda: fakes.graph.messages_to("psid-loc"))
    button = fakes.graph.messages_to("psid-loc")[0]["attachment"]["payload"]["buttons"][0]
    assert button["url"] == url
    token = url.rsplit("/", 1)[1]
    async with app_client.get(f"/l/{token}") as r:
        assert r.status == 200


async def test_canned_replies_come_from_the_content_store(app_client, staff):
    anna = await staff("anna", "counselor")
    cid = await queued_conversation(app_client.gw, language="en")
    status, body = await anna.get(f"/api/canned?conversation={cid}")
    assert status == 200 and body["lang"] == "en"
    by_id = {c["id"]: c for c in body["canned"]}
    assert "ask_location" in by_id
    expected = await app_client.gw.text(by_id["ask_location"]["key"], "en")
    assert by_id["ask_location"]["text"] == expected and expected
    status, vi = await anna.get("/api/canned?lang=vi")
    assert {c["id"] for c in vi["canned"]} == set(by_id)
    assert vi["canned"][0]["text"] != body["canned"][0]["text"]


async def test_transfer_to_another_counselor(app_client, staff):
    anna, binh = await staff("anna", "counselor"), await staff("binh", "counselor")
    editor = await staff("ed", "content_editor")
    cid = await taken(app_client, anna)
    assert (await binh.post(f"/api/conversations/{cid}/transfer", {"to": "binh"}))[0] == 409  # not hers
    assert (await anna.post(f"/api/conversations/{cid}/transfer", {"to": editor.name}))[0] == 400
    assert (await anna.post(f"/api/conversations/{cid}/transfer", {"to": "nobody"}))[0] == 400
    assert (await anna.post(f"/api/conversations/{cid}/transfer", {}))[0] == 400
    async with binh.ws() as ws:
        await ws.receive_json(timeout=5)
        status, body = await anna.post(f"/api/conversations/{cid}/transfer", {"to": "binh"})
        event = await ws.receive_json(timeout=5)
    assert status == 200 and body["conversation"]["assigned_to"] == "binh"
    assert event["transferred_to"] == "binh" and event["assigned_to"] == binh.id
    [conv] = await load(app_client.gw, Conversation, id=cid)
    assert conv.assigned_to == binh.id and conv.state == "assigned"
    [entry] = await load(app_client.gw, AuditEntry, action="transfer")
    assert entry.account_id == anna.id and entry.detail == {"from": "anna", "to": "binh"}
    assert (await anna.post(f"/api/conversations/{cid}/reply", {"text": "x"}))[0] == 409
    assert (await binh.post(f"/api/conversations/{cid}/reply", {"text": "Chào em"}))[0] == 202


async def test_a_supervisor_can_assign_a_waiting_conversation(app_client, staff):
    boss, anna = await staff("boss", "supervisor"), await staff("anna", "counselor")
    cid = await queued_conversation(app_client.gw)
    assert (await anna.post(f"/api/conversations/{cid}/transfer", {"to": "boss"}))[0] == 409  # take it first
    status, body = await boss.post(f"/api/conversations/{cid}/transfer", {"to": "anna"})
    assert status == 200 and body["conversation"]["assigned_to"] == "anna"


async def test_release_back_to_the_bot(app_client, staff):
    recorded = []

    async def add_events(sender, events):
        recorded.append((sender, events))

    app_client.gw.rasa.add_events = add_events
    anna = await staff("anna", "counselor")
    cid = await taken(app_client, anna, user_id="psid-rel")
    status, body = await anna.post(f"/api/conversations/{cid}/release")
    assert status == 200 and body == {"state": "bot"}
    [conv] = await load(app_client.gw, Conversation, id=cid)
    assert conv.state == "bot" and conv.assigned_to is None
    [case] = await load(app_client.gw, Case, conversation_id=cid)
    assert case.outcome == "released_to_bot" and case.closed_by == anna.id and case.closed_at is not None
    await eventually(lambda: ("messenger-psid-rel", [{"event": "resume"}]) in recorded)
    assert all(events != [{"event": "pause"}] for _, events in recorded)  # Rasa is never paused
    assert await load(app_client.gw, AuditEntry, action="release")
    assert (await anna.post(f"/api/conversations/{cid}/release"))[0] == 409


async def test_close_with_an_outcome(app_client, staff):
    anna = await staff("anna", "counselor")
    cid = await taken(app_client, anna, summary={"where": "Hà Giang", "age": 30})
    assert (await anna.post(f"/api/conversations/{cid}/close", {"outcome": "gossip"}))[0] == 400
    assert (await anna.post(f"/api/conversations/{cid}/close",
                            {"outcome": "information", "referral": {"agency": "x", "sent": "y"}}))[0] == 400
    status, body = await anna.post(f"/api/conversations/{cid}/close", {"outcome": "information"})
    assert status == 200 and body["state"] == "closed"
    [conv] = await load(app_client.gw, Conversation, id=cid)
    [case] = await load(app_client.gw, Case, conversation_id=cid)
    assert conv.state == "closed" and conv.assigned_to is None
    assert case.outcome == "information" and case.referral is None and case.closed_by == anna.id
    assert case.closed_at is not None and case.summary["where"] == "Hà Giang" and case.summary["language"] == "vi"
    assert (await anna.post(f"/api/conversations/{cid}/close", {"outcome": "information"}))[0] == 409


async def test_a_referral_of_an_adult_needs_consent(app_client, staff):
    anna = await staff("anna", "counselor")
    cid = await taken(app_client, anna, priority="at_risk", summary={"age": 30})
    referral = {"agency": "Công an tỉnh Lào Cai", "sent": "tóm tắt ca và vị trí"}
    for consent in (None, False):
        status, body = await anna.post(f"/api/conversations/{cid}/close",
                                       {"outcome": "referral_police", "referral": {**referral, "consent": consent}})
        assert status == 400 and "consent" in body["error"]
    assert (await anna.post(f"/api/conversations/{cid}/close", {"outcome": "referral_police"}))[0] == 400
    [case] = await load(app_client.gw, Case, conversation_id=cid)
    assert case.closed_at is None
    before = utcnow()
    status, body = await anna.post(f"/api/conversations/{cid}/close",
                                   {"outcome": "referral_police", "referral": {**referral, "consent": True}})
    assert status == 200
    [case] = await load(app_client.gw, Case, conversation_id=cid)
    assert case.outcome == "referral_police"
    assert case.referral["agency"] == "Công an tỉnh Lào Cai" and case.referral["sent"] == "tóm tắt ca và vị trí"
    assert case.referral["consent"] is True and case.referral["consent_required"] is True
    assert case.referral["sent_at"] >= before.isoformat()[:19]


async def test_a_referral_for_a_child_or_in_imminent_danger_needs_no_consent(app_client, staff):
    anna = await staff("anna", "counselor")
    child = await taken(app_client, anna, user_id="child", priority="at_risk", summary={"age": 14})
    danger = await taken(app_client, anna, user_id="adult", priority="emergency", summary={"age": 25})
    for cid, outcome, why in ((child, "referral_ngo", "child (age 14)"),
                              (danger, "referral_border_guard", "imminent danger")):
        status, body = await anna.post(f"/api/conversations/{cid}/close", {
            "outcome": outcome, "referral": {"agency": "Blue Dragon", "sent": "summary", "consent": None}})
        assert status == 200, body
        [case] = await load(app_client.gw, Case, conversation_id=cid)
        assert case.referral["consent_required"] is False and case.referral["consent"] is None
        assert why in case.referral["consent_not_required_because"]
    [entry, *_] = await load(app_client.gw, AuditEntry, action="close")
    assert entry.detail["outcome"] == "referral_ngo"


async def test_supervisor_overview(app_client, staff):
    anna, boss = await staff("anna", "counselor"), await staff("boss", "supervisor")
    waiting = await queued_conversation(app_client.gw, "w1", priority="emergency", queued_at=ago(minutes=7))
    mine = await taken(app_client, anna, user_id="w2")
    referred = await taken(app_client, anna, user_id="w3", priority="emergency")
    await anna.post(f"/api/conversations/{referred}/close", {
        "outcome": "referral_police", "referral": {"agency": "Công an", "sent": "vị trí"}})
    status, body = await boss.get("/api/supervisor/overview")
    assert status == 200
    assert [w["id"] for w in body["waiting"]] == [waiting] and body["longest_wait_s"] >= 420
    people = {c["name"]: c for c in body["counselors"]}
    assert people["anna"]["active_chats"] == 1 and people["anna"]["conversations"][0]["id"] == mine
    assert people["anna"]["online"] is True
    assert body["counts"]["queued"] == 1 and body["counts"]["assigned"] == 1
    assert body["outcomes_30d"] == {"referral_police": 1}
    [ref] = body["referrals_30d"]
    assert ref["conversation_id"] == referred and ref["agency"] == "Công an" and ref["closed_by"] == "anna"
