"""Shared fixtures: a migrated (and seeded) SQLite database per test, copied from a template
that is built once per test session."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import AsyncIterator

import pytest
from sqlalchemy.orm import sessionmaker

from bot.db.session import async_engine, session_factory

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_EXIT_STATUS = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated and seeded from content/ once; every test gets its own copy."""
    from bot.bootstrap import prepare_database
    from bot.settings import Settings

    path = tmp_path_factory.mktemp("template") / "template.db"
    settings = Settings(database_url=f"sqlite:///{path}", content_dir=PROJECT_ROOT / "content")
    asyncio.run(prepare_database(settings))
    return path


@pytest.fixture
def db_url(tmp_path: Path, _template_db: Path) -> str:
    """A fresh SQLite database at the newest migration, with the seed content."""
    path = tmp_path / "test.db"
    shutil.copy(_template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture
async def fakes():
    """Fake Graph, Zalo and Rasa servers on 127.0.0.1 for a gateway under test."""
    from types import SimpleNamespace

    from tests.fakes.graph import FakeGraph
    from tests.fakes.rasa import FakeRasa
    from tests.fakes.zalo import FakeZalo

    async with FakeGraph(timeout_delay=3) as graph, FakeZalo(timeout_delay=3) as zalo, FakeRasa() as rasa:
        yield SimpleNamespace(graph=graph, zalo=zalo, rasa=rasa)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[sessionmaker]:
    """An async session factory on the fresh database."""
    engine = async_engine(db_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """A database driver thread left behind by a cancelled test (aiosqlite) must not keep the
    interpreter alive after the summary: CI would wait for it forever. Exit with pytest's status."""
    import os
    import sys
    import threading

    status = config.stash.get(_EXIT_STATUS, None)
    if status is not None and any(t.is_alive() and not t.daemon for t in threading.enumerate()
                                  if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
