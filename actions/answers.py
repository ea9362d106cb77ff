"""Answers from the content store: every FAQ and small-talk intent, the fallback, and exit.

The answer of intent ``X`` is the content key ``utter_X`` (docs/INTENTS.md); it is read from the
database on every message, so an edit shows at once. Before answering, the safety screen runs on
the message: when it escalates, the person gets the risk answer and a counselor instead.
"""
from __future__ import annotations

import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, AllSlotsReset, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.handoff import PRIORITY_OF_INTENT, hand_off
from actions.runtime import get_runtime, intent_name, reply_language, screen, user_text

logger = logging.getLogger(__name__)

DEFAULT_KEY = "utter_default"
# Intents whose answer is the fallback outside a flow: "yes" / "no" to nothing, or not understood.
DEFAULT_INTENTS = frozenset({"nlu_fallback", "affirm", "deny"})


RISK_INTENTS = ("emergency", "at_risk")


def uncertain_risk(tracker: Tracker) -> str | None:
    """When the model was unsure (nlu_fallback) but its best guess is a risk intent, treat the
    message as that risk: a counselor reading an ordinary message costs little, a missed one a lot."""
    ranking = [r for r in tracker.latest_message.get("intent_ranking") or [] if r.get("name") != "nlu_fallback"]
    best = ranking[0]["name"] if ranking else None
    return best if best in RISK_INTENTS else None


def answer_key(intent: str | None) -> str:
    if not intent or intent in DEFAULT_INTENTS:
        return DEFAULT_KEY
    return f"utter_{intent}"


class ActionAnswer(Action):
    def name(self) -> str:
        return "action_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = reply_language(tracker)
        intent = intent_name(tracker)
        if intent == "nlu_fallback":
            intent = uncertain_risk(tracker) or intent
        verdict = await screen(user_text(tracker))
        if (verdict is not None and verdict.escalate) or intent in PRIORITY_OF_INTENT:
            # the screen saw risk in what the model took for an ordinary question (or a risk
            # intent reached this action): answer exactly as action_handoff does
            return await hand_off(dispatcher, tracker, lang, intent=intent, verdict=verdict)
        text = await get_runtime().store.text(answer_key(intent), lang)
        if text:
            dispatcher.utter_message(text=text)
        return [SlotSet("language", lang)]


class ActionExit(Action):
    """The person wants to stop: say goodbye, close any form, forget the slots but the language."""

    def name(self) -> str:
        return "action_exit"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = reply_language(tracker)
        text = await get_runtime().store.text("utter_exit", lang)
        if text:
            dispatcher.utter_message(text=text)
        return [ActiveLoop(None), AllSlotsReset(), SlotSet("language", lang)]
