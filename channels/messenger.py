"""Facebook Messenger: webhook verification and parsing, text splitting, and a Send API client.

Parsing and verification are pure functions over the raw request (no I/O). The client talks to the
Graph API with the gateway's shared `aiohttp.ClientSession`. `pymessenger` / `fbmessenger` are not
used (see the project's platform notes: unmaintained, blocking, no `messaging_type`).

A few helpers here are shared with `channels.zalo` (`split_text`, `epoch_ms`, `platform_id`,
`make_location`, `clean_text`, `synth_id`, ...) so that both platforms normalise the same way.
Logs name event types and error codes, never message text or tokens.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import re
import time
import traceback
import unicodedata
from typing import Any, Iterator, Mapping, Sequence

import aiohttp

from channels.base import Attachment, InboundMessage, Location, QuickReply, SendError, SendResult

logger = logging.getLogger(__name__)

CHANNEL = "messenger"
TEXT_LIMIT = 2000
BUTTON_TEXT_LIMIT = 640
BUTTON_TITLE_LIMIT = 20
QUICK_REPLY_MAX = 13
QUICK_REPLY_TITLE_LIMIT = 20
QUICK_REPLY_PAYLOAD_LIMIT = 1000
SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen"})
MAX_EXTERNAL_ID = 255  # chat_message.external_id
MAX_USER_ID = 128  # chat_conversation.user_id
MAX_LABEL = 255  # chat_location.label

# Graph error codes (developers.facebook.com/docs/messenger-platform/error-codes).
RETRYABLE_CODES = frozenset({1, 2, 4, 17, 32, 613, 1200})
UNREACHABLE_CODES = frozenset({551})
UNREACHABLE_SUBCODES = frozenset({2018278, 2018108})
# Keys of a messaging event that say what it is, for the log line of an ignored event.
_EVENT_KEYS = (
    "message", "postback", "delivery", "read", "reaction", "optin", "referral", "account_linking",
    "policy_enforcement", "policy-enforcement", "pass_thread_control", "take_thread_control",
    "request_thread_control", "app_roles", "message_edit", "game_play", "standby",
)


# ---------------------------------------------------------------- verification

def verify_challenge(query: Mapping[str, str], verify_token: str) -> str | None:
    """The `hub.challenge` to echo back when Meta's subscription handshake is genuine, else None."""
    if not verify_token or query.get("hub.mode") != "subscribe":
        return None
    given = query.get("hub.verify_token") or ""
    if not hmac.compare_digest(given.encode("utf-8"), verify_token.encode("utf-8")):
        return None
    return query.get("hub.challenge")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header look-up over any mapping (a plain dict or aiohttp's CIMultiDict)."""
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value
    return None


def _signature_matches(header: str, prefix: str, digest: str) -> bool:
    value = header.strip()
    if value[: len(prefix)].lower() != prefix:
        return False
    given = value[len(prefix):].strip().lower().encode("utf-8")
    return hmac.compare_digest(given, digest.encode("ascii"))


def verify_signature(app_secret: str, raw: bytes, headers: Mapping[str, str]) -> bool:
    """Check Meta's HMAC of the raw body: `X-Hub-Signature-256: sha256=<hex>`, or, only when that
    header is absent, the legacy `X-Hub-Signature: sha1=<hex>`. Constant-time compare."""
    if not app_secret:
        return False
    key = app_secret.encode("utf-8")
    sig256 = _header(headers, "X-Hub-Signature-256")
    if sig256 is not None:
        return _signature_matches(sig256, "sha256=", hmac.new(key, raw, hashlib.sha256).hexdigest())
    sig1 = _header(headers, "X-Hub-Signature")
    if sig1 is not None:
        return _signature_matches(sig1, "sha1=", hmac.new(key, raw, hashlib.sha1).hexdigest())
    return False


# ---------------------------------------------------------------- normalisation (shared with Zalo)

def platform_id(value: Any, *, max_len: int = MAX_EXTERNAL_ID) -> str | None:
    """An id as a string: ints (even > 2^53, exact from JSON) or non-empty strings; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    if not text or len(text) > max_len or "\x00" in text:
        return None
    return text


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if "," in text and "." not in text:
            text = text.replace(",", ".")  # a decimal comma (vi-VN locale)
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def epoch_ms(value: Any) -> int | None:
    """A platform timestamp (int, float or numeric string; seconds, ms, µs or ns) in ms, or None."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())  # exact, whatever its size
    number: int | float | None = value if isinstance(value, int) and not isinstance(value, bool) \
        else _number(value)
    if number is None or number <= 0:
        return None
    if number < 100_000_000_000:  # before 1973 in ms: these are seconds
        number *= 1000
    elif number >= 100_000_000_000_000_000:  # nanoseconds
        number /= 1_000_000
    elif number >= 100_000_000_000_000:  # microseconds
        number /= 1000
    return int(number) if number < 100_000_000_000_000 else None


def now_ms() -> int:
    return int(time.time() * 1000)


def clean_text(value: Any, *, max_len: int | None = None) -> str | None:
    """User text in NFC without NULs and surrounding whitespace; None when empty or not a string."""
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFC", value.replace("\x00", "")).strip()
    if max_len is not None:
        text = truncate(text, max_len, ellipsis="")
    return text or None


def make_location(lat: Any, lon: Any, label: Any = None) -> Location | None:
    """A validated location (numbers or numeric strings in range; not the (0, 0) of a broken
    client), or None."""
    lat_n, lon_n = _number(lat), _number(lon)
    if lat_n is None or lon_n is None:
        return None
    if not (-90.0 <= lat_n <= 90.0 and -180.0 <= lon_n <= 180.0) or (lat_n == 0.0 and lon_n == 0.0):
        return None
    return Location(lat=lat_n, lon=lon_n, label=clean_text(label, max_len=MAX_LABEL))


def synth_id(prefix: str, *parts: Any) -> str:
    """A stable external id for an event that carries none (same input -> same id)."""
    digest = hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode("utf-8"))
    return f"{prefix}:{digest.hexdigest()[:40]}"


def external_id(value: Any, prefix: str) -> str | None:
    """The platform's message id; one too long for the database is replaced by its stable hash."""
    if isinstance(value, str) and len(value.strip()) > MAX_EXTERNAL_ID:
        return synth_id(prefix, value.strip())
    return platform_id(value)


def error_site(exc: BaseException) -> str:
    """Where an exception happened, without its message (which could quote a user's text)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def http_url(value: Any) -> str | None:
    """A URL only when it is one (the Zalo test tool sends placeholders such as "link")."""
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value
    return None


# ---------------------------------------------------------------- webhook parsing

def parse_webhook(payload: Any) -> list[InboundMessage]:
    """Every user message of a (possibly batched) webhook POST, in order.

    Raises ValueError only when the body is not a page webhook (`object == "page"` with an `entry`
    list). Everything else that is not a user's message or postback (echoes, deliveries, reads,
    reactions, handover, policy, opt-ins without a sender, `changes` pings, empty events) is skipped.
    """
    if not isinstance(payload, dict) or payload.get("object") != "page":
        raise ValueError("not a Messenger page webhook")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise ValueError("Messenger webhook without an entry list")
    messages: list[InboundMessage] = []
    for entry, event in _events(entries):
        try:
            message = _parse_event(entry, event)
        except Exception as exc:  # noqa: BLE001 - a strange event must never fail the batch
            logger.warning("messenger: skipped a %s event that could not be parsed (%s)", _event_kind(event),
                           error_site(exc))
            continue
        if message is not None:
            messages.append(message)
    return messages


def _events(entries: list[Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for key in ("messaging", "standby"):
            events = entry.get(key)
            if not isinstance(events, list):
                continue
            for event in events:
                if isinstance(event, dict):
                    yield entry, event
        if "changes" in entry and "messaging" not in entry:
            logger.debug("messenger: ignored a 'changes' entry (dashboard test ping)")


def _event_kind(event: dict[str, Any]) -> str:
    for key in _EVENT_KEYS:
        if key in event:
            return key
    return "unknown" if event else "empty"


def _parse_event(entry: dict[str, Any], event: dict[str, Any]) -> InboundMessage | None:
    sender = event.get("sender")
    user_id = None
    if isinstance(sender, dict):
        user_id = platform_id(sender.get("id"), max_len=MAX_USER_ID) or platform_id(
            sender.get("user_ref"), max_len=MAX_USER_ID)
    message, postback = event.get("message"), event.get("postback")
    if user_id is None or not (isinstance(message, dict) or isinstance(postback, dict)):
        logger.debug("messenger: ignored %s event", _event_kind(event))
        return None
    if user_id == platform_id(entry.get("id")):
        logger.debug("messenger: ignored an event sent by the page itself")
        return None
    ts = epoch_ms(event.get("timestamp")) or epoch_ms(entry.get("time"))
    if isinstance(message, dict):
        return _parse_message(user_id, ts, message, event)
    return _parse_postback(user_id, ts, postback, event)


def _parse_message(user_id: str, ts: int | None, message: dict[str, Any],
                   event: dict[str, Any]) -> InboundMessage | None:
    if message.get("is_echo"):
        logger.debug("messenger: ignored an echo")
        return None
    text = clean_text(message.get("text"))
    quick_reply = message.get("quick_reply")
    payload = quick_reply.get("payload") if isinstance(quick_reply, dict) else None
    payload = payload if isinstance(payload, str) and payload else None
    location, attachments = _attachments(message)
    if text is None and payload is None and location is None and not attachments:
        logger.info("messenger: ignored a message without content")
        return None
    mid = external_id(message.get("mid"), "mid") or synth_id(
        "msg", user_id, ts, text, payload, len(attachments))
    return InboundMessage(channel=CHANNEL, user_id=user_id, external_id=mid, ts=ts or now_ms(), text=text,
                          location=location, attachments=tuple(attachments), payload=payload, raw=event)


def _parse_postback(user_id: str, ts: int | None, postback: dict[str, Any],
                    event: dict[str, Any]) -> InboundMessage | None:
    title = clean_text(postback.get("title"))
    payload = postback.get("payload")
    payload = payload if isinstance(payload, str) and payload else None
    if title is None and payload is None:
        logger.info("messenger: ignored an empty postback")
        return None
    mid = external_id(postback.get("mid"), "mid") or synth_id("postback", user_id, ts, payload, title)
    return InboundMessage(channel=CHANNEL, user_id=user_id, external_id=mid, ts=ts or now_ms(), text=title,
                          payload=payload, raw=event)


def _attachments(message: dict[str, Any]) -> tuple[Location | None, list[Attachment]]:
    items = message.get("attachments")
    location: Location | None = None
    found: list[Attachment] = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type") if isinstance(item.get("type"), str) and item.get("type") else "unknown"
        payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
        if kind == "location" and location is None:
            location = _legacy_location(item, payload)
            if location is not None:
                continue
        if kind == "image" and ("sticker_id" in payload or "sticker_id" in message):
            kind = "sticker"
        url = http_url(payload.get("url")) or http_url(item.get("url"))
        name = clean_text(item.get("title")) or clean_text(payload.get("title"))
        found.append(Attachment(type=kind, url=url, name=name))
    return location, found


def _legacy_location(item: dict[str, Any], payload: dict[str, Any]) -> Location | None:
    coordinates = payload.get("coordinates")
    if not isinstance(coordinates, dict):
        return None
    lat = coordinates.get("lat", coordinates.get("latitude"))
    lon = coordinates.get("long", coordinates.get("lng", coordinates.get("longitude")))
    location = make_location(lat, lon, item.get("title"))
    if location is None:
        logger.info("messenger: location attachment with invalid coordinates")
    return location


# ---------------------------------------------------------------- text splitting

_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile(r"[.!?…。！？]+[\"'”’»)\]]*(?=\s)")
_SPACE = re.compile(r"\s")
_ZWJ = "\u200d"


def _extends(ch: str) -> bool:
    """Characters that belong to the preceding one: never cut right before them."""
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or ch == _ZWJ
        or 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF  # variation selectors
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # emoji tag sequences (subdivision flags)
        or 0x1160 <= cp <= 0x11FF  # conjoining Hangul vowels and trailing consonants
        or 0xDC00 <= cp <= 0xDFFF  # a low surrogate (only in strings built with surrogatepass)
    )


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def can_cut(text: str, i: int) -> bool:
    """True when cutting between text[i-1] and text[i] splits no user-perceived character."""
    if i <= 0 or i >= len(text):
        return True
    prev, cur = text[i - 1], text[i]
    if _extends(cur) or prev == _ZWJ or (prev == "\r" and cur == "\n"):
        return False
    if _is_regional(prev) and _is_regional(cur):
        run = 0
        while i - 1 - run >= 0 and _is_regional(text[i - 1 - run]):
            run += 1
        return run % 2 == 0  # never split a flag (a pair of regional indicators)
    return True


def _window_end(text: str, start: int, limit: int) -> int:
    units, end = 0, start
    while end < len(text):
        units += 2 if ord(text[end]) > 0xFFFF else 1
        if units > limit:
            break
        end += 1
    return max(end, start + 1)  # one code point always fits: progress even with a tiny limit


def _best_cut(text: str, start: int, end: int) -> int:
    window = text[start:end]
    for pattern in (_PARAGRAPH, _LINE, _SENTENCE, _SPACE):
        cuts = [start + (m.end() if pattern is _SENTENCE else m.start()) for m in pattern.finditer(window)]
        cuts = [c for c in cuts if start < c <= end and can_cut(text, c)]
        if cuts:
            return cuts[-1]
    for cut in range(end, start, -1):
        if can_cut(text, cut):
            return cut
    return end  # one cluster longer than the limit: cut it at a code point, there is no better place


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split text into parts of at most `limit` UTF-16 code units (so also at most `limit` code
    points), preferring paragraph, then line, then sentence, then word boundaries, and never
    cutting a combining sequence, emoji sequence or flag. Parts are stripped; empty ones dropped."""
    if limit < 1:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    start = 0
    while True:
        while start < len(text) and text[start].isspace() and can_cut(text, start + 1):
            start += 1
        if start >= len(text):
            return parts
        end = _window_end(text, start, limit)
        cut = len(text) if end >= len(text) else _best_cut(text, start, end)
        part = text[start:cut].strip()
        if part:
            parts.append(part)
        start = cut


def truncate(text: str, limit: int, *, ellipsis: str = "…") -> str:
    """At most `limit` code points, cut after a word (or at least at a character boundary), with
    an ellipsis when cut."""
    if len(text) <= limit:
        return text
    room = max(limit - len(ellipsis), 0)
    spaces = [i for i in range(room, room // 2, -1) if text[i].isspace()]
    cut = spaces[0] if spaces else room  # prefer ending at a word when one ends in the second half
    while cut > 0 and not can_cut(text, cut):
        cut -= 1
    return (text[:cut].rstrip() + ellipsis)[:limit]


# ---------------------------------------------------------------- Send API client

class MessengerClient:
    """Send API client over the gateway's shared aiohttp session. Every failure is a `SendError`
    telling the outbox whether to retry and whether the person is out of reach."""

    def __init__(self, http: aiohttp.ClientSession, graph_url: str, page_access_token: str,
                 timeout_s: float = 10) -> None:
        self._http = http
        self._url = f"{graph_url.rstrip('/')}/me/messages"
        self._token = page_access_token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send_text(self, psid: str, text: str, *, quick_replies: Sequence[QuickReply] = (),
                        human_agent: bool = False) -> SendResult:
        """Send text (split when longer than 2000); quick replies go on the last part. Returns the
        result of the last part."""
        parts = split_text(text, TEXT_LIMIT)
        if not parts:
            raise ValueError("nothing to send: empty text")
        replies = _quick_replies(quick_replies)
        result = SendResult(None)
        for index, part in enumerate(parts):
            message: dict[str, Any] = {"text": part}
            if replies and index == len(parts) - 1:
                message["quick_replies"] = replies
            result = await self._post(_envelope(psid, message, human_agent))
        return result

    async def send_link_button(self, psid: str, text: str, title: str, url: str, *,
                               human_agent: bool = False) -> SendResult:
        """A button template with one web_url button (e.g. the share-location link)."""
        body = clean_text(text)
        if body is None or not title.strip():
            raise ValueError("a link button needs text and a title")
        if http_url(url) is None:
            raise ValueError("a link button needs an http(s) URL")
        button = {"type": "web_url", "url": url, "title": truncate(title.strip(), BUTTON_TITLE_LIMIT)}
        payload = {"template_type": "button", "text": truncate(body, BUTTON_TEXT_LIMIT), "buttons": [button]}
        message = {"attachment": {"type": "template", "payload": payload}}
        return await self._post(_envelope(psid, message, human_agent))

    async def send_sender_action(self, psid: str, action: str) -> SendResult:
        if action not in SENDER_ACTIONS:
            raise ValueError(f"unknown sender action {action!r}")
        return await self._post({"recipient": {"id": psid}, "sender_action": action})

    async def _post(self, body: dict[str, Any]) -> SendResult:
        try:
            async with self._http.post(self._url, params={"access_token": self._token}, json=body,
                                       timeout=self._timeout) as response:
                status = response.status
                data = _json_or_none(await response.read())
        except (asyncio.TimeoutError, TimeoutError):
            raise SendError("messenger: Graph API timed out", retryable=True, code="timeout") from None
        except aiohttp.ClientError as exc:
            # The exception text may carry the request URL, which holds the page token: keep only its type.
            raise SendError(f"messenger: connection error ({type(exc).__name__})", retryable=True,
                            code="connection") from None
        return _result(status, data)


def _envelope(psid: str, message: dict[str, Any], human_agent: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"recipient": {"id": psid}, "message": message}
    if human_agent:
        body.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
    else:
        body["messaging_type"] = "RESPONSE"
    return body


def _quick_replies(replies: Sequence[QuickReply]) -> list[dict[str, str]]:
    if len(replies) > QUICK_REPLY_MAX:
        logger.warning("messenger: %d quick replies, sending the first %d", len(replies), QUICK_REPLY_MAX)
    built = []
    for reply in list(replies)[:QUICK_REPLY_MAX]:
        title = reply.title.strip()
        if not title or not reply.payload or len(reply.payload) > QUICK_REPLY_PAYLOAD_LIMIT:
            raise ValueError("a quick reply needs a title and a payload of at most 1000 characters")
        built.append({"content_type": "text", "title": truncate(title, QUICK_REPLY_TITLE_LIMIT),
                      "payload": reply.payload})
    return built


def _json_or_none(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _result(status: int, data: dict[str, Any] | None) -> SendResult:
    error = data.get("error") if data is not None else None
    if status == 200 and data is not None and not error:
        return SendResult(platform_id(data.get("message_id")))
    if status == 200 and data is None:
        # Unreadable answer: the message may or may not be out; the outbox's bounded retries decide.
        logger.warning("messenger: unreadable answer from the Graph API")
        raise SendError("messenger: unreadable answer", retryable=True, code="bad_response")
    raise _send_error(status, error if isinstance(error, dict) else None)


def _send_error(status: int, error: dict[str, Any] | None) -> SendError:
    code = error.get("code") if error else None
    subcode = error.get("error_subcode") if error else None
    detail = str(error.get("message", ""))[:200] if error else ""
    unreachable = code in UNREACHABLE_CODES or subcode in UNREACHABLE_SUBCODES
    retryable = not unreachable and (status >= 500 or status == 429 or code in RETRYABLE_CODES)
    logger.warning("messenger: send failed (status=%s code=%s subcode=%s retryable=%s unreachable=%s)",
                   status, code, subcode, retryable, unreachable)
    return SendError(f"messenger: HTTP {status}, code {code}, subcode {subcode} {detail}".strip(),
                     retryable=retryable, unreachable=unreachable, code=code if code is not None else status)
