"""A real gateway app (aiohttp test client) wired to fake Graph, Zalo and Rasa servers."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, Awaitable, Callable

import pytest

from bot.app import create_app
from bot.keys import gateway_key
from bot.settings import PROJECT_ROOT, Settings
from tests.fakes.payloads import ZALO_APP_ID, encode, sign_messenger, sign_zalo

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
OA_SECRET = "test-oa-secret"


@pytest.fixture
def settings(db_url: str, fakes: SimpleNamespace) -> Settings:
    return Settings(
        database_url=db_url, rasa_url=fakes.rasa.url, public_base_url="http://gateway.test",
        messenger_app_secret=APP_SECRET, messenger_verify_token=VERIFY_TOKEN,
        messenger_page_access_token=fakes.graph.page_access_token, messenger_graph_url=fakes.graph.url,
        zalo_app_id=ZALO_APP_ID, zalo_oa_secret_key=OA_SECRET, zalo_app_secret_key=fakes.zalo.app_secret_key,
        zalo_access_token=fakes.zalo.access_token, zalo_refresh_token=fakes.zalo.refresh_token,
        zalo_api_url=fakes.zalo.url, zalo_oauth_url=fakes.zalo.url, session_secret="s" * 43,
        session_secret_generated=False, content_dir=PROJECT_ROOT / "content", send_max_attempts=4, retry_base_s=0.1,
        auto_migrate=False)


@pytest.fixture
async def gateway(aiohttp_client, settings: Settings):
    client = await aiohttp_client(create_app(settings))
    client.gw = client.app[gateway_key]
    return client


async def post_messenger(client: Any, payload: dict, secret: str = APP_SECRET, headers: dict | None = None):
    raw = encode(payload)
    h = {"Content-Type": "application/json", **(sign_messenger(raw, secret) if headers is None else headers)}
    return await client.post("/webhooks/messenger", data=raw, headers=h)


async def post_zalo(client: Any, payload: dict, secret: str = OA_SECRET, headers: dict | None = None):
    raw = encode(payload)
    h = {"Content-Type": "application/json", **(sign_zalo(raw, ZALO_APP_ID, secret) if headers is None else headers)}
    return await client.post("/webhooks/zalo", data=raw, headers=h)


async def eventually(check: Callable[[], Any | Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until `check()` is truthy; returns its value or fails with the last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {timeout} s"
            return value
        await asyncio.sleep(interval)
