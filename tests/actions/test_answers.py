"""action_answer and action_exit: answers from the content store, language, safety screen first."""
from __future__ import annotations

import pytest
from rasa_sdk.events import ActiveLoop, AllSlotsReset, SlotSet

from actions.answers import ActionAnswer, ActionExit
from bot import content
from tests.actions.conftest import make_tracker, render


def texts(dispatcher) -> list[str]:
    return [m["text"] for m in dispatcher.messages if m["text"]]


@pytest.mark.parametrize("intent,text,metadata,lang", [
    ("faq_hours", "tong dai lam viec may gio", {"language": "vi"}, "vi"),
    ("faq_hours", "what are your opening hours", {}, "en"),  # detected
    ("faq_cost", "goi 111 co mat tien ko", {}, "vi"),  # detected, no diacritics
    ("faq_cost", "does it cost money to call", {"language": "vi"}, "vi"),  # the gateway's choice wins
    ("greet", "hello", {}, "vi"),
    ("faq_share_location", "how do I send my location", {"channel": "zalo"}, "en"),
])
async def test_faq(runtime, seed, dispatcher, domain, intent: str, text: str, metadata: dict, lang: str) -> None:
    events = await ActionAnswer().run(dispatcher, make_tracker(text, intent, metadata=metadata), domain)
    assert events == [SlotSet("language", lang)]
    assert texts(dispatcher) == [render(seed, f"utter_{intent}", lang)]
    assert all(m["custom"] == {} for m in dispatcher.messages)


async def test_short_message_keeps_the_conversation_language(runtime, seed, dispatcher, domain) -> None:
    tracker = make_tracker("ok", "affirm", slots={"language": "en"})
    assert await ActionAnswer().run(dispatcher, tracker, domain) == [SlotSet("language", "en")]
    assert texts(dispatcher) == [render(seed, "utter_default", "en")]


@pytest.mark.parametrize("intent", ["nlu_fallback", "affirm", "deny", None, "intent_with_no_answer"])
async def test_fallback_answers(runtime, seed, dispatcher, domain, intent) -> None:
    await ActionAnswer().run(dispatcher, make_tracker("asdf qwer", intent, metadata={"language": "vi"}), domain)
    assert texts(dispatcher) == [render(seed, "utter_default", "vi")]


async def test_safety_screen_overrides_an_ordinary_intent(runtime, seed, dispatcher, domain) -> None:
    tracker = make_tracker("cho em hỏi giờ làm việc, em đang bị nhốt ở Lào Cai", "faq_hours",
                           metadata={"language": "vi"})
    events = await ActionAnswer().run(dispatcher, tracker, domain)
    assert events == [SlotSet("language", "vi")]
    assert dispatcher.messages[0]["text"] == render(seed, "utter_risk_emergency", "vi")
    handoff = dispatcher.messages[1]["custom"]["handoff"]
    assert (handoff["priority"], handoff["reason"]) == ("emergency", "held or locked in")
    assert handoff["facts"]["safe_now"] is False and handoff["facts"]["language"] == "vi"
    assert render(seed, "utter_faq_hours", "vi") not in texts(dispatcher)


async def test_safety_screen_at_risk_in_english(runtime, seed, dispatcher, domain) -> None:
    tracker = make_tracker("my boss giu ho chieu cua em", "out_of_scope")
    await ActionAnswer().run(dispatcher, tracker, domain)
    assert dispatcher.messages[-1]["custom"]["handoff"]["priority"] == "at_risk"
    assert dispatcher.messages[0]["text"] in (render(seed, "utter_risk_at_risk", "vi"),
                                              render(seed, "utter_risk_at_risk", "en"))


async def test_a_risk_intent_sent_here_still_hands_off(runtime, seed, dispatcher, domain) -> None:
    await ActionAnswer().run(dispatcher, make_tracker("help me please", "emergency"), domain)
    assert dispatcher.messages[0]["text"] == render(seed, "utter_risk_emergency", "en")
    assert dispatcher.messages[1]["custom"]["handoff"]["priority"] == "emergency"


async def test_an_edit_shows_in_the_next_answer(runtime, sessions, seed, domain) -> None:
    first = await _answer("faq_hours", "gio lam viec?")
    assert first == render(seed, "utter_faq_hours", "vi")
    edited = "Giờ làm việc mới:\n• Hà Nội: 24 giờ mỗi ngày"
    async with sessions() as session:
        await content.update_response(session, "utter_faq_hours", "vi", edited, "content-editor", seed=seed)
    assert await _answer("faq_hours", "gio lam viec?") == edited
    async with sessions() as session:
        await content.revert_response(session, "utter_faq_hours", "vi", 1, "content-editor", seed=seed)
    assert await _answer("faq_hours", "gio lam viec?") == first


async def _answer(intent: str, text: str) -> str:
    from rasa_sdk.executor import CollectingDispatcher

    dispatcher = CollectingDispatcher()
    await ActionAnswer().run(dispatcher, make_tracker(text, intent, metadata={"language": "vi"}), {})
    return dispatcher.messages[0]["text"]


async def test_answers_from_the_seed_when_the_database_is_down(broken_runtime, seed, dispatcher, domain) -> None:
    tracker = make_tracker("what are your opening hours", "faq_hours", metadata={"language": "en"})
    assert await ActionAnswer().run(dispatcher, tracker, domain) == [SlotSet("language", "en")]
    assert texts(dispatcher) == [render(seed, "utter_faq_hours", "en")]
    # and the safety screen still works, from the phrase file
    dispatcher.messages.clear()
    await ActionAnswer().run(dispatcher, make_tracker("em bi nhot", "greet", metadata={"language": "vi"}), domain)
    assert dispatcher.messages[-1]["custom"]["handoff"]["reason"] == "held or locked in"


@pytest.mark.parametrize("text,metadata,lang", [("thoát", {}, "vi"), ("stop", {"language": "en"}, "en")])
async def test_exit(runtime, seed, dispatcher, domain, text: str, metadata: dict, lang: str) -> None:
    tracker = make_tracker(text, "exit_chat", metadata=metadata, slots={"agency_query": "abc"},
                           active_loop="agency_form")
    events = await ActionExit().run(dispatcher, tracker, domain)
    assert events == [ActiveLoop(None), AllSlotsReset(), SlotSet("language", lang)]
    assert texts(dispatcher) == [render(seed, "utter_exit", lang)]


async def test_an_unsure_model_whose_best_guess_is_risk_hands_off(runtime, seed, dispatcher, domain) -> None:
    tracker = make_tracker("ho lay het giay to roi", "nlu_fallback", metadata={"language": "vi"})
    tracker.latest_message["intent_ranking"] = [{"name": "nlu_fallback", "confidence": 0.4},
                                                {"name": "at_risk", "confidence": 0.35},
                                                {"name": "faq_lost_documents", "confidence": 0.3}]
    await ActionAnswer().run(dispatcher, tracker, domain)
    handoff = [m["custom"]["handoff"] for m in dispatcher.messages if m["custom"]]
    assert handoff and handoff[0]["priority"] == "at_risk"


async def test_an_unsure_model_with_an_ordinary_best_guess_answers_the_fallback(runtime, seed, dispatcher, domain) -> None:
    tracker = make_tracker("asdf qwer", "nlu_fallback", metadata={"language": "vi"})
    tracker.latest_message["intent_ranking"] = [{"name": "nlu_fallback", "confidence": 0.4},
                                                {"name": "faq_hours", "confidence": 0.3}]
    await ActionAnswer().run(dispatcher, tracker, domain)
    assert texts(dispatcher) == [render(seed, "utter_default", "vi")]
