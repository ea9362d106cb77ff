"""Bring a database to the current schema and seed the content store from content/."""
from __future__ import annotations

import asyncio
import logging

from bot.db import migrate
from bot.db.session import async_engine, is_sqlite, session_factory, sync_engine
from bot.settings import Settings

logger = logging.getLogger(__name__)
MIGRATION_LOCK_ID = 111_2025  # a PostgreSQL advisory lock: one replica migrates at a time


def _upgrade(database_url: str) -> None:
    if is_sqlite(database_url):
        migrate.upgrade(database_url)
        return
    from sqlalchemy import text

    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            try:
                migrate.upgrade(database_url)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
    finally:
        engine.dispose()


async def prepare_database(settings: Settings) -> str:
    """Migrate, then insert seed answers and safety phrases that the database lacks."""
    from bot import content
    from bot.safety import load_phrases

    await asyncio.get_running_loop().run_in_executor(None, _upgrade, settings.database_url)
    engine = async_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            answers = await content.seed_responses(session, content.load_seed(settings.content_dir / "responses.yml"))
            phrases = await content.seed_safety_phrases(session, load_phrases(settings.content_dir / "safety_phrases.yml"))
            await session.commit()
    finally:
        await engine.dispose()
    return f"database at the newest schema; seeded {answers} answers and {phrases} safety phrases"


async def export_content(settings: Settings) -> str:
    from bot import content

    engine = async_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            await content.export_responses(session, settings.content_dir / "responses.yml")
            n = await content.export_safety_phrases(session, settings.content_dir / "safety_phrases.yml")
    finally:
        await engine.dispose()
    return (f"wrote {settings.content_dir / 'responses.yml'} and {settings.content_dir / 'safety_phrases.yml'}"
            f" ({n} phrases); review with git diff")
