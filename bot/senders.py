"""One sending interface over the platform clients, so the outbox does not care which app."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from channels.base import QuickReply, SendResult


@dataclass(frozen=True)
class Outgoing:
    text: str
    quick_replies: tuple[QuickReply, ...] = ()
    link: dict[str, str] | None = None  # {"title", "url"}: the share-location button
    human_agent: bool = False  # Messenger: a counselor's reply after 24 h, under the HUMAN_AGENT tag

    @classmethod
    def from_row(cls, text: str | None, payload: dict[str, Any] | None, human_agent: bool) -> "Outgoing":
        payload = payload or {}
        quick = tuple(QuickReply(q["title"], q["payload"]) for q in payload.get("quick_replies", []))
        return cls(text or "", quick, payload.get("link"), human_agent)


class Sender(Protocol):
    async def send(self, user_id: str, out: Outgoing) -> SendResult: ...


class MessengerSender:
    def __init__(self, client: Any):
        self.client = client

    async def send(self, user_id: str, out: Outgoing) -> SendResult:
        if out.link:
            return await self.client.send_link_button(user_id, out.text, out.link["title"], out.link["url"],
                                                      human_agent=out.human_agent)
        return await self.client.send_text(user_id, out.text, quick_replies=out.quick_replies,
                                           human_agent=out.human_agent)

    async def typing(self, user_id: str) -> None:
        await self.client.send_sender_action(user_id, "typing_on")


class ZaloSender:
    """Zalo's consultation messages are text: options and links are written into the text."""

    def __init__(self, client: Any):
        self.client = client

    async def send(self, user_id: str, out: Outgoing) -> SendResult:
        text = out.text
        if out.quick_replies:
            text += "\n" + "\n".join(f"• {q.title}" for q in out.quick_replies)
        if out.link:
            text += f"\n{out.link['url']}"
        return await self.client.send_text(user_id, text)
