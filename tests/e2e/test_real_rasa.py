"""End to end with real processes: the gateway (`python -m bot`), a Rasa server on the trained
model and the action server, with fake Graph and Zalo APIs and a fresh SQLite database.

Signed webhooks go in; what reaches the fake Send APIs, the database and the console API comes
out. The processes start once for the module (about 30 s, most of it Rasa loading the model); the
last test stops Rasa with `kill -9` and starts it again.
"""
from __future__ import annotations

import time
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pytest

from bot.safety import SafetyScreen, load_phrases
from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import messenger_location_event, messenger_text_event, zalo_location_event, zalo_text_event
from tests.fakes.zalo import FakeZalo
from tests.support.hotline import (
    ConsoleClient,
    DbView,
    ConversationView,
    add_user,
    fake_platform_env,
    first_line,
    gateway_env,
    migrate,
    post,
    seed_answer,
    signed_messenger,
    signed_zalo,
    sqlite_url,
)
from tests.support.loop import BackgroundLoop
from tests.support.processes import PROJECT_ROOT, ManagedProcess, Stack, ensure_model

pytestmark = pytest.mark.slow
T = TypeVar("T")

# Risk wording the safety screen's phrase list does not contain: only the NLU model can catch it.
MODEL_ONLY_RISK = "tôi bị giam trong một tòa nhà ở campuchia"
SCREEN_RISK = "cuu em voi em bi nhot o karaoke khong cho ve"


@dataclass
class World:
    loop: BackgroundLoop
    graph: FakeGraph
    zalo: FakeZalo
    stack: Stack
    db: DbView
    database_url: str

    @property
    def gateway(self) -> ManagedProcess:
        return self.stack["gateway"]

    @property
    def rasa(self) -> ManagedProcess:
        return self.stack["rasa"]

    def messenger(self, payload: dict[str, Any]) -> int:
        raw, headers = signed_messenger(payload)
        return post(self.gateway.url + "/webhooks/messenger", raw, headers)[0]

    def zalo_post(self, payload: dict[str, Any]) -> int:
        raw, headers = signed_zalo(payload)
        return post(self.gateway.url + "/webhooks/zalo", raw, headers)[0]

    def graph_texts(self, psid: str) -> list[str]:
        return self.loop.call(self.graph.texts_to, psid)

    def zalo_texts(self, user_id: str) -> list[str]:
        return self.loop.call(self.zalo.texts_to, user_id)

    def conversation(self, channel: str, user_id: str) -> ConversationView | None:
        return self.db.conversation(channel, user_id)


async def _started(server: T) -> T:
    await server.start()  # type: ignore[attr-defined]
    return server


def eventually(check: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """Poll until check() is truthy; returns its value, fails with the last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"not met within {timeout} s (last value: {value!r})"
            return value
        time.sleep(interval)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def has_vietnamese_marks(text: str) -> bool:
    return "đ" in text.lower() or any(unicodedata.category(c) == "Mn" for c in unicodedata.normalize("NFD", text))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    model = ensure_model()
    database_url = sqlite_url(Path(tmp_path_factory.mktemp("e2e")) / "hotline.db")
    migrate(database_url)
    add_user(database_url, "e2e-counselor", "counselor")
    loop = BackgroundLoop("e2e-fakes").start()
    graph = loop.run(_started(FakeGraph(timeout_delay=3)))
    zalo = loop.run(_started(FakeZalo(timeout_delay=3)))
    stack = Stack("e2e", base_env={"DATABASE_URL": database_url})
    db = DbView(database_url)
    try:
        actions = stack.add_action_server()
        rasa = stack.add_rasa(actions=actions, model=model)
        stack.add_gateway(env=gateway_env(database_url=database_url, rasa_url=rasa.url,
                                          **fake_platform_env(graph, zalo)))
        stack.start_all()
        yield World(loop, graph, zalo, stack, db, database_url)
    finally:
        stack.stop_all()
        db.close()
        loop.run(graph.close())
        loop.run(zalo.close())
        loop.stop()


def test_vietnamese_without_diacritics_gets_the_hours(world: World) -> None:
    psid = uid("vi-hours")
    assert world.messenger(messenger_text_event(psid, "tong dai 111 lam viec may gio", uid("mid"))) == 200
    texts = eventually(lambda: world.graph_texts(psid), 20)
    assert len(texts) == 1, texts  # one bubble: Rasa's split paragraphs are joined again
    assert "24" in texts[0]
    assert first_line(seed_answer("utter_faq_hours", "vi")) in texts[0]
    conv = world.conversation("messenger", psid)
    assert conv is not None and conv.state == "bot" and conv.language == "vi"
    assert [m["status"] for m in conv.inbound] == ["done"]
    assert [m["status"] for m in conv.outbound] == ["sent"]


def test_english_question_gets_an_english_answer(world: World) -> None:
    psid = uid("en-cost")
    assert world.messenger(messenger_text_event(psid, "How much does it cost to call 111?", uid("mid"))) == 200
    texts = eventually(lambda: world.graph_texts(psid), 20)
    assert first_line(seed_answer("utter_faq_cost", "en")) in texts[0]
    assert "free" in texts[0].lower()
    assert not has_vietnamese_marks(texts[0]), texts[0]
    conv = world.conversation("messenger", psid)
    assert conv is not None and conv.language == "en" and conv.state == "bot"


def test_messenger_legacy_location_is_stored_queued_and_acknowledged(world: World) -> None:
    psid = uid("ms-loc")
    assert world.messenger(messenger_location_event(psid, 21.0285, 105.8542, uid("mid"))) == 200
    conv = eventually(lambda: (c := world.conversation("messenger", psid)) and c.locations and c.state == "queued"
                      and c, 10)
    assert conv.locations[0]["source"] == "messenger"
    assert (round(conv.locations[0]["lat"], 4), round(conv.locations[0]["lon"], 4)) == (21.0285, 105.8542)
    assert conv.priority == "at_risk" and conv.reason == "shared a location"
    texts = eventually(lambda: world.graph_texts(psid), 10)
    assert first_line(seed_answer("utter_location_received", "vi")) in texts[0]


def test_zalo_location_is_stored_queued_and_acknowledged(world: World) -> None:
    user = uid("zl-loc")
    payload = zalo_location_event(user, "10.3759", "105.4185", uid("zmsg"), place="Long Xuyên, An Giang")
    assert world.zalo_post(payload) == 200
    conv = eventually(lambda: (c := world.conversation("zalo", user)) and c.locations and c.state == "queued"
                      and c, 10)
    assert conv.locations[0]["source"] == "zalo"
    assert (round(conv.locations[0]["lat"], 4), round(conv.locations[0]["lon"], 4)) == (10.3759, 105.4185)
    assert conv.priority == "at_risk"
    texts = eventually(lambda: world.zalo_texts(user), 10)
    assert first_line(seed_answer("utter_location_received", "vi")) in texts[0]


def test_risk_phrase_gets_safety_advice_and_is_queued_as_emergency(world: World) -> None:
    psid = uid("risk-screen")
    assert world.messenger(messenger_text_event(psid, SCREEN_RISK, uid("mid"))) == 200
    texts = eventually(lambda: world.graph_texts(psid), 10)
    assert first_line(seed_answer("utter_risk_emergency", "vi")) in texts[0]
    assert any("113" in t for t in texts), texts  # the safety advice names the police number
    conv = eventually(lambda: (c := world.conversation("messenger", psid)) and c.state == "queued" and c, 5)
    assert conv.priority == "emergency"
    console = ConsoleClient(world.gateway.url)
    console.login("e2e-counselor")
    status, body = console.call("GET", "/api/queue")
    assert status == 200
    item = next(i for i in body["conversations"] if i["id"] == conv.id)
    assert (item["channel"], item["user_id"], item["priority"], item["state"]) == \
        ("messenger", psid, "emergency", "queued")
    assert body["conversations"][0]["priority"] == "emergency"  # the most urgent first


def test_risk_only_the_model_understands_is_queued(world: World) -> None:
    screen = SafetyScreen(load_phrases(PROJECT_ROOT / "content" / "safety_phrases.yml"))
    assert not screen.check(MODEL_ONLY_RISK).escalate, "pick wording the phrase list does not catch"
    user = uid("risk-model")
    assert world.zalo_post(zalo_text_event(user, MODEL_ONLY_RISK, uid("zmsg"))) == 200
    conv = eventually(lambda: (c := world.conversation("zalo", user)) and c.state == "queued" and c, 20)
    assert conv.priority == "emergency", (conv.priority, conv.reason)
    texts = eventually(lambda: world.zalo_texts(user), 10)
    assert first_line(seed_answer("utter_risk_emergency", "vi")) in texts[0]


def test_rasa_down_risk_still_queued_ordinary_message_answered_after_restart(world: World) -> None:
    world.rasa.kill()  # kill -9: connections refused from now on
    risk_user, plain_user = uid("down-risk"), uid("down-plain")
    sent = time.monotonic()
    assert world.messenger(messenger_text_event(risk_user, "cứu em với, họ nhốt em lại không cho về", uid("mid"))) == 200
    conv = eventually(lambda: (c := world.conversation("messenger", risk_user)) and c.state == "queued" and c, 1.0,
                      interval=0.02)
    assert time.monotonic() - sent < 1.0 and conv.priority == "emergency"
    eventually(lambda: world.graph_texts(risk_user), 2)

    assert world.messenger(messenger_text_event(plain_user, "goi 111 co mat tien khong", uid("mid"))) == 200
    texts = eventually(lambda: world.graph_texts(plain_user), 5)
    assert texts == [seed_answer("utter_rasa_down", "vi")]  # the honest fallback, once
    conv = world.conversation("messenger", plain_user)
    assert conv is not None and conv.state == "bot" and conv.inbound[0]["status"] == "pending"

    world.rasa.restart()
    # The waiting message is retried with backoff (capped at 30 s) and answered once Rasa is back.
    texts = eventually(lambda: (t := world.graph_texts(plain_user)) and len(t) >= 2 and t, 45, interval=0.2)
    assert first_line(seed_answer("utter_faq_cost", "vi")) in texts[1]
    time.sleep(0.5)
    assert len(world.graph_texts(plain_user)) == 2  # answered once, the notice not repeated
    conv = world.conversation("messenger", plain_user)
    assert conv is not None and [m["status"] for m in conv.inbound] == ["done"]
