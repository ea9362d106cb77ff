"""Rasa's REST replies turned into what the gateway sends: text with quick replies, and the
handoff signal (a custom payload), which is acted on rather than sent."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

MAX_QUICK_REPLIES = 13


@dataclass(frozen=True)
class Rendered:
    text: str = ""
    payload: dict[str, Any] | None = None
    handoff: dict[str, Any] | None = None


def _quick_replies(buttons: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for b in buttons:
        title = str(b.get("title") or "").strip()
        if title:
            out.append({"title": title[:20], "payload": str(b.get("payload") or title)[:1000]})
    return out[:MAX_QUICK_REPLIES]


def render(replies: Iterable[dict[str, Any]]) -> list[Rendered]:
    """One message per turn where possible: Rasa's REST channel splits a text at blank lines into
    several replies, which would arrive as several bubbles (and several notifications); plain texts
    that follow each other are joined again. A text with quick replies ends a message."""
    out: list[Rendered] = []
    for r in replies:
        custom = r.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("handoff"), dict):
            out.append(Rendered(handoff=custom["handoff"]))
            continue
        text = str(r.get("text") or "").strip()
        if not text:
            continue  # images and unknown custom payloads have no place on these channels yet
        quick = _quick_replies(r.get("buttons") or r.get("quick_replies") or [])
        previous = out[-1] if out else None
        if previous is not None and previous.text and previous.payload is None and previous.handoff is None:
            out[-1] = Rendered(text=f"{previous.text}\n\n{text}", payload={"quick_replies": quick} if quick else None)
        else:
            out.append(Rendered(text=text, payload={"quick_replies": quick} if quick else None))
    return out
