"""Production evidence: PostgreSQL, Redis, several replicas, faults and hostile input.

Tests that need PostgreSQL read TEST_DATABASE_URL, tests that need Redis read TEST_REDIS_URL; each is
skipped with the reason when its variable is unset (`.ci/run` sets both). Every test module gets its
own PostgreSQL database (created from TEST_DATABASE_URL's server, migrated and seeded, dropped
afterwards) and its own Redis key prefix (its keys deleted afterwards).
"""
from __future__ import annotations

import asyncio
import os
import re
import uuid
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from bot.settings import PROJECT_ROOT, Settings

NEEDS_PG = "set TEST_DATABASE_URL to a PostgreSQL server (e.g. postgresql://postgres@127.0.0.1:5432/test) to run this"
NEEDS_REDIS = "set TEST_REDIS_URL to a Redis database (e.g. redis://127.0.0.1:6379/15) to run this"


def pg_server_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    return url if url.startswith(("postgresql://", "postgres://")) else None


def redis_server_url() -> str | None:
    url = os.environ.get("TEST_REDIS_URL", "").strip()
    return url if url.startswith(("redis://", "rediss://", "unix://")) else None


def _admin_connection(server_url: str):
    import psycopg2

    url = make_url(server_url)
    conn = psycopg2.connect(host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username,
                            password=url.password, dbname=url.database or "postgres")
    conn.autocommit = True
    return conn


def create_database(server_url: str, label: str) -> str:
    """A new empty database on the server of `server_url`; returns its URL."""
    name = f"hl_{re.sub(r'[^a-z0-9]+', '_', label.lower())[:30]}_{uuid.uuid4().hex[:8]}"
    conn = _admin_connection(server_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, database_url: str) -> None:
    name = make_url(database_url).database
    conn = _admin_connection(server_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def run_async(coro_fn, *args):
    """Run a coroutine function to completion in a thread of its own (a synchronous fixture must not
    touch the test's event loop: asyncio.run would close the loop pytest-asyncio uses)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro_fn(*args))).result()


def migrate(database_url: str) -> None:
    from bot.bootstrap import prepare_database

    run_async(prepare_database, Settings(database_url=database_url, content_dir=PROJECT_ROOT / "content"))


@pytest.fixture(scope="module")
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated and seeded PostgreSQL database of this test module, dropped afterwards."""
    server = pg_server_url()
    if server is None:
        pytest.skip(NEEDS_PG)
    url = create_database(server, request.module.__name__.rsplit(".", 1)[-1])
    try:
        migrate(url)
        yield url
    finally:
        drop_database(server, url)


@pytest.fixture
def one_database(request: pytest.FixtureRequest, db_url: str) -> str:
    """For tests whose subject does not depend on the database: PostgreSQL (the production
    database) when TEST_DATABASE_URL is set, SQLite otherwise — one run, not one per backend."""
    return request.getfixturevalue("pg_url") if pg_server_url() else db_url


@pytest.fixture(scope="module")
def pg_empty_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A second, empty PostgreSQL database of this module (Rasa's tracker store), dropped afterwards."""
    server = pg_server_url()
    if server is None:
        pytest.skip(NEEDS_PG)
    url = create_database(server, request.module.__name__.rsplit(".", 1)[-1] + "_rasa")
    try:
        yield url
    finally:
        drop_database(server, url)


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = redis_server_url()
    if url is None:
        pytest.skip(NEEDS_REDIS)
    return url


@pytest.fixture(scope="module")
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix (alphanumeric: Rasa's lock store requires it) owned by this module."""
    import redis

    prefix = f"test{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
