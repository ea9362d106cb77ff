"""Zalo Official Account: webhook signature and parsing, and the OA API client with token refresh.

Signature: `X-ZEvent-Signature: mac=<sha256_hex(app_id + raw_body + timestamp + oa_secret_key)>`,
a plain SHA-256 over a concatenation (not an HMAC). Tokens: the access token lives 25 h, the refresh
token is single-use and rotates on every refresh, so refreshes go through `TokenStore.lock()`.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp

from channels.base import Attachment, InboundMessage, Location, SendError, SendResult
from channels.messenger import (
    MAX_USER_ID,
    clean_text,
    epoch_ms,
    error_site,
    external_id,
    http_url,
    make_location,
    now_ms,
    platform_id,
    split_text,
    synth_id,
)
from channels.tokens import Tokens, TokenStore

logger = logging.getLogger(__name__)

CHANNEL = "zalo"
TEXT_LIMIT = 2000
PROACTIVE_REFRESH_S = 300  # refresh when less than 5 minutes are left
PROACTIVE_BACKOFF_S = 30  # after a failed proactive refresh, use the still-valid token this long
AUTH_ERRORS = frozenset({-216, -220})  # access token invalid / expired: refresh once, retry once
UNREACHABLE_ERRORS = frozenset({-227, -230, -232})  # inactive user, outside the 7-day window
RETRYABLE_ERRORS = frozenset({-32})  # rate limit
_ATTACHMENT_EVENTS = {
    "user_send_image": "image", "user_send_gif": "gif", "user_send_sticker": "sticker",
    "user_send_file": "file", "user_send_link": "link", "user_send_audio": "audio",
    "user_send_video": "video", "user_send_business_card": "business_card",
}


# ---------------------------------------------------------------- verification

def _oa_ids(body: dict[str, Any]) -> list[str]:
    """Ids some deployments use as the first term instead of the app id (PLATFORMS §2.4)."""
    ids = [body.get("oa_id")]
    for party in ("recipient", "sender"):
        value = body.get(party)
        if isinstance(value, dict):
            ids.append(value.get("id"))
    return [i for i in (platform_id(v) for v in ids) if i]


def verify_signature(raw: bytes, header: str | None, app_id: str, oa_secret_key: str) -> bool:
    """Check `X-ZEvent-Signature` over the raw body. The OA secret key is what authenticates; the
    first term may be our app id or the OA id. A body naming another app is rejected."""
    if not header or not oa_secret_key or not app_id:
        return False
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(body, dict):
        return False
    body_app = platform_id(body.get("app_id"))
    if "app_id" in body and body_app != app_id:
        return False
    given = header.strip()
    if given[:4].lower() == "mac=":
        given = given[4:].strip()
    given_bytes = given.lower().encode("utf-8")
    timestamp = body.get("timestamp")
    tail = raw + ("" if timestamp is None else str(timestamp)).encode("utf-8") + oa_secret_key.encode("utf-8")
    matched = None
    for first in [app_id, *_oa_ids(body)]:
        expected = hashlib.sha256(first.encode("utf-8") + tail).hexdigest().encode("ascii")
        if hmac.compare_digest(given_bytes, expected) and matched is None:
            matched = first
    if matched is not None and matched != app_id:
        logger.debug("zalo: signature matched with the OA id as first term")
    return matched is not None


# ---------------------------------------------------------------- webhook parsing

def parse_webhook(payload: Any) -> list[InboundMessage]:
    """The user event in a Zalo webhook as normalised messages ([] for anything not from a user).

    Raises ValueError only when the body is not a dict with an `event_name`."""
    if not isinstance(payload, dict) or not isinstance(payload.get("event_name"), str):
        raise ValueError("not a Zalo webhook event")
    event = payload["event_name"]
    try:
        message = _parse_event(event, payload)
    except Exception as exc:  # noqa: BLE001 - a strange event must never fail the request
        logger.warning("zalo: skipped a %s event that could not be parsed (%s)", event[:64], error_site(exc))
        return []
    return [message] if message is not None else []


def _parse_event(event: str, payload: dict[str, Any]) -> InboundMessage | None:
    if event in ("follow", "unfollow"):
        return _parse_follow(event, payload)
    if event == "user_send_text" or event == "user_send_location" or event in _ATTACHMENT_EVENTS:
        return _parse_user_message(event, payload)
    logger.debug("zalo: ignored %s event", event[:64])
    return None


def _party_id(payload: dict[str, Any], key: str) -> str | None:
    party = payload.get(key)
    return platform_id(party.get("id"), max_len=MAX_USER_ID) if isinstance(party, dict) else None


def _parse_follow(event: str, payload: dict[str, Any]) -> InboundMessage | None:
    user_id = _party_id(payload, "follower") or _party_id(payload, "sender")
    if user_id is None:
        logger.info("zalo: ignored a %s event without a follower", event)
        return None
    ts = epoch_ms(payload.get("timestamp"))
    return InboundMessage(channel=CHANNEL, user_id=user_id, external_id=synth_id(event, user_id, ts),
                          ts=ts or now_ms(), kind=event, raw=payload)


def _parse_user_message(event: str, payload: dict[str, Any]) -> InboundMessage | None:
    user_id = _party_id(payload, "sender")
    message = payload.get("message")
    if user_id is None or not isinstance(message, dict):
        logger.info("zalo: ignored a %s event without a sender or message", event)
        return None
    ts = epoch_ms(payload.get("timestamp"))
    text = clean_text(message.get("text"))
    location: Location | None = None
    attachments: tuple[Attachment, ...] = ()
    if event == "user_send_location":
        location = _location(message, text)
        if location is None:
            attachments = (Attachment(type="location", name=text),)
        text = None  # the text of a location is the place's name, now its label
    elif event in _ATTACHMENT_EVENTS:
        attachments = _attachments(message, _ATTACHMENT_EVENTS[event])
    if text is None and location is None and not attachments:
        logger.info("zalo: ignored a %s event without content", event)
        return None
    msg_id = external_id(message.get("msg_id"), "msg_id") or synth_id(event, user_id, ts, text)
    return InboundMessage(channel=CHANNEL, user_id=user_id, external_id=msg_id, ts=ts or now_ms(), text=text,
                          location=location, attachments=attachments, raw=payload)


def _location(message: dict[str, Any], label: str | None) -> Location | None:
    candidates = []
    attachments = message.get("attachments")
    for item in attachments if isinstance(attachments, list) else ():
        if isinstance(item, dict) and isinstance(item.get("payload"), dict):
            candidates.append(item["payload"].get("coordinates"))
    candidates.append(message.get("location"))
    for coordinates in candidates:
        if not isinstance(coordinates, dict):
            continue
        location = make_location(coordinates.get("latitude", coordinates.get("lat")),
                                 coordinates.get("longitude", coordinates.get("long", coordinates.get("lng"))),
                                 label)
        if location is not None:
            return location
    logger.info("zalo: location event without valid coordinates")
    return None


def _attachments(message: dict[str, Any], default_type: str) -> tuple[Attachment, ...]:
    items = message.get("attachments")
    found = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type") if isinstance(item.get("type"), str) and item.get("type") else default_type
        payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
        url = http_url(payload.get("url")) or http_url(payload.get("thumbnail"))
        name = clean_text(payload.get("name")) or clean_text(payload.get("description")) \
            or clean_text(payload.get("title"))
        found.append(Attachment(type=kind, url=url, name=name))
    return tuple(found) or (Attachment(type=default_type),)


# ---------------------------------------------------------------- OA API client

def _error_code(data: dict[str, Any] | None) -> int | None:
    if data is None:
        return None
    value = data.get("error")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _json_dict(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _expires_at(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    if seconds <= 0:
        return None
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


class ZaloClient:
    """Consultation messages (`/v3.0/oa/message/cs`) with the access token from a `TokenStore`,
    refreshed under the store's lock when it is about to expire or is rejected."""

    def __init__(self, http: aiohttp.ClientSession, api_url: str, oauth_url: str, app_id: str,
                 app_secret_key: str, tokens: TokenStore, timeout_s: float = 10) -> None:
        self._http = http
        self._send_url = f"{api_url.rstrip('/')}/v3.0/oa/message/cs"
        self._token_url = f"{oauth_url.rstrip('/')}/v4/oa/access_token"
        self._app_id = app_id
        self._app_secret_key = app_secret_key
        self._tokens = tokens
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._proactive_after = 0.0  # time.monotonic() before which no proactive refresh is tried

    async def send_text(self, user_id: str, text: str) -> SendResult:
        """Send text (split when longer than 2000). Returns the result of the last part."""
        parts = split_text(text, TEXT_LIMIT)
        if not parts:
            raise ValueError("nothing to send: empty text")
        result = SendResult(None)
        for part in parts:
            result = await self._send({"recipient": {"user_id": user_id}, "message": {"text": part}})
        return result

    async def refresh(self, stale_access_token: str | None = None) -> str:
        """Refresh the tokens under the store's lock and return the access token to use.

        With `stale_access_token` (the token that failed or is expiring), the stored tokens are
        re-read first: when another worker or replica already replaced that token, its new token
        is used and nothing is refreshed (the refresh token is single-use)."""
        async with self._tokens.lock():
            current = await self._tokens.load()
            if current is not None and stale_access_token is not None \
                    and current.access_token != stale_access_token:
                return current.access_token
            if current is None or not current.refresh_token:
                logger.error("zalo: no refresh token; an OA admin must authorise the app again")
                raise SendError("zalo: no refresh token", retryable=False, code="no_refresh_token")
            fresh = await self._exchange(current.refresh_token)
            try:
                await self._tokens.save(fresh)
            except Exception:
                # Zalo has consumed the old refresh token: losing the new one breaks the chain.
                logger.critical("zalo: refreshed tokens could not be saved; an OA admin must authorise the app again")
                raise
            logger.info("zalo: access token refreshed (expires at %s)", fresh.expires_at)
            return fresh.access_token

    async def _send(self, body: dict[str, Any]) -> SendResult:
        token = await self._access_token()
        status, data = await self._post_cs(token, body)
        if status == 401 or _error_code(data) in AUTH_ERRORS:
            logger.info("zalo: access token rejected, refreshing")
            token = await self.refresh(token)
            status, data = await self._post_cs(token, body)
        return _cs_result(status, data)

    async def _access_token(self) -> str:
        tokens = await self._tokens.load()
        if tokens is None:
            raise SendError("zalo: no access token configured", retryable=False, code="no_token")
        expired = tokens.expires_within(0)
        if not tokens.expires_within(PROACTIVE_REFRESH_S):
            return tokens.access_token
        if not expired and time.monotonic() < self._proactive_after:
            return tokens.access_token
        try:
            return await self.refresh(tokens.access_token)
        except SendError:
            if expired:
                raise
            # Do not make every send wait on the lock and a failing refresh: retry in a while.
            self._proactive_after = time.monotonic() + PROACTIVE_BACKOFF_S
            logger.warning("zalo: proactive refresh failed; using the current token while it lasts")
            return tokens.access_token

    async def _post_cs(self, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        try:
            async with self._http.post(self._send_url, json=body, headers={"access_token": token},
                                       timeout=self._timeout) as response:
                return response.status, _json_dict(await response.read())
        except (asyncio.TimeoutError, TimeoutError):
            raise SendError("zalo: OA API timed out", retryable=True, code="timeout") from None
        except aiohttp.ClientError as exc:
            raise SendError(f"zalo: connection error ({type(exc).__name__})", retryable=True,
                            code="connection") from None

    async def _exchange(self, refresh_token: str) -> Tokens:
        form = {"refresh_token": refresh_token, "app_id": self._app_id, "grant_type": "refresh_token"}
        try:
            async with self._http.post(self._token_url, data=form, headers={"secret_key": self._app_secret_key},
                                       timeout=self._timeout) as response:
                status, data = response.status, _json_dict(await response.read())
        except (asyncio.TimeoutError, TimeoutError):
            raise SendError("zalo: token refresh timed out", retryable=True, code="refresh_timeout") from None
        except aiohttp.ClientError as exc:
            raise SendError(f"zalo: token refresh connection error ({type(exc).__name__})", retryable=True,
                            code="refresh_connection") from None
        return _refreshed_tokens(status, data, refresh_token)


def _refreshed_tokens(status: int, data: dict[str, Any] | None, old_refresh: str) -> Tokens:
    access = data.get("access_token") if data else None
    if status == 200 and isinstance(access, str) and access:
        refresh = data.get("refresh_token") if data else None
        if not (isinstance(refresh, str) and refresh):
            logger.warning("zalo: refresh answered without a new refresh token; keeping the old one")
            refresh = old_refresh
        return Tokens(access_token=access, refresh_token=refresh, expires_at=_expires_at(data.get("expires_in")))
    code = _error_code(data)
    retryable = status >= 500 or status == 429 or (status == 200 and data is None)
    name = str(data.get("error_name", ""))[:100] if data else ""
    if retryable:
        logger.warning("zalo: token refresh failed (status=%s), will retry", status)
    else:
        logger.error("zalo: token refresh refused (status=%s error=%s %s); an OA admin may need to "
                     "authorise the app again", status, code, name)
    return_code = code if code is not None else status
    raise SendError(f"zalo: token refresh failed (HTTP {status}, error {code} {name})".strip(),
                    retryable=retryable, code=return_code)


def _cs_result(status: int, data: dict[str, Any] | None) -> SendResult:
    code = _error_code(data)
    if status == 200 and code == 0:
        inner = data.get("data") if data else None
        return SendResult(platform_id(inner.get("message_id")) if isinstance(inner, dict) else None)
    if status >= 500 or status == 429 or (status == 200 and code is None):
        retryable, unreachable = True, False
    else:
        unreachable = code in UNREACHABLE_ERRORS
        # A token still rejected right after a refresh: the next attempt re-reads the store.
        retryable = code in RETRYABLE_ERRORS or code in AUTH_ERRORS
    detail = str(data.get("message", ""))[:200] if data else ""
    logger.warning("zalo: send failed (status=%s error=%s retryable=%s unreachable=%s)",
                   status, code, retryable, unreachable)
    return_code = code if code is not None else status
    raise SendError(f"zalo: HTTP {status}, error {code} {detail}".strip(), retryable=retryable,
                    unreachable=unreachable, code=return_code)
