"""Checking a recruitment agency against the registry of licensed labour-export enterprises.

The form ``agency_form`` asks for a name or a licence number (``action_ask_agency_query``) until
the person sends something searchable (``validate_agency_form``); ``action_check_agency`` then
says what the registry says - licensed, suspended, revoked, similar names, or not found - and
always ends with the warning signs. It never calls an agency safe.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.runtime import get_runtime, reply_language, user_text
from bot.agencies import AgencyRecord, LookupResult, is_searchable, lookup

logger = logging.getLogger(__name__)

SLOT = "agency_query"
MAX_QUERY = 200  # characters kept from the message
MAX_ECHO = 80  # characters of the query repeated in the "not found" answer
LOOKUP_TIMEOUT = 5.0
STATUS_KEYS = {"active": "utter_agency_licensed", "suspended": "utter_agency_suspended",
               "revoked": "utter_agency_revoked"}
UNKNOWN_DATE = {"vi": "không rõ", "en": "unknown"}
LICENCE_WORD = {"vi": "giấy phép", "en": "licence"}


def format_date(value: date | None, lang: str) -> str:
    return value.strftime("%d/%m/%Y") if value else UNKNOWN_DATE.get(lang, UNKNOWN_DATE["vi"])


def format_matches(candidates: list[AgencyRecord], lang: str) -> str:
    word = LICENCE_WORD.get(lang, LICENCE_WORD["vi"])
    return "\n".join(f"• {c.name} ({word} {c.licence_number})" for c in candidates)


def answer_for(result: LookupResult | None, lang: str) -> tuple[str, dict[str, Any]]:
    """The content key and its values for a look-up result (None: the registry could not be read)."""
    if result is None or result.kind == "empty":
        return "utter_agency_registry_empty", {}
    if result.kind == "match" and result.agency is not None and result.agency.status in STATUS_KEYS:
        agency = result.agency
        when = agency.licensed_on if agency.status == "active" else agency.status_changed_on
        return STATUS_KEYS[agency.status], {"name": agency.name, "licence": agency.licence_number,
                                            "date": format_date(when, lang)}
    if result.kind in ("match", "near") and (result.candidates or result.agency):
        # near matches to confirm (or, defensively, a match whose status the registry should not hold)
        candidates = result.candidates or [result.agency]  # type: ignore[list-item]
        return "utter_agency_near_matches", {"matches": format_matches(candidates, lang)}
    query = result.query if len(result.query) <= MAX_ECHO else result.query[:MAX_ECHO].rsplit(" ", 1)[0] + "…"
    return "utter_agency_not_found", {"query": query}


class ActionAskAgencyQuery(Action):
    def name(self) -> str:
        return "action_ask_agency_query"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = reply_language(tracker)
        text = await get_runtime().store.text("utter_ask_agency", lang)
        if text:
            dispatcher.utter_message(text=text)
        return [SlotSet("language", lang)]


class ValidateAgencyForm(FormValidationAction):
    def name(self) -> str:
        return "validate_agency_form"

    async def validate_agency_query(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> dict[str, Any]:
        """Keep the message only when it holds a licence number or a word of a name; otherwise
        clear it so the form asks again ("kiểm tra công ty" alone names no company)."""
        if isinstance(slot_value, str) and is_searchable(slot_value):
            return {SLOT: " ".join(slot_value.split())[:MAX_QUERY]}
        return {SLOT: None}


class ActionCheckAgency(Action):
    def name(self) -> str:
        return "action_check_agency"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = reply_language(tracker)
        query = tracker.get_slot(SLOT) or user_text(tracker)
        result: LookupResult | None = None
        try:
            async with get_runtime().registry_sessions()() as session:
                result = await asyncio.wait_for(lookup(session, query), timeout=LOOKUP_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # say we cannot check now, and still give the warning signs
            logger.error("agency look-up failed: %s", type(exc).__name__)
        key, values = answer_for(result, lang)
        logger.info("agency check: %s", result.kind if result else "registry unavailable")
        store = get_runtime().store
        for text in (await store.text(key, lang, **values), await store.text("utter_agency_warning_signs", lang)):
            if text:
                dispatcher.utter_message(text=text)
        return [SlotSet(SLOT, None), SlotSet("language", lang)]
