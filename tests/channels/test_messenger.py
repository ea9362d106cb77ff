"""Messenger: signatures, the webhook shapes of PLATFORMS.md §1.2 and §3.8, text splitting, and
the Send API client against the fake Graph server."""
from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from channels import messenger as messenger_module
from channels.base import Attachment, Location, QuickReply, SendError
from channels.messenger import (
    MessengerClient,
    can_cut,
    epoch_ms,
    parse_webhook,
    split_text,
    truncate,
    verify_challenge,
    verify_signature,
)
from tests.fakes import (
    PAGE_ID,
    FakeGraph,
    encode,
    messenger_echo_event,
    messenger_envelope,
    messenger_location_event,
    messenger_postback_event,
    messenger_text_event,
    sign_messenger,
)

SECRET = "8d1f2c3b4a5e6f708192a3b4c5d6e7f8"
RAW = b'{"object":"page","entry":[{"id":"1234","time":1458692752478,"messaging":[]}]}'


def sha256_header(raw: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def sha1_header(raw: bytes, secret: str = SECRET) -> str:
    return "sha1=" + hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()


# ---------------------------------------------------------------- verification

def test_known_hmac_vectors() -> None:
    """Published HMAC vectors (key "key", the quick brown fox), independent of our code."""
    raw = b"The quick brown fox jumps over the lazy dog"
    sha256 = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    sha1 = "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"
    assert verify_signature("key", raw, {"X-Hub-Signature-256": f"sha256={sha256}"})
    assert verify_signature("key", raw, {"X-Hub-Signature": f"sha1={sha1}"})
    assert not verify_signature("key", raw, {"X-Hub-Signature-256": f"sha256={sha256[:-1]}0"})


@pytest.mark.parametrize("name", ["X-Hub-Signature-256", "x-hub-signature-256", "X-HUB-SIGNATURE-256"])
def test_sha256_signature_any_header_case(name: str) -> None:
    assert verify_signature(SECRET, RAW, {name: sha256_header(RAW)})
    assert verify_signature(SECRET, RAW, CIMultiDict({name: sha256_header(RAW)}))


def test_sha256_hex_case_and_prefix_case_are_accepted() -> None:
    header = sha256_header(RAW)
    assert verify_signature(SECRET, RAW, {"X-Hub-Signature-256": "SHA256=" + header[7:].upper()})


def test_sha1_is_a_fallback_only_when_sha256_is_absent() -> None:
    assert verify_signature(SECRET, RAW, {"x-hub-signature": sha1_header(RAW)})
    wrong256 = sha256_header(RAW, "other-secret")
    assert not verify_signature(SECRET, RAW, {"X-Hub-Signature-256": wrong256, "X-Hub-Signature": sha1_header(RAW)})


def test_both_headers_valid() -> None:
    assert verify_signature(SECRET, RAW, sign_messenger(RAW, SECRET))


@pytest.mark.parametrize("headers", [
    {},
    {"X-Hub-Signature-256": ""},
    {"X-Hub-Signature-256": "sha256="},
    {"X-Hub-Signature-256": sha256_header(RAW)[7:]},  # no prefix
    {"X-Hub-Signature-256": "sha1=" + sha256_header(RAW)[7:]},  # wrong prefix
    {"X-Hub-Signature-256": sha256_header(RAW, "forged-secret")},
    {"X-Hub-Signature": sha1_header(RAW, "forged-secret")},
    {"X-Hub-Signature": "sha256=" + sha256_header(RAW)[7:]},  # sha256 digest in the sha1 header
    {"X-Hub-Signature-256": "sha256=ü" + sha256_header(RAW)[8:]},  # non-ASCII garbage
    {"Signature": sha256_header(RAW)},
])
def test_bad_signatures_are_rejected(headers: dict[str, str]) -> None:
    assert not verify_signature(SECRET, RAW, headers)


def test_body_altered_by_one_byte_is_rejected() -> None:
    headers = {"X-Hub-Signature-256": sha256_header(RAW), }
    for index in (0, len(RAW) // 2, len(RAW) - 1):
        altered = RAW[:index] + bytes([RAW[index] ^ 0x01]) + RAW[index + 1:]
        assert not verify_signature(SECRET, altered, headers)
        assert not verify_signature(SECRET, altered, {"X-Hub-Signature": sha1_header(RAW)})
    assert not verify_signature(SECRET, RAW + b" ", headers)


def test_empty_secret_never_verifies() -> None:
    assert not verify_signature("", RAW, {"X-Hub-Signature-256": sha256_header(RAW, "")})


def test_signature_of_raw_bytes_not_reserialized_json() -> None:
    """Meta signs the escaped bytes it sends; re-serialising changes them."""
    raw = '{"text":"Xin ch\\u00e0o"}'.encode()
    headers = {"X-Hub-Signature-256": sha256_header(raw)}
    assert verify_signature(SECRET, raw, headers)
    reserialized = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    assert not verify_signature(SECRET, reserialized, headers)


@pytest.mark.parametrize("query, expected", [
    ({"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}, "1158201444"),
    ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, None),
    ({"hub.mode": "unsubscribe", "hub.verify_token": "tok", "hub.challenge": "1"}, None),
    ({"hub.verify_token": "tok", "hub.challenge": "1"}, None),
    ({"hub.mode": "subscribe", "hub.challenge": "1"}, None),
    ({"hub.mode": "subscribe", "hub.verify_token": "tök", "hub.challenge": "1"}, None),
    ({"hub.mode": "subscribe", "hub.verify_token": "tok"}, None),
])
def test_verify_challenge(query: dict[str, str], expected: str | None) -> None:
    assert verify_challenge(query, "tok") == expected


def test_verify_challenge_with_no_configured_token() -> None:
    assert verify_challenge({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, "") is None


# ---------------------------------------------------------------- parsing: real shapes

def page(*events: dict[str, Any], standby: bool = False) -> dict[str, Any]:
    return messenger_envelope(*events, standby=standby)


def test_text_message() -> None:
    payload = json.loads("""{"object": "page", "entry": [{"id": "1234", "time": 1458692752478, "messaging": [
      {"sender": {"id": "1254459154682919"}, "recipient": {"id": "1234"}, "timestamp": 1458692752478,
       "message": {"mid": "mid.1457764197618:41d102a3e1ae206a38", "text": "hello, world!"}}]}]}""")
    [message] = parse_webhook(payload)
    assert message.channel == "messenger"
    assert message.user_id == "1254459154682919"
    assert message.external_id == "mid.1457764197618:41d102a3e1ae206a38"
    assert message.ts == 1458692752478
    assert message.text == "hello, world!"
    assert message.payload is None and message.location is None and message.attachments == ()
    assert message.kind == "message"
    assert message.raw == payload["entry"][0]["messaging"][0]


def test_quick_reply_text_is_title_and_payload_kept() -> None:
    payload = messenger_text_event("psid", "Gọi tổng đài", "m_1", quick_reply_payload="CALL_111")
    [message] = parse_webhook(payload)
    assert (message.text, message.payload) == ("Gọi tổng đài", "CALL_111")


def test_text_is_normalised_to_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Tôi cần giúp đỡ")
    [message] = parse_webhook(messenger_text_event("psid", f"  {decomposed}\n", "m_1"))
    assert message.text == unicodedata.normalize("NFC", "Tôi cần giúp đỡ")


def test_postback_with_mid() -> None:
    [message] = parse_webhook(messenger_postback_event("psid", "Bắt đầu", "GET_STARTED", "m_pb1"))
    assert (message.text, message.payload, message.external_id) == ("Bắt đầu", "GET_STARTED", "m_pb1")


def test_postback_without_mid_gets_a_stable_synthetic_id() -> None:
    first = parse_webhook(messenger_postback_event("psid", "Start", "GET_STARTED", timestamp=1458692752478))
    again = parse_webhook(messenger_postback_event("psid", "Start", "GET_STARTED", timestamp=1458692752478))
    other_payload = parse_webhook(messenger_postback_event("psid", "Start", "HELP", timestamp=1458692752478))
    later = parse_webhook(messenger_postback_event("psid", "Start", "GET_STARTED", timestamp=1458692752479))
    other_user = parse_webhook(messenger_postback_event("psid2", "Start", "GET_STARTED", timestamp=1458692752478))
    ids = [batch[0].external_id for batch in (first, again, other_payload, later, other_user)]
    assert ids[0] == ids[1]
    assert len(set(ids)) == 4
    assert all(0 < len(i) <= 255 for i in ids)


def test_empty_postback_is_ignored() -> None:
    event = {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 1, "postback": {}}
    assert parse_webhook(page(event)) == []


@pytest.mark.parametrize("lat, lon", [(12.967736461345, 77.59405228556), ("12.967736461345", "77.59405228556")])
def test_legacy_location(lat: Any, lon: Any) -> None:
    [message] = parse_webhook(messenger_location_event("psid", lat, lon, "mid.1464759818851:db6a185bfdd1a2fa18",
                                                       title="Anik's Location"))
    assert message.location == Location(12.967736461345, 77.59405228556, "Anik's Location")
    assert message.attachments == () and message.text is None


@pytest.mark.parametrize("lat, lon", [(91, 10), (10, 181), (-90.5, 0), ("north", "east"), (None, 1),
                                      (True, False), (0, 0), ("nan", "1"), ("inf", "1")])
def test_location_with_invalid_coordinates_is_kept_as_an_attachment(lat: Any, lon: Any) -> None:
    [message] = parse_webhook(messenger_location_event("psid", lat, lon, "m_loc", title="Pinned"))
    assert message.location is None
    assert [a.type for a in message.attachments] == ["location"]
    assert message.attachments[0].name == "Pinned"


def test_location_at_the_edges_of_the_range() -> None:
    [message] = parse_webhook(messenger_location_event("psid", -90, 180, "m_edge"))
    assert message.location is not None and (message.location.lat, message.location.lon) == (-90.0, 180.0)


def test_image_and_sticker_and_fallback_attachments() -> None:
    image = {"mid": "m_img", "attachments": [{"type": "image", "payload": {"url": "https://cdn.fb/x.jpg"}}]}
    sticker = {"mid": "m_st", "sticker_id": 369239263222822,
               "attachments": [{"type": "image", "payload": {"url": "https://cdn.fb/thumb.png",
                                                             "sticker_id": 369239263222822}}]}
    fallback = {"mid": "m_fb", "attachments": [{"type": "fallback", "title": "A shared link",
                                                "url": "https://l.facebook.com/l.php?u=x", "payload": None}]}
    bare_fallback = {"mid": "m_fb2", "attachments": [{"type": "fallback"}]}
    files = {"mid": "m_files", "attachments": [{"type": "audio", "payload": {"url": "https://cdn.fb/a.mp4"}},
                                               {"type": "file", "payload": {"url": "https://cdn.fb/f.pdf"}},
                                               {"type": "video", "payload": {"url": "https://cdn.fb/v.mp4"}}]}
    events = [{"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 1518479195308, "message": m}
              for m in (image, sticker, fallback, bare_fallback, files)]
    image_msg, sticker_msg, fallback_msg, bare_msg, files_msg = parse_webhook(page(*events))
    assert image_msg.attachments == (Attachment("image", "https://cdn.fb/x.jpg"),)
    assert sticker_msg.attachments == (Attachment("sticker", "https://cdn.fb/thumb.png"),)
    assert fallback_msg.attachments == (Attachment("fallback", "https://l.facebook.com/l.php?u=x", "A shared link"),)
    assert bare_msg.attachments == (Attachment("fallback"),)
    assert [a.type for a in files_msg.attachments] == ["audio", "file", "video"]
    assert image_msg.text is None


def test_ignored_events() -> None:
    events = [
        {"sender": {"id": PAGE_ID}, "recipient": {"id": "psid"}, "timestamp": 1457764197627,
         "message": {"is_echo": True, "app_id": 1517776481860111, "metadata": "x", "mid": "m_e", "text": "hi"}},
        # an echo in a fixture whose sender is not the page: only is_echo marks it
        {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
         "message": {"is_echo": True, "mid": "m_e2", "attachments": [{"type": "image", "payload": {"url": "https://x"}}]}},
        {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID},
         "delivery": {"mids": ["mid.1458668856218:ed81099e15d3f4f233"], "watermark": 1458668856253}},
        {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 1458668856463,
         "read": {"watermark": 1458668856253}},
        {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
         "reaction": {"reaction": "love", "emoji": "❤", "action": "react", "mid": "m_r"}},
        {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
         "pass_thread_control": {"previous_owner_app_id": None, "metadata": "x"}},
        {"recipient": {"id": PAGE_ID}, "timestamp": 1, "policy_enforcement": {"action": "block", "reason": "x"}},
        {"recipient": {"id": PAGE_ID}, "timestamp": 1, "policy-enforcement": {"action": "unblock"}},
        {"recipient": {"id": PAGE_ID}, "timestamp": 1, "app_roles": {"123": ["primary_receiver"]}},
        {"recipient": {"id": PAGE_ID}, "timestamp": 1, "optin": {"ref": "x", "user_ref": "ur1"}},
        {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
         "message_edit": {"mid": "m_1", "text": "edited", "num_edit": 1}},
        {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 1, "referral": {"ref": "ad"}},
        {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 1, "message": {"mid": "m_empty"}},
        {},
    ]
    assert parse_webhook(page(*events)) == []
    assert parse_webhook(messenger_echo_event(PAGE_ID, "psid", "our reply", "m_echo")) == []


def test_message_from_the_page_without_is_echo_is_ignored() -> None:
    event = {"sender": {"id": PAGE_ID}, "recipient": {"id": "psid"}, "timestamp": 1,
             "message": {"mid": "m_page", "text": "sent from the Page inbox"}}
    assert parse_webhook(page(event)) == []


def test_a_failing_event_is_skipped_and_logged_without_its_text(monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    real = messenger_module._parse_message

    def explode_on_secret(user_id: str, ts: Any, message: dict[str, Any], event: dict[str, Any]) -> Any:
        if "giam" in message.get("text", ""):
            raise ValueError(f"bad value {message['text']}")
        return real(user_id, ts, message, event)

    monkeypatch.setattr(messenger_module, "_parse_message", explode_on_secret)
    events = [{"sender": {"id": "psid"}, "timestamp": 1, "message": {"mid": "m1", "text": "Tôi bị giam ở đây"}},
              {"sender": {"id": "psid"}, "timestamp": 2, "message": {"mid": "m2", "text": "help"}}]
    assert [m.external_id for m in parse_webhook(page(*events))] == ["m2"]
    assert "ValueError" in caplog.text and "giam" not in caplog.text


def test_entries_without_messaging_and_changes_pings() -> None:
    payload = {"object": "page", "entry": [
        {"id": PAGE_ID, "time": 1},
        {"id": "0", "time": 1, "changes": [{"field": "messages", "value": {"message": {"text": "test"}}}]},
        {"id": PAGE_ID, "time": 1, "messaging": [{}]},
        {"id": PAGE_ID, "messaging": None},
        "not an entry",
    ]}
    assert parse_webhook(payload) == []


def test_standby_events_are_parsed() -> None:
    event = {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 1458692752478,
             "message": {"mid": "m_sb", "text": "while another app owns the thread"}}
    [message] = parse_webhook(page(event, standby=True))
    assert message.external_id == "m_sb"


def test_batched_entries_and_events_in_order() -> None:
    def text_event(psid: str, mid: str) -> dict[str, Any]:
        return {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": 1458692752478,
                "message": {"mid": mid, "text": mid}}
    payload = {"object": "page", "entry": [
        {"id": PAGE_ID, "time": 1, "messaging": [text_event("a", "m1"), {"delivery": {"watermark": 1}},
                                                 text_event("b", "m2")]},
        {"id": PAGE_ID, "time": 2, "messaging": [text_event("a", "m3")],
         "standby": [text_event("c", "m4")]},
    ]}
    messages = parse_webhook(payload)
    assert [(m.user_id, m.external_id) for m in messages] == [("a", "m1"), ("b", "m2"), ("a", "m3"), ("c", "m4")]


def test_big_integer_ids_stay_exact() -> None:
    raw = ('{"object":"page","entry":[{"id":1234,"time":1,"messaging":[{"sender":{"id":10765432100123456789},'
           '"recipient":{"id":1234},"timestamp":1458692752478,"message":{"mid":"m_big","text":"x"}}]}]}')
    [message] = parse_webhook(json.loads(raw))
    assert message.user_id == "10765432100123456789"


@pytest.mark.parametrize("value, expected", [
    (1458692752478, 1458692752478),
    (1492414608999.0, 1492414608999),
    ("1458692752478", 1458692752478),
    ("1458692752", 1458692752000),
    (1458692752, 1458692752000),
    (1458692752.5, 1458692752500),
    ("1458692752.5", 1458692752500),
    (1458692752478000, 1458692752478),
    (1458692752478000000, 1458692752478),
    ("soon", None), (True, None), (None, None), (-5, None), (0, None), (float("nan"), None),
    ("1e400", None), ([1], None),
])
def test_epoch_ms(value: Any, expected: int | None) -> None:
    assert epoch_ms(value) == expected


def test_timestamp_variants_in_events() -> None:
    def event(ts: Any) -> dict[str, Any]:
        body = {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "message": {"mid": f"m{ts}", "text": "x"}}
        if ts is not None:
            body["timestamp"] = ts
        return body
    payload = {"object": "page", "entry": [{"id": PAGE_ID, "time": 1458692752999, "messaging": [
        event("1492414608"), event(1492414608999.0), event(None)]}]}
    assert [m.ts for m in parse_webhook(payload)] == [1492414608000, 1492414608999, 1458692752999]


def test_missing_timestamps_everywhere_still_parse() -> None:
    payload = {"object": "page", "entry": [{"id": PAGE_ID, "messaging": [
        {"sender": {"id": "psid"}, "message": {"mid": "m_nots", "text": "x"}}]}]}
    [message] = parse_webhook(payload)
    assert message.ts > 1_600_000_000_000


def test_user_ref_sender() -> None:
    event = {"sender": {"user_ref": "ur_abc"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
             "message": {"mid": "m_ur", "text": "hi from the plugin"}}
    [message] = parse_webhook(page(event))
    assert message.user_id == "ur_abc"


def test_message_with_reply_to_nlp_and_referral_is_a_normal_message() -> None:
    event = {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 1,
             "message": {"mid": "m_x", "text": "ok", "reply_to": {"mid": "m_prev"},
                         "nlp": {"entities": {}}, "referral": {"source": "ADS", "ref": "x"}}}
    [message] = parse_webhook(page(event))
    assert (message.text, message.external_id) == ("ok", "m_x")


def test_message_without_mid_gets_a_stable_id() -> None:
    event = {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 5, "message": {"text": "x"}}
    assert parse_webhook(page(event))[0].external_id == parse_webhook(page(event))[0].external_id


def test_overlong_mid_is_hashed_to_fit_the_database() -> None:
    event = {"sender": {"id": "psid"}, "recipient": {"id": PAGE_ID}, "timestamp": 5,
             "message": {"mid": "m_" + "x" * 400, "text": "x"}}
    [message] = parse_webhook(page(event))
    assert len(message.external_id) <= 255
    assert message.external_id == parse_webhook(page(event))[0].external_id


def test_one_strange_event_does_not_hide_the_others() -> None:
    strange = {"sender": {"id": ["list"]}, "message": {"mid": 5, "text": 7, "attachments": "no"}}
    weird_attachments = {"sender": {"id": "p"}, "timestamp": "x",
                         "message": {"mid": "m_w", "attachments": [None, 5, {"type": None, "payload": []}]}}
    good = {"sender": {"id": "psid"}, "timestamp": 1, "message": {"mid": "m_good", "text": "help"}}
    messages = parse_webhook(page(strange, weird_attachments, good))
    assert [m.external_id for m in messages] == ["m_w", "m_good"]
    assert messages[0].attachments == (Attachment("unknown"),)


@pytest.mark.parametrize("payload", [
    None, [], "page", 5, {}, {"object": "instagram", "entry": []}, {"object": "page"},
    {"object": "page", "entry": {}}, {"entry": []},
])
def test_not_a_page_webhook_raises_value_error(payload: Any) -> None:
    with pytest.raises(ValueError):
        parse_webhook(payload)


def test_signed_builder_round_trip() -> None:
    payload = messenger_text_event("psid", "Tôi bị giữ ở Móng Cái", "m_rt")
    raw = encode(payload)
    assert verify_signature("s3cret", raw, sign_messenger(raw, "s3cret"))
    assert parse_webhook(json.loads(raw))[0].text == "Tôi bị giữ ở Móng Cái"


# ---------------------------------------------------------------- fuzz

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)
EVENT_KEYS = st.sampled_from(["sender", "recipient", "timestamp", "message", "postback", "delivery", "read"])
MESSAGE_KEYS = st.sampled_from(["mid", "text", "quick_reply", "attachments", "is_echo", "sticker_id"])
ATTACHMENT = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["location", "image", "fallback", "file"]) | JSON,
    "title": JSON, "url": JSON,
    "payload": st.fixed_dictionaries({}, optional={
        "coordinates": st.fixed_dictionaries({}, optional={"lat": JSON, "long": JSON}) | JSON,
        "url": JSON, "sticker_id": JSON}) | JSON,
})
MESSAGE = st.dictionaries(MESSAGE_KEYS, JSON, max_size=5) | st.fixed_dictionaries(
    {"mid": JSON}, optional={"text": JSON, "attachments": st.lists(ATTACHMENT, max_size=3) | JSON})
EVENT = st.fixed_dictionaries({}, optional={
    "sender": st.fixed_dictionaries({}, optional={"id": JSON, "user_ref": JSON}) | JSON,
    "timestamp": JSON, "message": MESSAGE | JSON,
    "postback": st.fixed_dictionaries({}, optional={"title": JSON, "payload": JSON, "mid": JSON}) | JSON,
}) | st.dictionaries(EVENT_KEYS, JSON, max_size=4)
PAGE = st.fixed_dictionaries({"object": st.just("page") | JSON, "entry": st.lists(
    st.fixed_dictionaries({}, optional={"id": JSON, "time": JSON, "messaging": st.lists(EVENT, max_size=3) | JSON,
                                        "standby": st.lists(EVENT, max_size=2)}) | JSON, max_size=3) | JSON})


def assert_well_formed(messages: Any) -> None:
    assert isinstance(messages, list)
    for message in messages:
        assert isinstance(message.user_id, str) and 0 < len(message.user_id) <= 128
        assert isinstance(message.external_id, str) and 0 < len(message.external_id) <= 255
        assert isinstance(message.ts, int) and message.ts > 0
        assert message.text is None or (isinstance(message.text, str) and message.text)
        assert message.payload is None or isinstance(message.payload, str)
        if message.location is not None:
            assert -90 <= message.location.lat <= 90 and -180 <= message.location.lon <= 180
        assert all(isinstance(a, Attachment) and isinstance(a.type, str) for a in message.attachments)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSON, PAGE))
def test_fuzz_parse_webhook_returns_a_list_or_raises_value_error(payload: Any) -> None:
    try:
        messages = parse_webhook(payload)
    except ValueError:
        return
    assert_well_formed(messages)


# ---------------------------------------------------------------- split_text

def test_short_text_is_one_part() -> None:
    assert split_text("Xin chào") == ["Xin chào"]
    assert split_text("  \n ") == []


def test_split_prefers_paragraphs_then_sentences_then_words() -> None:
    text = "First paragraph here.\n\nSecond one. It has two sentences."
    assert split_text(text, 30) == ["First paragraph here.", "Second one.", "It has two sentences."]
    assert split_text("alpha beta gamma delta", 11) == ["alpha beta", "gamma delta"]
    assert split_text("Sentence one! Sentence two? Three…", 15) == ["Sentence one!", "Sentence two?", "Three…"]


def test_split_without_any_boundary_cuts_hard() -> None:
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_split_never_separates_combining_marks() -> None:
    text = unicodedata.normalize("NFD", "Người dân cần được bảo vệ khỏi nạn buôn bán người")
    for limit in range(3, 12):  # a Vietnamese letter is at most 3 code points in NFD
        for part in split_text(text, limit):
            assert not unicodedata.combining(part[0]), (limit, part)


@pytest.mark.parametrize("cluster", ["👨‍👩‍👧‍👦", "🇻🇳", "👍🏽", "❤️", "1️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "\r\n"])
def test_split_never_separates_emoji_sequences(cluster: str) -> None:
    text = cluster * 6
    limit = len(cluster.encode("utf-16-le")) // 2 + 1
    parts = split_text(text, limit)
    if cluster == "\r\n":
        assert parts == []
    else:
        assert parts == [cluster] * 6


def test_limit_counts_utf16_units() -> None:
    parts = split_text("😀" * 10, 4)  # each emoji is two UTF-16 units
    assert parts == ["😀😀"] * 5


def test_truncate() -> None:
    assert truncate("short", 20) == "short"
    assert truncate("A much longer button title", 20) == "A much longer…"
    assert truncate("Supercalifragilistic", 10) == "Supercali…"
    assert len(truncate("e\u0301" * 30, 9)) <= 9
    assert truncate("ae\u0301\u0301\u0301b", 3, ellipsis="") == "a"


CLUSTERS = ["a", "b", "ế", unicodedata.normalize("NFD", "ệ"), "👨‍👩‍👧", "🇻🇳", "👍🏽",
            " ", "\n", "\n\n", ".", "!", "đ", "語"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(CLUSTERS), max_size=80), st.integers(min_value=9, max_value=40))
def test_split_cuts_only_between_clusters(clusters: list[str], limit: int) -> None:
    """With every cluster shorter than the limit (the family emoji is 8 UTF-16 units), each part
    starts and ends on a cluster boundary."""
    text = "".join(clusters)
    boundaries = {0}
    offset = 0
    for cluster in clusters:
        offset += len(cluster)
        boundaries.add(offset)
    position = 0
    for part in split_text(text, limit):
        start = text.index(part, position)
        assert start in boundaries and start + len(part) in boundaries, (text, part)
        position = start + len(part)


@settings(max_examples=400, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=60))
def test_split_properties(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(part and part == part.strip() for part in parts)
    assert all(len(part) <= limit for part in parts)
    assert all(len(part.encode("utf-16-le", "surrogatepass")) // 2 <= max(limit, 2) for part in parts)

    def squash(s: str) -> str:
        return "".join(c for c in s if not c.isspace())

    assert squash("".join(parts)) == squash(text)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1), st.integers(min_value=1, max_value=2000))
def test_can_cut_edges(text: str, index: int) -> None:
    assert can_cut(text, 0) and can_cut(text, len(text))
    assert isinstance(can_cut(text, min(index, len(text))), bool)


# ---------------------------------------------------------------- Send API client

def client(http: aiohttp.ClientSession, graph: FakeGraph, **kwargs: Any) -> MessengerClient:
    return MessengerClient(http, graph.url, graph.page_access_token, **kwargs)


async def test_send_text(http: aiohttp.ClientSession, graph: FakeGraph) -> None:
    result = await client(http, graph).send_text("psid1", "Xin chào")
    [call] = graph.calls
    assert call["path"] == "/v21.0/me/messages"
    assert call["query"] == {"access_token": "test-page-token"}
    assert call["json"] == {"recipient": {"id": "psid1"}, "messaging_type": "RESPONSE",
                            "message": {"text": "Xin chào"}}
    assert result.platform_message_id and result.platform_message_id.startswith("m_fake")
    assert graph.texts_to("psid1") == ["Xin chào"]


async def test_send_text_as_human_agent(http: aiohttp.ClientSession, graph: FakeGraph) -> None:
    graph.set_outside_window("psid1")
    with pytest.raises(SendError) as error:
        await client(http, graph).send_text("psid1", "Counselor here")
    assert error.value.unreachable and not error.value.retryable
    await client(http, graph).send_text("psid1", "Counselor here", human_agent=True)
    body = graph.delivered[-1]
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    assert graph.texts_to("psid1") == ["Counselor here"]


async def test_quick_replies_go_on_the_last_part_only(http: aiohttp.ClientSession, graph: FakeGraph) -> None:
    text = ("Câu trả lời rất dài. " * 200).strip()
    replies = [QuickReply("Gặp tư vấn viên ngay bây giờ", "HANDOFF"), QuickReply("Không", "NO")]
    await client(http, graph).send_text("psid1", text, quick_replies=replies)
    messages = graph.messages_to("psid1")
    assert len(messages) == 3
    assert all("quick_replies" not in m for m in messages[:-1])
    assert messages[-1]["quick_replies"] == [
        {"content_type": "text", "title": "Gặp tư vấn viên…", "payload": "HANDOFF"},
        {"content_type": "text", "title": "Không", "payload": "NO"},
    ]
    assert all(len(m["text"]) <= 2000 for m in messages)
    assert " ".join(graph.texts_to("psid1")) == text


async def test_at_most_13_quick_replies(http: aiohttp.ClientSession, graph: FakeGraph) -> None:
    replies = [QuickReply(f"Option {i}", f"OPT_{i}") for i in range(20)]
    await client(http, graph).send_text("psid1", "Pick", quick_replies=replies)
    assert len(graph.messages_to("psid1")[0]["quick_replies"]) == 13


@pytest.mark.parametrize("reply", [QuickReply("", "X"), QuickReply("Ok", ""), QuickReply("Ok", "x" * 1001)])
async def test_invalid_quick_replies_raise(http: aiohttp.ClientSession, graph: FakeGraph, reply: QuickReply) -> None:
    with pytest.raises(ValueError):
        await client(http, graph).send_text("psid1", "Pick", quick_replies=[reply])
    assert graph.calls == []


async def test_empty_text_raises(http: aiohttp.ClientSession, graph: FakeGraph) -> None:
    with pytest.raises(ValueError):
        await client(http, graph).send_text("psid1", " \n ")


async def test_send_link_button(http: aiohttp.ClientSession, graph: FakeGraph) -> None:
    url = "https://hotline.example/loc/abc123"
    await client(http, graph).send_link_button("psid1", "Chia sẻ vị trí " * 60, "Chia sẻ vị trí của bạn", url)
    [message] = graph.messages_to("psid1")
    payload = message["attachment"]["payload"]
    assert payload["template_type"] == "button"
    assert len(payload["text"]) <= 640
    assert payload["buttons"] == [{"type": "web_url", "url": url, "title": "Chia sẻ vị trí của…"}]
    assert graph.delivered[-1]["messaging_type"] == "RESPONSE"
    with pytest.raises(ValueError):
        await client(http, graph).send_link_button("psid1", "text", "title", "javascript:alert(1)")


async def test_sender_actions(http: aiohttp.ClientSession, graph: FakeGraph) -> None:
    result = await client(http, graph).send_sender_action("psid1", "typing_on")
    assert result.platform_message_id is None
    assert graph.delivered[-1] == {"recipient": {"id": "psid1"}, "sender_action": "typing_on"}
    assert graph.actions_to("psid1") == ["typing_on"]
    with pytest.raises(ValueError):
        await client(http, graph).send_sender_action("psid1", "dance")


async def test_fake_graph_rejects_missing_messaging_type(http: aiohttp.ClientSession, graph: FakeGraph) -> None:
    """The fake answers like Graph, so a client bug would show."""
    async with http.post(f"{graph.url}/me/messages", params={"access_token": graph.page_access_token},
                         json={"recipient": {"id": "p"}, "message": {"text": "x"}}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == 100


@pytest.mark.parametrize("failure, retryable, unreachable", [
    (500, True, False),
    (503, True, False),
    (429, True, False),
    ({"code": 1}, True, False),
    ({"code": 2, "http_status": 500}, True, False),
    ({"code": 2}, True, False),
    ({"code": 4}, True, False),
    ({"code": 17}, True, False),
    ({"code": 32}, True, False),
    ({"code": 613}, True, False),
    ({"code": 10, "error_subcode": 2018278}, False, True),
    ({"code": 10, "error_subcode": 2018108}, False, True),
    ({"code": 551, "error_subcode": 1545041}, False, True),
    ({"code": 10}, False, False),
    ({"code": 190}, False, False),
    ({"code": 100}, False, False),
    (400, False, False),
    (403, False, False),
])
async def test_send_errors_are_classified(http: aiohttp.ClientSession, graph: FakeGraph, failure: Any,
                                          retryable: bool, unreachable: bool) -> None:
    graph.fail_next(1, failure)
    with pytest.raises(SendError) as error:
        await client(http, graph).send_text("psid1", "hello")
    assert (error.value.retryable, error.value.unreachable) == (retryable, unreachable)
    if isinstance(failure, dict):
        assert error.value.code == failure["code"]
    assert graph.texts_to("psid1") == []
    await client(http, graph).send_text("psid1", "hello")  # the next attempt goes through, once
    assert graph.texts_to("psid1") == ["hello"]


async def test_timeout_is_retryable(http: aiohttp.ClientSession, graph: FakeGraph) -> None:
    graph.fail_next(1, "timeout")
    with pytest.raises(SendError) as error:
        await client(http, graph, timeout_s=0.2).send_text("psid1", "hello")
    assert error.value.retryable and error.value.code == "timeout"


async def test_connection_error_is_retryable_and_never_shows_the_token(http: aiohttp.ClientSession) -> None:
    graph = FakeGraph("secret-page-token")
    url = await graph.start()
    await graph.close()  # nothing listens there any more
    with pytest.raises(SendError) as error:
        await MessengerClient(http, url, "secret-page-token", timeout_s=2).send_text("psid1", "hello")
    assert error.value.retryable and error.value.code == "connection"
    assert "secret-page-token" not in str(error.value)
    assert error.value.__cause__ is None and error.value.__suppress_context__


async def test_wrong_token_is_not_retryable(http: aiohttp.ClientSession, graph: FakeGraph) -> None:
    with pytest.raises(SendError) as error:
        await MessengerClient(http, graph.url, "stale-token").send_text("psid1", "hello")
    assert (error.value.code, error.value.retryable, error.value.unreachable) == (190, False, False)
    assert "stale-token" not in str(error.value)


async def test_unavailable_person(http: aiohttp.ClientSession, graph: FakeGraph) -> None:
    graph.set_unavailable("psid9")
    with pytest.raises(SendError) as error:
        await client(http, graph).send_text("psid9", "hello", human_agent=True)
    assert error.value.unreachable and error.value.code == 551
