"""Fixtures for the custom actions: a seeded database and content directory, the runtime the
actions use, a fresh CollectingDispatcher per test, and trackers built from JSON or by hand."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.runtime import Runtime, set_runtime
from bot import content
from bot.safety import load_phrases
from bot.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
REAL_SEED = PROJECT_ROOT / "content" / "responses.yml"
DOMAIN = PROJECT_ROOT / "domain.yml"

# A small, fixed phrase list: the tests check the actions, not the content staff's list.
PHRASES_YML = """\
- {phrase: "bi nhot", priority: emergency, reason: "held or locked in"}
- {phrase: "giu ho chieu cua", priority: at_risk, reason: "documents taken"}
- {phrase: "khong muon song nua", priority: emergency, reason: "thoughts of suicide"}
"""


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    """The repository's answers and a small phrase list, in a directory of their own."""
    if not REAL_SEED.exists():
        pytest.skip("content/responses.yml not written yet")
    directory = tmp_path / "content"
    directory.mkdir()
    shutil.copy(REAL_SEED, directory / "responses.yml")
    (directory / "safety_phrases.yml").write_text(PHRASES_YML, encoding="utf-8")
    return directory


@pytest.fixture
def seed(content_dir: Path) -> dict[str, dict[str, str]]:
    return content.load_seed(content_dir / "responses.yml")


@pytest.fixture
async def runtime(db_url: str, sessions, content_dir: Path, seed, monkeypatch) -> AsyncIterator[Runtime]:
    """The actions' runtime on a migrated, seeded database (as `python -m bot migrate` leaves it),
    built from the environment as in the action server."""
    async with sessions() as session:
        await content.seed_responses(session, seed)
        await content.replace_safety_phrases(session, load_phrases(content_dir / "safety_phrases.yml"), "test")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CONTENT_DIR", str(content_dir))
    runtime = Runtime()
    set_runtime(runtime)
    try:
        yield runtime
    finally:
        await runtime.close()
        set_runtime(None)


@pytest.fixture
async def broken_runtime(tmp_path: Path, content_dir: Path) -> AsyncIterator[Runtime]:
    """A runtime whose database cannot be reached."""
    settings = Settings(database_url="postgresql://bot:pw@127.0.0.1:1/none", content_dir=content_dir)
    runtime = Runtime(settings)
    set_runtime(runtime)
    try:
        yield runtime
    finally:
        await runtime.close()
        set_runtime(None)


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


@pytest.fixture
def domain() -> dict[str, Any]:
    """The real domain as a dict (read with PyYAML: no need to import all of Rasa)."""
    return yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))


def render(seed: dict[str, dict[str, str]], key: str, lang: str, **values: Any) -> str:
    """What the bot should send for (key, lang): the seed's text, filled."""
    return content.render(seed[key][lang], **values)


def make_tracker(text: str, intent: str | None, *, metadata: dict[str, Any] | None = None,
                 slots: dict[str, Any] | None = None, history: Sequence[tuple[str, str]] = (),
                 active_loop: str | None = None) -> Tracker:
    """A tracker whose latest event is the user's ``text``; ``history`` holds earlier
    (text, intent) messages of the same session."""
    events: list[dict[str, Any]] = [{"event": "action", "name": "action_session_start"},
                                    {"event": "session_started"}, {"event": "action", "name": "action_listen"}]
    for old_text, old_intent in history:
        events += [{"event": "user", "text": old_text, "parse_data": {"intent": {"name": old_intent}}},
                   {"event": "action", "name": "action_answer"}, {"event": "action", "name": "action_listen"}]
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9} if intent else {}, "entities": [],
              "metadata": metadata or {}}
    events.append({"event": "user", "text": text, "parse_data": latest, "metadata": metadata or {}})
    all_slots = {"language": None, "agency_query": None, "requested_slot": None, **(slots or {})}
    return Tracker("test-user", all_slots, latest, events, False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


def load_tracker(name: str, replace: str | None = None) -> Tracker:
    """A tracker from tests/actions/data/<name>.json; ``replace`` fills "REPLACED BY THE TEST"."""
    state = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    if replace is not None:
        state = json.loads(json.dumps(state).replace("REPLACED BY THE TEST", replace.replace('"', '\\"')))
    return Tracker.from_dict(copy.deepcopy(state))
