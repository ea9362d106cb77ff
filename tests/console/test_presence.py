"""Presence (who is online, across replicas), the "no counselor online" notice, routing of a
conversation to its region's center, and the live WebSocket's access rules."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from bot import escalation, presence
from bot.db.models import Account, Conversation, utcnow
from tests.console.conftest import RISK_TEXT, eventually, load, post_messenger
from tests.fakes.payloads import messenger_location_event, messenger_text_event

VN = timezone(timedelta(hours=7))
DA_NANG = (16.054, 108.202)


def vietnam_time(hour: int) -> datetime:
    return datetime(2026, 3, 10, hour, 0, tzinfo=VN)  # a Tuesday, not a holiday


async def no_counselor_text(gw, lang: str = "vi") -> str:
    return await gw.text("utter_queued_no_counselor", lang)


async def conversation_of(gw, user_id: str) -> Conversation:
    [conv] = await load(gw, Conversation, user_id=user_id)
    return conv


async def test_nobody_online_the_person_is_told_and_given_111_and_113(app_client, fakes, staff):
    await staff("ed", "content_editor")  # a content editor does not answer chats
    await staff("anna", "counselor", login=False)
    assert await post_messenger(app_client, messenger_text_event("psid-alone", RISK_TEXT, "m-alone")) == 200
    notice = await no_counselor_text(app_client.gw)
    assert "111" in notice and "113" in notice
    texts = await eventually(lambda: notice in fakes.graph.texts_to("psid-alone") and fakes.graph.texts_to("psid-alone"))
    assert any("113" in t for t in texts)
    conv = await conversation_of(app_client.gw, "psid-alone")
    assert conv.state == "queued" and conv.priority == "emergency"


async def test_with_a_counselor_online_no_such_notice(app_client, fakes, staff):
    anna = await staff("anna", "counselor")
    async with anna.ws() as ws:
        await ws.receive_json(timeout=5)
        await post_messenger(app_client, messenger_text_event("psid-seen", RISK_TEXT, "m-seen"))
        while (await ws.receive_json(timeout=5))["type"] != "queue":
            pass
        await eventually(lambda: fakes.graph.texts_to("psid-seen"))
    notice = await no_counselor_text(app_client.gw)
    assert notice not in fakes.graph.texts_to("psid-seen")


async def test_presence_expires_and_is_shared_through_the_database(app_client, staff):
    gw = app_client.gw
    anna = await staff("anna", "counselor", center="danang")
    await staff("ed", "content_editor")
    async with gw.sessions() as s:
        assert [a.username for a in await presence.online_accounts(s)] == ["anna"]  # signed in just now
        assert await presence.anyone_online(s, center="danang")
        assert not await presence.anyone_online(s, center="angiang")
        # seen 2 minutes ago: no longer online, on any replica
        await presence.heartbeat(s, anna.id, utcnow() - timedelta(minutes=2))
        await s.commit()
        assert not await presence.anyone_online(s)
    status, body = await anna.get("/api/presence")
    assert status == 200 and body["online"] == []


async def test_an_open_console_heartbeats_and_closing_it_drops_out_soon(app_client, staff):
    gw = app_client.gw
    anna = await staff("anna", "counselor")
    async with gw.sessions() as s:
        await presence.heartbeat(s, anna.id, utcnow() - timedelta(minutes=5))
        await s.commit()
    async with anna.ws() as ws:
        await ws.receive_json(timeout=5)
        [account] = await load(gw, Account, id=anna.id)
        assert presence.is_online(account)
    await eventually(lambda: not gw.live.subscribers)

    async def marked_gone():
        [row] = await load(gw, Account, id=anna.id)
        return row.last_seen_at.replace(tzinfo=timezone.utc) <= utcnow() - presence.ONLINE_WINDOW + presence.GONE_GRACE

    await eventually(marked_gone)
    [account] = await load(gw, Account, id=anna.id)
    seen = account.last_seen_at.replace(tzinfo=timezone.utc)
    assert seen <= utcnow() - presence.ONLINE_WINDOW + presence.GONE_GRACE  # gone within GONE_GRACE
    assert presence.is_online(account)  # ...but not at once: another tab may heartbeat meanwhile
    async with gw.sessions() as s:
        assert not await presence.anyone_online(s, now=utcnow() + presence.GONE_GRACE + timedelta(seconds=1))


async def test_logout_leaves_presence(app_client, staff):
    anna = await staff("anna", "counselor")
    assert (await anna.post("/api/logout"))[0] == 200
    async with app_client.gw.sessions() as s:
        assert not await presence.anyone_online(s, now=utcnow() + presence.GONE_GRACE + timedelta(seconds=1))


async def test_live_socket_refuses_other_origins_and_strangers(app_client, staff):
    anna = await staff("anna", "counselor")
    for origin in ("http://evil.example", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with anna.ws(origin=origin):
                pass
        assert refused.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # no Origin header at all
        async with anna.client.ws_connect("/api/live"):
            pass
    assert refused.value.status == 403
    host = f"{app_client.server.host}:{app_client.server.port}"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # no session cookie
        async with app_client.ws_connect("/api/live", headers={"Origin": f"http://{host}"}):
            pass
    assert refused.value.status == 401


async def test_content_editors_get_no_conversation_events(app_client, staff):
    editor, anna = await staff("ed", "content_editor"), await staff("anna", "counselor")
    async with editor.ws() as ed_ws, anna.ws() as co_ws:
        assert (await ed_ws.receive_json(timeout=5))["user"]["role"] == "content_editor"
        await co_ws.receive_json(timeout=5)
        await app_client.gw.live.publish({"type": "queue", "conversation_id": 1, "state": "queued"})
        await app_client.gw.live.publish({"type": "message", "conversation_id": 1, "message": {"text": "secret"},
                                          "roles": ["counselor", "content_editor"]})
        await app_client.gw.live.publish({"type": "publish", "id": 7, "roles": ["content_editor", "admin"]})
        assert (await co_ws.receive_json(timeout=5))["type"] == "queue"
        assert (await co_ws.receive_json(timeout=5))["type"] == "message"
        first_for_editor = await ed_ws.receive_json(timeout=5)
    assert first_for_editor == {"type": "publish", "id": 7}


async def test_a_revoked_session_closes_the_socket(app_client, staff, monkeypatch):
    monkeypatch.setattr(presence, "HEARTBEAT", timedelta(seconds=0.2))
    anna = await staff("anna", "counselor")
    async with anna.ws() as ws:
        await ws.receive_json(timeout=5)
        from bot.db.models import StaffSession

        async with app_client.gw.sessions() as s:
            await s.execute(StaffSession.__table__.update().where(StaffSession.account_id == anna.id)
                            .values(revoked_at=utcnow()))
            await s.commit()
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401


# ---------------------------------------------------------------- routing to the region's center

async def test_a_location_in_da_nang_goes_to_da_nang_while_it_is_open(app_client, staff, monkeypatch):
    monkeypatch.setattr(escalation, "utcnow", lambda: vietnam_time(10))
    await staff("dung", "counselor", center="danang")
    await post_messenger(app_client, messenger_location_event("psid-dn", *DA_NANG, "m-dn"))
    conv = await eventually(lambda: _queued(app_client.gw, "psid-dn"))
    assert conv.center == "danang" and conv.reason == "shared a location"


async def test_da_nang_at_20_00_overflows_to_hanoi(app_client, staff, monkeypatch):
    monkeypatch.setattr(escalation, "utcnow", lambda: vietnam_time(20))
    await staff("dung", "counselor", center="danang")
    await post_messenger(app_client, messenger_location_event("psid-dn-late", *DA_NANG, "m-dn-late"))
    conv = await eventually(lambda: _queued(app_client.gw, "psid-dn-late"))
    assert conv.center == "hanoi"


async def test_open_but_nobody_of_that_center_online_overflows_to_hanoi(app_client, staff, monkeypatch):
    monkeypatch.setattr(escalation, "utcnow", lambda: vietnam_time(10))
    await staff("anna", "counselor", center="hanoi")
    await post_messenger(app_client, messenger_location_event("psid-dn-empty", *DA_NANG, "m-dn-empty"))
    conv = await eventually(lambda: _queued(app_client.gw, "psid-dn-empty"))
    assert conv.center == "hanoi"


async def test_a_stated_province_routes_too(app_client, staff, monkeypatch):
    monkeypatch.setattr(escalation, "utcnow", lambda: vietnam_time(10))
    await staff("an", "counselor", center="angiang")
    await post_messenger(app_client, messenger_text_event("psid-ag", "em bị nhốt ở Kiên Giang", "m-ag"))
    conv = await eventually(lambda: _queued(app_client.gw, "psid-ag"))
    assert conv.center == "angiang" and conv.priority == "emergency"
    assert escalation.region_center_from_text("tôi ở Đà Nẵng") == "danang"
    assert escalation.region_center_from_text("em đang ở Móng Cái") == "hanoi"  # a town: its province's center
    assert escalation.region_center_from_text("nothing here") is None
    assert escalation.region_center_from_text(None) is None


async def _queued(gw, user_id: str) -> Conversation | None:
    rows = await load(gw, Conversation, user_id=user_id)
    return rows[0] if rows and rows[0].state == "queued" else None
