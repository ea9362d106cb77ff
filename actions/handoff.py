"""The handoff: the risk answer, then the signal that sends the conversation to a counselor.

The reply carries a custom payload the gateway turns into queue state (docs/ARCHITECTURE.md):
``{"handoff": {"priority", "reason", "facts"}}``. Risk never rests on one classifier: the
priority of the intent is raised to the safety screen's when the screen says more, and
``action_answer`` hands off too when the screen escalates an ordinary-looking message.
"""
from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.runtime import get_runtime, intent_name, reply_language, screen, session_user_texts, user_text
from bot.facts import extract_facts
from bot.safety import Verdict

logger = logging.getLogger(__name__)

RANK = {"request": 1, "at_risk": 2, "emergency": 3}
PRIORITY_OF_INTENT = {"emergency": "emergency", "at_risk": "at_risk", "request_human": "request"}
REASON_OF_INTENT = {"emergency": "in danger (said so)", "at_risk": "at risk (said so)",
                    "request_human": "asked for a counselor"}
ANSWER_OF_PRIORITY = {"emergency": "utter_risk_emergency", "at_risk": "utter_risk_at_risk",
                      "request": "utter_handoff_request"}


def decide(intent: str | None, verdict: Verdict | None) -> tuple[str, str]:
    """(priority, reason): the intent's, raised to the safety screen's when that is higher."""
    priority = PRIORITY_OF_INTENT.get(intent or "")
    reason = REASON_OF_INTENT.get(intent or "")
    if verdict is not None and verdict.escalate and verdict.priority in RANK:
        if priority is None or RANK[verdict.priority] > RANK[priority]:
            priority = verdict.priority
        reason = verdict.reason or reason
    return priority or "request", reason or "handoff"


async def hand_off(dispatcher: CollectingDispatcher, tracker: Tracker, lang: str, *, intent: str | None,
                   verdict: Verdict | None) -> list[EventType]:
    """Send the answer for the priority, then the handoff payload with the session's facts."""
    priority, reason = decide(intent, verdict)
    text = await get_runtime().store.text(ANSWER_OF_PRIORITY[priority], lang)
    facts: dict[str, Any] = extract_facts(session_user_texts(tracker))
    facts["language"] = lang
    if text:
        dispatcher.utter_message(text=text)
    dispatcher.utter_message(json_message={"handoff": {"priority": priority, "reason": reason, "facts": facts}})
    logger.info("handoff: priority %s, reason %s, intent %s", priority, reason, intent)
    return [SlotSet("language", lang)]


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = reply_language(tracker)
        verdict = await screen(user_text(tracker))
        return await hand_off(dispatcher, tracker, lang, intent=intent_name(tracker), verdict=verdict)
