"""After a crash: what was acknowledged is processed, what was half-sent is sent, nothing twice."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot import inbox
from bot.app import create_app
from bot.db.models import Conversation, Message, utcnow
from bot.db.session import async_engine, session_factory
from bot.keys import gateway_key
from tests.fakes.payloads import messenger_text_event
from tests.gateway.conftest import eventually, post_messenger


async def _seed_rows(db_url: str) -> None:
    """What a gateway that was killed would leave behind: an acknowledged message never
    processed, and a reply that was being sent when the process died."""
    engine = async_engine(db_url)
    async with session_factory(engine)() as s:
        a = Conversation(channel="messenger", user_id="crash-a", state="bot", summary={}, notices={},
                         lease_owner="dead-worker", lease_until=utcnow() - timedelta(seconds=1))
        b = Conversation(channel="messenger", user_id="crash-b", state="bot", summary={}, notices={},
                         last_user_at=utcnow())
        s.add_all([a, b])
        await s.flush()
        s.add(Message(conversation_id=a.id, direction="in", author="user", channel="messenger",
                      external_id="m-crash-a", text="xin chao", status="pending", attempts=0, payload={"kind": "message"}))
        s.add(Message(conversation_id=b.id, direction="out", author="bot", channel="messenger", text="half sent",
                      status="sending", attempts=0, lease_until=utcnow() - timedelta(seconds=1)))
        await s.commit()
    await engine.dispose()


async def test_pending_rows_are_processed_on_start(aiohttp_client, settings, db_url, fakes):
    await _seed_rows(db_url)
    client = await aiohttp_client(create_app(settings))
    assert await eventually(lambda: fakes.graph.texts_to("crash-a")) == ["[vi] bot: xin chao"]
    assert await eventually(lambda: fakes.graph.texts_to("crash-b")) == ["half sent"]
    # a redelivery of the processed message after the restart is still a no-op
    await post_messenger(client, messenger_text_event("crash-a", "xin chao", "m-crash-a"))
    await eventually(lambda: not client.app[gateway_key].inbox_event.is_set() or True)
    assert len(fakes.rasa.received) == 1


async def test_a_message_that_cannot_be_processed_reaches_a_person(gateway, fakes, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(inbox, "handle", broken)
    await post_messenger(gateway, messenger_text_event("poison", "xin chao", "m-poison"))

    async def queued():
        async with gateway.gw.sessions() as s:
            return await s.scalar(select(Conversation).where(Conversation.user_id == "poison",
                                                             Conversation.state == "queued"))

    conv = await eventually(queued, timeout=5)
    assert conv.reason == "could not be processed automatically"
    async with gateway.gw.sessions() as s:
        msg = await s.scalar(select(Message).where(Message.external_id == "m-poison"))
    assert msg.attempts == inbox.PROCESSING_ATTEMPTS and msg.status == "done"
