"""What the gateway does once at start so that the first messages, and the collector, do not pay
for it later (bot/gateway.py, bot/app.py)."""
from __future__ import annotations

import gc

from langdetect import detector_factory

from bot.app import _freeze_startup_objects
from bot.language import load_profiles


def test_language_profiles_are_loaded_ahead_of_the_first_message():
    load_profiles()
    assert detector_factory._factory is not None and len(detector_factory._factory.word_lang_prob_map) > 50_000


async def test_startup_objects_leave_the_collectors_generations():
    load_profiles()
    try:
        await _freeze_startup_objects(None)
        assert gc.get_freeze_count() > 50_000  # langdetect's profile lists among them
        assert not any(type(o) is list and len(o) == 55 for o in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()
