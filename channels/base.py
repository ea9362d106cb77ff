"""Types shared by every channel: a normalised inbound message and the outcome of a send."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    label: str | None = None


@dataclass(frozen=True)
class Attachment:
    type: str  # image | audio | video | file | sticker | link | fallback | ...
    url: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    """One user event from a platform, in the gateway's terms.

    `kind` is "message" (text, quick reply, postback, location, attachments), "follow" or
    "unfollow". `external_id` is the platform's message id, the de-duplication key.
    """

    channel: str
    user_id: str
    external_id: str
    ts: int  # milliseconds since the epoch, as the platform stamped it
    text: str | None = None
    location: Location | None = None
    attachments: tuple[Attachment, ...] = ()
    kind: str = "message"
    payload: str | None = None  # a quick-reply or postback payload
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class QuickReply:
    title: str
    payload: str


@dataclass(frozen=True)
class SendResult:
    platform_message_id: str | None


class SendError(Exception):
    """A send that failed. `retryable`: try again later. `unreachable`: the platform's reply
    window is closed until the person writes again (Zalo -230/-232, Messenger outside window)."""

    def __init__(self, message: str, *, retryable: bool, unreachable: bool = False, code: Any = None):
        super().__init__(message)
        self.retryable = retryable
        self.unreachable = unreachable
        self.code = code
