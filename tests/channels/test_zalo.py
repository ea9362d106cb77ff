"""Zalo OA: the X-ZEvent-Signature, the webhook shapes of PLATFORMS.md §2.2–2.3 and §3.8, and the
client against the fake OA server: sending, error mapping, and token refresh (including the race
of concurrent senders on an expired token)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import sessionmaker

from bot.db.session import async_engine, session_factory
from channels.base import Attachment, Location, SendError
from channels.tokens import DbTokenStore, MemoryTokenStore, Tokens, TokenStore
from channels import zalo as zalo_module
from channels.zalo import ZaloClient, parse_webhook, verify_signature
from tests.fakes import (
    ZALO_APP_ID,
    ZALO_OA_ID,
    FakeZalo,
    encode,
    sign_zalo,
    zalo_follow_event,
    zalo_location_event,
    zalo_text_event,
)

OA_SECRET = "oa-secret-key-from-webhook-settings"
TEXT_EVENT = ('{"event_name":"user_send_text","app_id":"50554360515256678","sender":{"id":"5510185758261927916"},'
              '"recipient":{"id":"1646843870823903717"},"message":{"text":"Helo","msg_id":"e2a641af6661713b2874"},'
              '"timestamp":"1717061839659","user_id_by_app":"3611371994410983884"}').encode()
LOCATION_EVENT = ('{"event_name":"user_send_location","app_id":"102719276611582260",'
                  '"sender":{"id":"8309393969855402319"},"recipient":{"id":"1423847451268726170"},'
                  '"message":{"attachments":[{"payload":{"coordinates":{"latitude":"10.7923119",'
                  '"longitude":"106.7820651"}},"type":"location"}],"text":"Cơm Coffee New Sky",'
                  '"msg_id":"b8de7d84fa1b3043690c"},"timestamp":"1751100041636",'
                  '"user_id_by_app":"7300442764876318465"}').encode()


def mac(first: str, raw: bytes, timestamp: str, secret: str = OA_SECRET) -> str:
    """The documented formula, computed here independently of the code under test."""
    return hashlib.sha256(first.encode() + raw + timestamp.encode() + secret.encode()).hexdigest()


# ---------------------------------------------------------------- signature

def test_signature_with_app_id() -> None:
    header = "mac=" + mac(ZALO_APP_ID, TEXT_EVENT, "1717061839659")
    assert verify_signature(TEXT_EVENT, header, ZALO_APP_ID, OA_SECRET)


@pytest.mark.parametrize("prefix", ["", "mac=", "MAC=", " mac="])
def test_signature_prefix_is_optional(prefix: str) -> None:
    header = prefix + mac(ZALO_APP_ID, TEXT_EVENT, "1717061839659")
    assert verify_signature(TEXT_EVENT, header, ZALO_APP_ID, OA_SECRET)


def test_signature_hex_in_upper_case() -> None:
    header = "mac=" + mac(ZALO_APP_ID, TEXT_EVENT, "1717061839659").upper()
    assert verify_signature(TEXT_EVENT, header, ZALO_APP_ID, OA_SECRET)


def test_signature_with_the_oa_id_as_first_term() -> None:
    header = "mac=" + mac(ZALO_OA_ID, TEXT_EVENT, "1717061839659")
    assert verify_signature(TEXT_EVENT, header, ZALO_APP_ID, OA_SECRET)
    follow = encode(zalo_follow_event("8890635404729405962", timestamp="1752295684665"))
    assert verify_signature(follow, mac(ZALO_OA_ID, follow, "1752295684665"), ZALO_APP_ID, OA_SECRET)


def test_signature_of_the_real_location_event() -> None:
    app_id = "102719276611582260"
    header = "mac=" + mac(app_id, LOCATION_EVENT, "1751100041636")
    assert verify_signature(LOCATION_EVENT, header, app_id, OA_SECRET)


def test_sign_zalo_helper_matches_the_formula() -> None:
    assert sign_zalo(TEXT_EVENT, ZALO_APP_ID, OA_SECRET)["X-ZEvent-Signature"] == \
        "mac=" + mac(ZALO_APP_ID, TEXT_EVENT, "1717061839659")


@pytest.mark.parametrize("header", [
    None, "", "mac=", "mac=" + "0" * 64,
    "mac=" + mac(ZALO_APP_ID, TEXT_EVENT, "1717061839659", "forged-secret"),
    "mac=" + mac(ZALO_APP_ID, TEXT_EVENT, "1717061839660"),  # another timestamp
    "mac=" + mac("5510185758261927916x", TEXT_EVENT, "1717061839659"),
    # an HMAC of the body is NOT the Zalo scheme
    "mac=" + hmac.new(OA_SECRET.encode(), TEXT_EVENT, hashlib.sha256).hexdigest(),
    "sha256=" + mac(ZALO_APP_ID, TEXT_EVENT, "1717061839659"),
    "mac=ü" + mac(ZALO_APP_ID, TEXT_EVENT, "1717061839659")[1:],
])
def test_bad_signatures_are_rejected(header: str | None) -> None:
    assert not verify_signature(TEXT_EVENT, header, ZALO_APP_ID, OA_SECRET)


def test_body_altered_by_one_byte_is_rejected() -> None:
    header = "mac=" + mac(ZALO_APP_ID, TEXT_EVENT, "1717061839659")
    target = TEXT_EVENT.index(b"Helo")
    altered = TEXT_EVENT[:target] + b"X" + TEXT_EVENT[target + 1:]
    assert not verify_signature(altered, header, ZALO_APP_ID, OA_SECRET)


def test_body_of_another_app_is_rejected_even_when_signed_for_it() -> None:
    raw = encode(zalo_text_event("u1", "hi", "m1", app_id="999", timestamp="1717061839659"))
    assert not verify_signature(raw, "mac=" + mac("999", raw, "1717061839659"), ZALO_APP_ID, OA_SECRET)
    assert not verify_signature(raw, "mac=" + mac(ZALO_APP_ID, raw, "1717061839659"), ZALO_APP_ID, OA_SECRET)


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe", b""])
def test_invalid_bodies_are_rejected(raw: bytes) -> None:
    assert not verify_signature(raw, "mac=" + mac(ZALO_APP_ID, raw, ""), ZALO_APP_ID, OA_SECRET)


def test_missing_configuration_never_verifies() -> None:
    header = "mac=" + mac(ZALO_APP_ID, TEXT_EVENT, "1717061839659", "")
    assert not verify_signature(TEXT_EVENT, header, ZALO_APP_ID, "")
    assert not verify_signature(TEXT_EVENT, header, "", OA_SECRET)


def test_body_without_timestamp_or_app_id() -> None:
    raw = b'{"event_name":"user_send_text","sender":{"id":"1"},"message":{"text":"x","msg_id":"m"}}'
    assert verify_signature(raw, mac(ZALO_APP_ID, raw, ""), ZALO_APP_ID, OA_SECRET)


# ---------------------------------------------------------------- parsing

def test_text_event() -> None:
    [message] = parse_webhook(json.loads(TEXT_EVENT))
    assert message.channel == "zalo"
    assert (message.user_id, message.external_id, message.ts) == (
        "5510185758261927916", "e2a641af6661713b2874", 1717061839659)
    assert message.text == "Helo" and message.kind == "message" and message.location is None
    assert message.raw["user_id_by_app"] == "3611371994410983884"


def test_location_event_with_string_coordinates_and_place_name() -> None:
    [message] = parse_webhook(json.loads(LOCATION_EVENT))
    assert message.location == Location(10.7923119, 106.7820651, "Cơm Coffee New Sky")
    assert message.text is None and message.attachments == ()
    assert message.external_id == "b8de7d84fa1b3043690c"


def test_location_event_without_place_name() -> None:
    [message] = parse_webhook(zalo_location_event("u1", 21.0285, 105.8542, "m_loc"))
    assert message.location == Location(21.0285, 105.8542, None)


def test_location_under_message_location() -> None:
    payload = {"event_name": "user_send_location", "app_id": ZALO_APP_ID, "sender": {"id": "u1"},
               "message": {"msg_id": "m2", "location": {"latitude": "16.0544", "longitude": "108.2022"}},
               "timestamp": "1751100041636"}
    [message] = parse_webhook(payload)
    assert message.location == Location(16.0544, 108.2022)


@pytest.mark.parametrize("lat, lon", [("", ""), ("abc", "1"), ("95", "10"), ("10", "190"), ("0", "0")])
def test_location_with_invalid_coordinates_keeps_the_place_name(lat: str, lon: str) -> None:
    [message] = parse_webhook(zalo_location_event("u1", lat, lon, "m_bad", place="Bến xe Mỹ Đình"))
    assert message.location is None
    assert message.attachments == (Attachment(type="location", name="Bến xe Mỹ Đình"),)


def test_image_event_with_caption() -> None:
    payload = json.loads('{"app_id":"1163843031413526746","user_id_by_app":"2372735685249892743",'
                         '"event_name":"user_send_image","timestamp":"1609984527174",'
                         '"sender":{"id":"4339761418830368433"},"recipient":{"id":"2197174064623873199"},'
                         '"message":{"msg_id":"This is message id","text":"This is testing message",'
                         '"attachments":[{"payload":{"thumbnail":"https://zalo.example/t.jpg",'
                         '"url":"https://zalo.example/i.jpg"},"type":"image"}]}}')
    [message] = parse_webhook(payload)
    assert message.text == "This is testing message"
    assert message.attachments == (Attachment(type="image", url="https://zalo.example/i.jpg"),)


def test_placeholders_from_the_test_tool_are_not_urls() -> None:
    payload = {"event_name": "user_send_sticker", "sender": {"id": "u1"}, "timestamp": "1609984527174",
               "message": {"msg_id": "m_st", "attachments": [{"payload": {"id": "sticker_id", "url": "link"},
                                                              "type": "sticker"}]}}
    [message] = parse_webhook(payload)
    assert message.attachments == (Attachment(type="sticker"),)


@pytest.mark.parametrize("event, attachment", [
    ("user_send_file", {"type": "file", "payload": {"url": "https://f.example/a.pdf", "name": "hop-dong.pdf",
                                                    "size": "1024", "type": "pdf"}}),
    ("user_send_link", {"type": "link", "payload": {"url": "https://tuyendung.example", "description": "Việc làm",
                                                    "thumbnail": "https://t.example/x.jpg"}}),
    ("user_send_gif", {"type": "gif", "payload": {"url": "https://g.example/x.gif"}}),
    ("user_send_audio", {"type": "audio", "payload": {"url": "https://a.example/x.aac"}}),
    ("user_send_video", {"type": "video", "payload": {"url": "https://v.example/x.mp4"}}),
    ("user_send_business_card", {"type": "business_card", "payload": {"description": "Anh Nam"}}),
])
def test_attachment_events(event: str, attachment: dict[str, Any]) -> None:
    payload = {"event_name": event, "sender": {"id": "u1"}, "recipient": {"id": ZALO_OA_ID},
               "timestamp": "1609984527174", "message": {"msg_id": "m_att", "attachments": [attachment]}}
    [message] = parse_webhook(payload)
    [found] = message.attachments
    assert found.type == attachment["type"]
    assert found.url == attachment["payload"].get("url")
    assert found.name == (attachment["payload"].get("name") or attachment["payload"].get("description"))


def test_attachment_event_without_attachments_still_arrives() -> None:
    payload = {"event_name": "user_send_image", "sender": {"id": "u1"}, "timestamp": "1", "message": {"msg_id": "m"}}
    [message] = parse_webhook(payload)
    assert message.attachments == (Attachment(type="image"),)


@pytest.mark.parametrize("event_name, kind", [("follow", "follow"), ("unfollow", "unfollow")])
def test_follow_and_unfollow(event_name: str, kind: str) -> None:
    payload = zalo_follow_event("8890635404729405962", unfollow=event_name == "unfollow", timestamp="1752295684665")
    [message] = parse_webhook(payload)
    assert (message.kind, message.user_id, message.ts) == (kind, "8890635404729405962", 1752295684665)
    assert message.text is None
    assert message.external_id == parse_webhook(payload)[0].external_id  # stable on redelivery
    later = dict(payload, timestamp="1752295684666")
    assert parse_webhook(later)[0].external_id != message.external_id
    other = zalo_follow_event("8890635404729405962", unfollow=event_name != "unfollow", timestamp="1752295684665")
    assert parse_webhook(other)[0].external_id != message.external_id


@pytest.mark.parametrize("payload", [
    {"event_name": "oa_send_text", "sender": {"id": ZALO_OA_ID, "admin_id": "a1"}, "recipient": {"id": "u1"},
     "message": {"text": "counselor reply", "msg_id": "m"}, "timestamp": "1"},
    {"event_name": "oa_send_image", "sender": {"id": ZALO_OA_ID}, "recipient": {"id": "u1"},
     "message": {"msg_id": "m", "attachments": []}, "timestamp": "1"},
    {"event_name": "user_seen_message", "sender": {"id": ZALO_OA_ID}, "recipient": {"id": "u1"},
     "message": {"msg_ids": ["a", "b"]}, "timestamp": "1"},
    {"event_name": "user_received_message", "sender": {"id": ZALO_OA_ID}, "recipient": {"id": "u1"},
     "message": {"msg_id": "a", "delivery_time": "1"}, "timestamp": "1"},
    {"event_name": "anonymous_send_text", "sender": {"id": "anon"}, "message": {"text": "x"}, "timestamp": "1"},
    {"event_name": "user_submit_info", "sender": {"id": "u1"}, "info": {"phone": "0900000000"}},
    {"event_name": "brand_new_event"},
    {"event_name": "user_send_text", "message": {"text": "no sender", "msg_id": "m"}},
    {"event_name": "user_send_text", "sender": {"id": "u1"}},
    {"event_name": "user_send_text", "sender": {"id": "u1"}, "message": {"text": "  ", "msg_id": "m"}},
    {"event_name": "follow", "oa_id": ZALO_OA_ID, "timestamp": "1"},
])
def test_ignored_events(payload: dict[str, Any]) -> None:
    assert parse_webhook(payload) == []


def test_a_failing_event_is_logged_without_its_text(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    def explode(event: str, payload: dict[str, Any]) -> None:
        raise ValueError(f"bad value {payload['message']['text']}")
    monkeypatch.setattr(zalo_module, "_parse_user_message", explode)
    assert parse_webhook(zalo_text_event("u1", "Tôi đang bị giam giữ", "m1")) == []
    assert "ValueError" in caplog.text and "giam" not in caplog.text


def test_ids_and_timestamps_as_numbers_and_extra_fields() -> None:
    payload = {"event_name": "user_send_text", "app_id": 50554360515256678, "sender": {"id": 5510185758261927916},
               "recipient": {"id": 1646843870823903717}, "timestamp": 1717061839659, "reorder_id": "x",
               "message": {"text": "Cứu", "msg_id": "abc", "quote_msg_id": "q"}}
    [message] = parse_webhook(payload)
    assert (message.user_id, message.ts, message.text) == ("5510185758261927916", 1717061839659, "Cứu")


def test_message_without_msg_id_gets_a_stable_id() -> None:
    payload = {"event_name": "user_send_text", "sender": {"id": "u1"}, "timestamp": "5", "message": {"text": "x"}}
    assert parse_webhook(payload)[0].external_id == parse_webhook(payload)[0].external_id


@pytest.mark.parametrize("payload", [None, [], "x", 1, {}, {"event_name": 5}, {"event": "user_send_text"}])
def test_not_a_zalo_event_raises_value_error(payload: Any) -> None:
    with pytest.raises(ValueError):
        parse_webhook(payload)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)
EVENT_NAMES = st.sampled_from(["user_send_text", "user_send_location", "user_send_image", "user_send_file",
                               "user_send_link", "follow", "unfollow", "oa_send_text", "user_seen_message"])
ZALO_EVENT = st.fixed_dictionaries({"event_name": EVENT_NAMES | JSON}, optional={
    "app_id": JSON, "timestamp": JSON, "oa_id": JSON,
    "sender": st.fixed_dictionaries({}, optional={"id": JSON}) | JSON,
    "follower": st.fixed_dictionaries({}, optional={"id": JSON}) | JSON,
    "message": st.fixed_dictionaries({}, optional={
        "text": JSON, "msg_id": JSON, "location": JSON,
        "attachments": st.lists(st.fixed_dictionaries({}, optional={
            "type": JSON, "payload": st.fixed_dictionaries({}, optional={
                "coordinates": st.fixed_dictionaries({}, optional={"latitude": JSON, "longitude": JSON}) | JSON,
                "url": JSON, "name": JSON}) | JSON}) | JSON, max_size=3) | JSON}) | JSON,
})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSON, ZALO_EVENT))
def test_fuzz_parse_webhook_returns_a_list_or_raises_value_error(payload: Any) -> None:
    try:
        messages = parse_webhook(payload)
    except ValueError:
        return
    assert isinstance(messages, list) and len(messages) <= 1
    for message in messages:
        assert isinstance(message.user_id, str) and message.user_id
        assert isinstance(message.external_id, str) and 0 < len(message.external_id) <= 255
        assert isinstance(message.ts, int) and message.ts > 0
        assert message.kind in ("message", "follow", "unfollow")
        if message.location is not None:
            assert -90 <= message.location.lat <= 90 and -180 <= message.location.lon <= 180


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.one_of(st.none(), st.text(max_size=80)))
def test_fuzz_verify_signature_returns_a_bool(raw: bytes, header: str | None) -> None:
    assert verify_signature(raw, header, ZALO_APP_ID, OA_SECRET) is False


# ---------------------------------------------------------------- client

def tokens_of(zalo: FakeZalo, expires_at: datetime | None = None) -> Tokens:
    return Tokens(zalo.access_token or "gone", zalo.refresh_token, expires_at)


def make_client(http: aiohttp.ClientSession, zalo: FakeZalo, store: TokenStore, **kwargs: Any) -> ZaloClient:
    return ZaloClient(http, zalo.url, zalo.url, zalo.app_id, zalo.app_secret_key, store, **kwargs)


async def test_send_text(http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    result = await make_client(http, zalo, MemoryTokenStore(tokens_of(zalo))).send_text("u1", "Xin chào")
    [call] = zalo.calls
    assert call["path"] == "/v3.0/oa/message/cs"
    assert call["access_token"] == "zalo-access-0"
    assert call["json"] == {"recipient": {"user_id": "u1"}, "message": {"text": "Xin chào"}}
    assert result.platform_message_id == "00000000000000000001"
    assert zalo.texts_to("u1") == ["Xin chào"]
    assert zalo.refresh_attempts == 0


async def test_long_text_is_split(http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    text = "\n\n".join(f"Đoạn {i}: " + "nội dung hướng dẫn an toàn " * 30 for i in range(5))
    await make_client(http, zalo, MemoryTokenStore(tokens_of(zalo))).send_text("u1", text)
    parts = zalo.texts_to("u1")
    assert len(parts) > 1 and all(len(p) <= 2000 for p in parts)
    assert "".join(parts).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


async def test_empty_text_raises(http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    with pytest.raises(ValueError):
        await make_client(http, zalo, MemoryTokenStore(tokens_of(zalo))).send_text("u1", "")


async def test_rejected_token_is_refreshed_once_then_retried(http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    store = MemoryTokenStore(tokens_of(zalo))
    zalo.expire_token()
    before = datetime.now(timezone.utc)
    await make_client(http, zalo, store).send_text("u1", "hello")
    assert zalo.refresh_count == 1
    assert [c["access_token"] for c in zalo.calls] == ["zalo-access-0", "zalo-access-1"]
    assert zalo.texts_to("u1") == ["hello"]
    saved = await store.load()
    assert saved is not None and store.saves == 1
    assert (saved.access_token, saved.refresh_token) == ("zalo-access-1", "zalo-refresh-1")
    assert saved.expires_at is not None
    assert before + timedelta(seconds=89990) < saved.expires_at < before + timedelta(seconds=90010)
    [refresh] = zalo.refresh_calls
    assert refresh["form"] == {"refresh_token": "zalo-refresh-0", "app_id": zalo.app_id,
                               "grant_type": "refresh_token"}
    assert refresh["secret_key"] == zalo.app_secret_key


async def test_error_220_also_refreshes(http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    zalo.fail_next(1, -220)
    await make_client(http, zalo, MemoryTokenStore(tokens_of(zalo))).send_text("u1", "hello")
    assert zalo.refresh_count == 1 and zalo.texts_to("u1") == ["hello"]


async def test_token_still_rejected_after_refresh_is_retryable_without_a_second_refresh(
        http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    zalo.fail_next(2, -216)
    with pytest.raises(SendError) as error:
        await make_client(http, zalo, MemoryTokenStore(tokens_of(zalo))).send_text("u1", "hello")
    assert error.value.retryable and error.value.code == -216
    assert zalo.refresh_count == 1 and len(zalo.calls) == 2


@pytest.mark.parametrize("code", [-230, -232, -227])
async def test_unreachable_user(http: aiohttp.ClientSession, zalo: FakeZalo, code: int) -> None:
    zalo.set_unreachable("u1", code)
    with pytest.raises(SendError) as error:
        await make_client(http, zalo, MemoryTokenStore(tokens_of(zalo))).send_text("u1", "hello")
    assert (error.value.unreachable, error.value.retryable, error.value.code) == (True, False, code)
    assert zalo.refresh_attempts == 0


@pytest.mark.parametrize("failure, retryable, code", [
    (-32, True, -32),
    (500, True, 500),
    (502, True, 502),
    (429, True, 429),
    (-201, False, -201),
    (-211, False, -211),
    (-224, False, -224),
    (400, False, 400),
    ({"unexpected": "shape"}, True, 200),
    ({"error": "-32", "message": "as a string"}, True, -32),
])
async def test_send_errors_are_classified(http: aiohttp.ClientSession, zalo: FakeZalo, failure: Any,
                                          retryable: bool, code: Any) -> None:
    zalo.fail_next(1, failure)
    client = make_client(http, zalo, MemoryTokenStore(tokens_of(zalo)))
    with pytest.raises(SendError) as error:
        await client.send_text("u1", "hello")
    assert (error.value.retryable, error.value.unreachable, error.value.code) == (retryable, False, code)
    await client.send_text("u1", "hello")
    assert zalo.texts_to("u1") == ["hello"]


async def test_timeout_is_retryable(http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    zalo.fail_next(1, "timeout")
    with pytest.raises(SendError) as error:
        await make_client(http, zalo, MemoryTokenStore(tokens_of(zalo)), timeout_s=0.2).send_text("u1", "hello")
    assert error.value.retryable and error.value.code == "timeout"


async def test_connection_error_is_retryable_and_hides_the_token(http: aiohttp.ClientSession) -> None:
    fake = FakeZalo(access_token="very-secret-access")
    url = await fake.start()
    await fake.close()
    store = MemoryTokenStore(Tokens("very-secret-access", "r", None))
    with pytest.raises(SendError) as error:
        await ZaloClient(http, url, url, "app", "key", store, timeout_s=2).send_text("u1", "hello")
    assert error.value.retryable and error.value.code == "connection"
    assert "very-secret-access" not in str(error.value)


async def test_no_tokens_at_all(http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    with pytest.raises(SendError) as error:
        await make_client(http, zalo, MemoryTokenStore(None)).send_text("u1", "hello")
    assert not error.value.retryable and error.value.code == "no_token"


async def test_refused_refresh_is_not_retryable_and_keeps_the_stored_tokens(
        http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    store = MemoryTokenStore(Tokens("zalo-access-0", "zalo-refresh-already-used", None))
    zalo.expire_token()
    with pytest.raises(SendError) as error:
        await make_client(http, zalo, store).send_text("u1", "hello")
    assert not error.value.retryable
    assert error.value.code == -14019
    assert store.saves == 0
    assert "zalo-refresh-already-used" not in str(error.value)


@pytest.mark.parametrize("failure, retryable", [(500, True), ("timeout", True), (-14020, False)])
async def test_refresh_failures(http: aiohttp.ClientSession, zalo: FakeZalo, failure: Any, retryable: bool) -> None:
    store = MemoryTokenStore(tokens_of(zalo))
    zalo.expire_token()
    zalo.fail_next_refresh(1, failure)
    with pytest.raises(SendError) as error:
        await make_client(http, zalo, store, timeout_s=0.3).send_text("u1", "hello")
    assert error.value.retryable is retryable
    assert store.saves == 0 and zalo.texts_to("u1") == []


async def test_proactive_refresh_when_less_than_five_minutes_left(
        http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    store = MemoryTokenStore(tokens_of(zalo, datetime.now(timezone.utc) + timedelta(minutes=4)))
    await make_client(http, zalo, store).send_text("u1", "hello")
    assert zalo.refresh_count == 1
    assert [c["access_token"] for c in zalo.calls] == ["zalo-access-1"]


async def test_no_refresh_when_the_token_has_time_left(http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    store = MemoryTokenStore(tokens_of(zalo, datetime.now(timezone.utc) + timedelta(minutes=6)))
    await make_client(http, zalo, store).send_text("u1", "hello")
    assert zalo.refresh_attempts == 0


async def test_failed_proactive_refresh_falls_back_to_the_still_valid_token(
        http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    store = MemoryTokenStore(tokens_of(zalo, datetime.now(timezone.utc) + timedelta(minutes=2)))
    zalo.fail_next_refresh(1, 503)
    await make_client(http, zalo, store).send_text("u1", "hello")
    assert zalo.texts_to("u1") == ["hello"] and zalo.refresh_count == 0


async def test_failed_proactive_refresh_backs_off(http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    store = MemoryTokenStore(tokens_of(zalo, datetime.now(timezone.utc) + timedelta(minutes=2)))
    client = make_client(http, zalo, store)
    zalo.fail_next_refresh(1, 503)
    await client.send_text("u1", "one")
    await client.send_text("u1", "two")
    assert zalo.refresh_attempts == 1  # the second send did not wait on another failing refresh
    assert zalo.texts_to("u1") == ["one", "two"]


async def test_failed_refresh_of_an_expired_token_raises(http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    store = MemoryTokenStore(tokens_of(zalo, datetime.now(timezone.utc) - timedelta(minutes=1)))
    zalo.fail_next_refresh(1, 503)
    with pytest.raises(SendError) as error:
        await make_client(http, zalo, store).send_text("u1", "hello")
    assert error.value.retryable and zalo.calls == []


async def test_a_lost_save_after_refresh_is_reported(http: aiohttp.ClientSession, zalo: FakeZalo,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    class BrokenStore(MemoryTokenStore):
        async def save(self, tokens: Tokens) -> None:
            raise OSError("disk full")

    zalo.expire_token()
    with pytest.raises(OSError):
        await make_client(http, zalo, BrokenStore(tokens_of(zalo))).send_text("u1", "hello")
    assert any(r.levelname == "CRITICAL" for r in caplog.records)
    assert "zalo-access-1" not in caplog.text and "zalo-refresh-1" not in caplog.text


async def test_explicit_refresh(http: aiohttp.ClientSession, zalo: FakeZalo) -> None:
    store = MemoryTokenStore(tokens_of(zalo))
    assert await make_client(http, zalo, store).refresh() == "zalo-access-1"
    assert zalo.refresh_count == 1


# ---------------------------------------------------------------- the race

class UnlockedStore(MemoryTokenStore):
    """What happens without the lock: the control that shows the race tests can fail."""

    def lock(self) -> Any:
        @asynccontextmanager
        async def nothing() -> AsyncIterator[None]:
            yield
        return nothing()


async def send_concurrently(clients: list[ZaloClient], n: int) -> list[Any]:
    sends = [clients[i % len(clients)].send_text(f"user{i}", f"message {i}") for i in range(n)]
    return await asyncio.gather(*sends, return_exceptions=True)


@pytest.fixture
async def slow_zalo() -> AsyncIterator[FakeZalo]:
    async with FakeZalo(refresh_delay=0.2, timeout_delay=5) as fake:
        yield fake


async def test_without_a_lock_concurrent_refreshes_break_the_chain(http: aiohttp.ClientSession) -> None:
    async with FakeZalo(refresh_delay=1.0, timeout_delay=5) as very_slow_zalo:  # a wide window: no flakes
        store = UnlockedStore(tokens_of(very_slow_zalo))
        very_slow_zalo.expire_token()
        results = await send_concurrently([make_client(http, very_slow_zalo, store)], 5)
        assert very_slow_zalo.reused_refresh_count >= 1
        assert any(isinstance(r, SendError) for r in results)


async def test_race_memory_store_refreshes_exactly_once(http: aiohttp.ClientSession, slow_zalo: FakeZalo) -> None:
    store = MemoryTokenStore(tokens_of(slow_zalo))
    slow_zalo.expire_token()
    results = await send_concurrently([make_client(http, slow_zalo, store)], 5)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (slow_zalo.refresh_attempts, slow_zalo.refresh_count, slow_zalo.reused_refresh_count) == (1, 1, 0)
    assert sorted(t for i in range(5) for t in slow_zalo.texts_to(f"user{i}")) == [f"message {i}" for i in range(5)]
    assert store.saves == 1


async def test_race_proactive_refresh_exactly_once(http: aiohttp.ClientSession, slow_zalo: FakeZalo) -> None:
    store = MemoryTokenStore(tokens_of(slow_zalo, datetime.now(timezone.utc) + timedelta(seconds=30)))
    results = await send_concurrently([make_client(http, slow_zalo, store)], 5)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (slow_zalo.refresh_attempts, slow_zalo.reused_refresh_count) == (1, 0)


async def test_race_db_store_refreshes_exactly_once(http: aiohttp.ClientSession, slow_zalo: FakeZalo,
                                                    sessions: sessionmaker) -> None:
    store = DbTokenStore(sessions, "zalo", tokens_of(slow_zalo))
    slow_zalo.expire_token()
    results = await send_concurrently([make_client(http, slow_zalo, store)], 5)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (slow_zalo.refresh_attempts, slow_zalo.refresh_count, slow_zalo.reused_refresh_count) == (1, 1, 0)
    saved = await DbTokenStore(sessions, "zalo").load()
    assert saved is not None and (saved.access_token, saved.refresh_token) == ("zalo-access-1", "zalo-refresh-1")
    assert saved.expires_at is not None and saved.expires_at > datetime.now(timezone.utc) + timedelta(hours=24)


async def test_race_across_replicas_with_separate_engines(http: aiohttp.ClientSession, slow_zalo: FakeZalo,
                                                          db_url: str) -> None:
    """Two gateway replicas (own engine, own asyncio.Lock) share one database: only the database
    lock keeps them from refreshing twice."""
    engines = [async_engine(db_url) for _ in range(2)]
    try:
        stores = [DbTokenStore(session_factory(e), "zalo", tokens_of(slow_zalo)) for e in engines]
        await stores[0].load()  # seed the row
        slow_zalo.expire_token()
        clients = [make_client(http, slow_zalo, store) for store in stores]
        results = await send_concurrently(clients, 6)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert (slow_zalo.refresh_attempts, slow_zalo.reused_refresh_count) == (1, 0)
        loaded = [await s.load() for s in stores]
        assert [t.access_token if t else None for t in loaded] == ["zalo-access-1", "zalo-access-1"]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_race_on_postgresql(http: aiohttp.ClientSession, slow_zalo: FakeZalo, pg_url: str) -> None:
    engines = [async_engine(pg_url) for _ in range(2)]
    try:
        stores = [DbTokenStore(session_factory(e), "zalo-race-test", tokens_of(slow_zalo)) for e in engines]
        await stores[0].save(tokens_of(slow_zalo))
        slow_zalo.expire_token()
        results = await send_concurrently([make_client(http, slow_zalo, store) for store in stores], 6)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert (slow_zalo.refresh_attempts, slow_zalo.reused_refresh_count) == (1, 0)
    finally:
        for engine in engines:
            await engine.dispose()
