"""Fixtures of the channel tests: an HTTP client session and the fake platform servers.

`pg_sessions` runs the token-store tests on PostgreSQL too when TEST_DATABASE_URL names a
database the tests may write to (e.g. postgresql://user:pass@127.0.0.1:5432/hotline_test)."""
from __future__ import annotations

import os
from typing import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import delete
from sqlalchemy.orm import sessionmaker

from bot.db.migrate import upgrade
from bot.db.models import PlatformToken
from bot.db.session import async_engine, session_factory
from tests.fakes import FakeGraph, FakeZalo


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(timeout_delay=5) as fake:
        yield fake


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZalo]:
    async with FakeZalo(timeout_delay=5) as fake:
        yield fake


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set")
    upgrade(url)
    return url


@pytest.fixture
async def pg_sessions(pg_url: str) -> AsyncIterator[sessionmaker]:
    engine = async_engine(pg_url)
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        await session.execute(delete(PlatformToken))
    try:
        yield sessions
    finally:
        await engine.dispose()
