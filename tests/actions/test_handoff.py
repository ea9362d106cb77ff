"""action_handoff: the risk answer, then the handoff payload with priority, reason and facts."""
from __future__ import annotations

import pytest
from rasa_sdk.events import SlotSet

from actions.handoff import ActionHandoff, decide
from bot.safety import Verdict
from tests.actions.conftest import load_tracker, make_tracker, render


async def test_emergency_with_facts_from_this_session(runtime, seed, dispatcher, domain) -> None:
    tracker = load_tracker("emergency_session")
    events = await ActionHandoff().run(dispatcher, tracker, domain)
    assert events == [SlotSet("language", "vi")]
    assert [m["text"] for m in dispatcher.messages] == [render(seed, "utter_risk_emergency", "vi"), None]
    payload = dispatcher.messages[1]["custom"]
    assert set(payload) == {"handoff"}
    handoff = payload["handoff"]
    assert (handoff["priority"], handoff["reason"]) == ("emergency", "in danger (said so)")
    facts = handoff["facts"]
    assert facts["age"] == 16
    assert "Móng Cái" in facts["where"]
    assert facts["safe_now"] is False
    assert facts["wants"].startswith("be rescued")
    assert facts["language"] == "vi"
    assert facts["with_whom"] is None  # "chồng" was said in the previous session
    assert set(facts) == {"safe_now", "where", "with_whom", "wants", "age", "language"}


@pytest.mark.parametrize("intent,text,priority,reason,key", [
    ("at_risk", "có người hứa việc nhẹ lương cao bên Đài Loan", "at_risk", "at risk (said so)", "utter_risk_at_risk"),
    ("request_human", "cho em gặp tư vấn viên", "request", "asked for a counselor", "utter_handoff_request"),
    ("emergency", "cứu em", "emergency", "in danger (said so)", "utter_risk_emergency"),
    # the screen raises the priority and gives its reason
    ("request_human", "cho em gặp tư vấn viên, em bị nhốt", "emergency", "held or locked in", "utter_risk_emergency"),
    ("at_risk", "họ bảo sẽ giữ hộ chiếu của em", "at_risk", "documents taken", "utter_risk_at_risk"),
    # the screen never lowers it
    ("emergency", "bọn nó giữ hộ chiếu của em", "emergency", "documents taken", "utter_risk_emergency"),
])
async def test_priority_reason_and_answer(runtime, seed, dispatcher, domain, intent, text, priority, reason,
                                          key) -> None:
    await ActionHandoff().run(dispatcher, make_tracker(text, intent, metadata={"language": "vi"}), domain)
    assert dispatcher.messages[0]["text"] == render(seed, key, "vi")
    handoff = dispatcher.messages[1]["custom"]["handoff"]
    assert (handoff["priority"], handoff["reason"]) == (priority, reason)


async def test_request_human_in_english(runtime, seed, dispatcher, domain) -> None:
    tracker = make_tracker("I want to talk to a real person", "request_human",
                           history=[("hello", "greet"), ("I am 17 and I work in Penang", "nlu_fallback")])
    events = await ActionHandoff().run(dispatcher, tracker, domain)
    assert events == [SlotSet("language", "en")]
    assert dispatcher.messages[0]["text"] == render(seed, "utter_handoff_request", "en")
    handoff = dispatcher.messages[1]["custom"]["handoff"]
    assert handoff["priority"] == "request"
    assert handoff["facts"]["age"] == 17
    assert handoff["facts"]["wants"].startswith("talk to a counselor")
    assert handoff["facts"]["language"] == "en"


async def test_handoff_goes_out_when_the_database_is_down(broken_runtime, seed, dispatcher, domain) -> None:
    await ActionHandoff().run(dispatcher, make_tracker("em không muốn sống nữa", "emergency"), domain)
    assert dispatcher.messages[0]["text"] == render(seed, "utter_risk_emergency", "vi")
    assert dispatcher.messages[1]["custom"]["handoff"]["reason"] == "thoughts of suicide"


@pytest.mark.parametrize("intent,verdict,expected", [
    ("emergency", None, ("emergency", "in danger (said so)")),
    (None, None, ("request", "handoff")),
    ("greet", Verdict(True, "at_risk", "documents taken", ["x"]), ("at_risk", "documents taken")),
    ("request_human", Verdict(False, None, None, []), ("request", "asked for a counselor")),
    ("at_risk", Verdict(True, "emergency", "sold", ["x"]), ("emergency", "sold")),
    ("emergency", Verdict(True, "at_risk", "job offer", ["x"]), ("emergency", "job offer")),
])
def test_decide(intent, verdict, expected) -> None:
    assert decide(intent, verdict) == expected
