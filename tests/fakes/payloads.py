"""Webhook bodies shaped like the platforms' real ones, and their signatures.

Builders return dicts; `encode()` turns one into the raw bytes a platform would POST (Meta escapes
non-ASCII, as `json.dumps` does by default). Sign the *bytes*: the gateway verifies the raw body.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

PAGE_ID = "1234567890123456"
ZALO_APP_ID = "50554360515256678"
ZALO_OA_ID = "1646843870823903717"


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode("utf-8")


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- Messenger

def messenger_envelope(*events: dict[str, Any], page_id: str = PAGE_ID, standby: bool = False) -> dict[str, Any]:
    """One entry holding the events (under `standby` when another app owns the thread)."""
    entry = {"id": page_id, "time": _now_ms(), "standby" if standby else "messaging": list(events)}
    return {"object": "page", "entry": [entry]}


def messenger_event(psid: str, body: dict[str, Any], *, page_id: str = PAGE_ID,
                    timestamp: int | None = None) -> dict[str, Any]:
    return {"sender": {"id": psid}, "recipient": {"id": page_id},
            "timestamp": timestamp if timestamp is not None else _now_ms(), **body}


def messenger_text_event(psid: str, text: str, mid: str, *, page_id: str = PAGE_ID,
                         timestamp: int | None = None, quick_reply_payload: str | None = None) -> dict[str, Any]:
    """A whole webhook body with one text message (a quick-reply tap when a payload is given)."""
    message: dict[str, Any] = {"mid": mid, "text": text}
    if quick_reply_payload is not None:
        message["quick_reply"] = {"payload": quick_reply_payload}
    event = messenger_event(psid, {"message": message}, page_id=page_id, timestamp=timestamp)
    return messenger_envelope(event, page_id=page_id)


def messenger_postback_event(psid: str, title: str, payload: str, mid: str | None = None, *,
                             page_id: str = PAGE_ID, timestamp: int | None = None) -> dict[str, Any]:
    postback: dict[str, Any] = {"title": title, "payload": payload}
    if mid is not None:
        postback["mid"] = mid
    event = messenger_event(psid, {"postback": postback}, page_id=page_id, timestamp=timestamp)
    return messenger_envelope(event, page_id=page_id)


def messenger_location_event(psid: str, lat: Any, lon: Any, mid: str, *, title: str = "Pinned Location",
                             page_id: str = PAGE_ID, timestamp: int | None = None) -> dict[str, Any]:
    """The legacy location attachment (coordinates `lat` / `long`, numbers or strings)."""
    attachment = {"title": title, "url": "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.bing.com%2Fmaps",
                  "type": "location", "payload": {"coordinates": {"lat": lat, "long": lon}}}
    event = messenger_event(psid, {"message": {"mid": mid, "seq": 219, "attachments": [attachment]}},
                            page_id=page_id, timestamp=timestamp)
    return messenger_envelope(event, page_id=page_id)


def messenger_echo_event(page_id: str, psid: str, text: str, mid: str) -> dict[str, Any]:
    event = {"sender": {"id": page_id}, "recipient": {"id": psid}, "timestamp": _now_ms(),
             "message": {"is_echo": True, "app_id": 1517776481860111, "mid": mid, "text": text}}
    return messenger_envelope(event, page_id=page_id)


def sign_messenger(raw: bytes, secret: str) -> dict[str, str]:
    """Both headers Meta sends: `X-Hub-Signature-256` and the legacy `X-Hub-Signature`."""
    key = secret.encode("utf-8")
    return {
        "X-Hub-Signature-256": "sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest(),
        "X-Hub-Signature": "sha1=" + hmac.new(key, raw, hashlib.sha1).hexdigest(),
        "Content-Type": "application/json",
    }


# ---------------------------------------------------------------- Zalo

def zalo_text_event(user_id: str, text: str, msg_id: str, *, app_id: str = ZALO_APP_ID,
                    oa_id: str = ZALO_OA_ID, timestamp: int | str | None = None) -> dict[str, Any]:
    return {"event_name": "user_send_text", "app_id": app_id, "sender": {"id": user_id},
            "recipient": {"id": oa_id}, "message": {"text": text, "msg_id": msg_id},
            "timestamp": str(timestamp if timestamp is not None else _now_ms()),
            "user_id_by_app": "3611371994410983884"}


def zalo_location_event(user_id: str, lat: Any, lon: Any, msg_id: str, *, place: str | None = None,
                        app_id: str = ZALO_APP_ID, oa_id: str = ZALO_OA_ID,
                        timestamp: int | str | None = None) -> dict[str, Any]:
    """`user_send_location` as Zalo sends it: string coordinates, the place name in `text`."""
    message: dict[str, Any] = {
        "attachments": [{"payload": {"coordinates": {"latitude": str(lat), "longitude": str(lon)}},
                         "type": "location"}],
        "msg_id": msg_id,
    }
    if place is not None:
        message["text"] = place
    return {"event_name": "user_send_location", "app_id": app_id, "sender": {"id": user_id},
            "recipient": {"id": oa_id}, "message": message,
            "timestamp": str(timestamp if timestamp is not None else _now_ms()),
            "user_id_by_app": "7300442764876318465"}


def zalo_follow_event(user_id: str, *, unfollow: bool = False, app_id: str = ZALO_APP_ID,
                      oa_id: str = ZALO_OA_ID, timestamp: int | str | None = None) -> dict[str, Any]:
    return {"oa_id": oa_id, "follower": {"id": user_id}, "user_id_by_app": "6655413641204889003",
            "event_name": "unfollow" if unfollow else "follow", "source": "zalo", "app_id": app_id,
            "timestamp": str(timestamp if timestamp is not None else _now_ms())}


def sign_zalo(raw: bytes, app_id: str, oa_secret: str) -> dict[str, str]:
    """`X-ZEvent-Signature: mac=sha256(app_id + body + timestamp + OA secret key)`."""
    timestamp = str(json.loads(raw).get("timestamp", ""))
    mac = hashlib.sha256(app_id.encode("utf-8") + raw + timestamp.encode("utf-8") + oa_secret.encode("utf-8"))
    return {"X-ZEvent-Signature": f"mac={mac.hexdigest()}", "Content-Type": "application/json"}
