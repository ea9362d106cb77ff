"""State shared by the actions of one action-server process, and helpers to read a tracker.

The content store (answers, safety phrases) and the registry's database sessions are built from
the environment (``DATABASE_URL``, ``CONTENT_DIR``, via :class:`bot.settings.Settings`) on first
use, inside the action server's event loop: rasa-sdk imports every module of the package at
start-up, so nothing here may open files or connections at import.
"""
from __future__ import annotations

import logging
from rasa_sdk import Tracker
from sqlalchemy.orm import sessionmaker

from bot.content import ContentStore
from bot.language import LANGUAGES, detect_language
from bot.safety import SafetyScreen, Verdict
from bot.settings import Settings

logger = logging.getLogger(__name__)


class Runtime:
    """The action server's long-lived objects, each created when first needed."""

    def __init__(self, settings: Settings | None = None, store: ContentStore | None = None) -> None:
        self._settings = settings
        self._store = store

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    @property
    def store(self) -> ContentStore:
        if self._store is None:
            content_dir = self.settings.content_dir
            self._store = ContentStore(self.settings.database_url, content_dir / "responses.yml",
                                       content_dir / "safety_phrases.yml")
        return self._store

    def registry_sessions(self) -> sessionmaker:
        """Async sessions on the database that holds the agency registry (the store's engine)."""
        return self.store.sessions()

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Replace the process's runtime (tests; None: build a new one from the environment)."""
    global _runtime
    _runtime = runtime


# ------------------------------------------------------------------------------------ trackers

def user_text(tracker: Tracker) -> str:
    return (tracker.latest_message or {}).get("text") or ""


def intent_name(tracker: Tracker) -> str | None:
    intent = (tracker.latest_message or {}).get("intent") or {}
    return intent.get("name")


def reply_language(tracker: Tracker) -> str:
    """The gateway's choice (message metadata) when given, else detected from the text."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    lang = metadata.get("language") if isinstance(metadata, dict) else None
    if lang in LANGUAGES:
        return lang
    previous = tracker.get_slot("language")
    return detect_language(user_text(tracker), previous=previous if previous in LANGUAGES else None)


def session_user_texts(tracker: Tracker) -> list[str]:
    """What the person wrote since the current session started, oldest first."""
    texts: list[str] = []
    for event in tracker.events or []:
        kind = event.get("event")
        if kind == "session_started":
            texts = []
        elif kind == "user" and event.get("text"):
            texts.append(event["text"])
    latest = user_text(tracker)
    if latest and (not texts or texts[-1] != latest):
        texts.append(latest)
    return texts


async def screen(text: str) -> Verdict | None:
    """The safety screen's verdict on ``text``; None when it cannot run (logged)."""
    if not text:
        return None
    try:
        safety: SafetyScreen = await get_runtime().store.safety_screen()
        return safety.check(text)
    except Exception:  # the gateway screens every message too; an answer must still go out
        logger.exception("safety screen failed in the action server")
        return None

