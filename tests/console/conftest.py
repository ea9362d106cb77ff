"""The gateway app with the console (aiohttp test client), fake Graph / Zalo / Rasa servers, and
signed-in staff members, each with their own cookie jar and CSRF token."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Awaitable, Callable

import pytest
from sqlalchemy import select

from bot import accounts
from bot.app import create_app
from bot.db.models import Case, Conversation, utcnow
from bot.keys import gateway_key
from bot.settings import PROJECT_ROOT, Settings
from tests.fakes.payloads import ZALO_APP_ID, encode, sign_messenger

APP_SECRET = "console-test-app-secret"
OA_SECRET = "console-test-oa-secret"
PASSWORD = "Correct-Horse-9-battery"
RISK_TEXT = "em bị nhốt ở đây, cứu em"  # the safety screen: emergency, "held or locked in"


@pytest.fixture
def settings(db_url: str, fakes: SimpleNamespace) -> Settings:
    return Settings(
        database_url=db_url, rasa_url=fakes.rasa.url, public_base_url="http://gateway.test",
        messenger_app_secret=APP_SECRET, messenger_verify_token="verify",
        messenger_page_access_token=fakes.graph.page_access_token, messenger_graph_url=fakes.graph.url,
        zalo_app_id=ZALO_APP_ID, zalo_oa_secret_key=OA_SECRET, zalo_app_secret_key=fakes.zalo.app_secret_key,
        zalo_access_token=fakes.zalo.access_token, zalo_refresh_token=fakes.zalo.refresh_token,
        zalo_api_url=fakes.zalo.url, zalo_oauth_url=fakes.zalo.url, session_secret="s" * 43,
        session_secret_generated=False, content_dir=PROJECT_ROOT / "content", send_max_attempts=2,
        auto_migrate=False)


@pytest.fixture
async def app_client(aiohttp_client, settings: Settings):
    client = await aiohttp_client(create_app(settings))
    client.gw = client.app[gateway_key]
    return client


@dataclass
class Staff:
    """One signed-in browser: its own client (cookie jar) and CSRF token."""

    client: Any
    name: str
    role: str
    id: int = 0
    csrf: str | None = None

    def _headers(self, csrf: bool | str = True) -> dict[str, str]:
        if csrf is False:
            return {}
        return {"X-CSRF-Token": csrf if isinstance(csrf, str) else (self.csrf or "")}

    async def call(self, method: str, path: str, body: Any = None, *, csrf: bool | str = True) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"headers": self._headers(csrf)}
        if body is not None:
            kwargs["json"] = body
        async with self.client.request(method, path, **kwargs) as r:
            try:
                data = await r.json()
            except Exception:
                data = await r.text()
            return r.status, data

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.call("GET", path)

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.call("POST", path, body, **kw)

    def ws(self, path: str = "/api/live", origin: str | None = None):
        host = f"{self.client.server.host}:{self.client.server.port}"
        return self.client.ws_connect(path, headers={"Origin": origin or f"http://{host}"})


@pytest.fixture
def staff(app_client, aiohttp_client) -> Callable[..., Awaitable[Staff]]:
    """`await staff("anna", "counselor", center="danang")`: create the account and sign in."""

    async def make(name: str, role: str, *, center: str | None = None, login: bool = True) -> Staff:
        async with app_client.gw.sessions() as session:
            account = await accounts.create_account(session, name, role, PASSWORD, center=center)
            await session.commit()
        client = await aiohttp_client(app_client.server)
        member = Staff(client=client, name=name, role=role, id=account.id)
        if login:
            async with client.post("/api/login", json={"username": name, "password": PASSWORD}) as r:
                assert r.status == 200, await r.text()
                member.csrf = (await r.json())["csrf_token"]
        return member

    return make


async def post_messenger(client: Any, payload: dict) -> int:
    raw = encode(payload)
    async with client.post("/webhooks/messenger", data=raw,
                           headers={"Content-Type": "application/json", **sign_messenger(raw, APP_SECRET)}) as r:
        return r.status


async def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until `check()` (sync or async) is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {timeout} s"
            return value
        await asyncio.sleep(interval)


async def queued_conversation(gw: Any, user_id: str = "psid-1", *, channel: str = "messenger",
                              priority: str = "at_risk", reason: str = "test reason",
                              summary: dict[str, Any] | None = None, state: str = "queued",
                              last_user_at: datetime | None = None, queued_at: datetime | None = None,
                              center: str = "hanoi", language: str = "vi") -> int:
    """A conversation waiting in the queue (with its open case), written directly."""
    now = utcnow()
    async with gw.sessions() as session:
        conv = Conversation(channel=channel, user_id=user_id, state=state, priority=priority, reason=reason,
                            language=language, center=center, queued_at=queued_at or now,
                            last_user_at=last_user_at or now, summary=summary or {}, notices={})
        session.add(conv)
        await session.flush()
        session.add(Case(conversation_id=conv.id, priority=priority, reason=reason, summary=dict(summary or {}),
                         opened_at=queued_at or now))
        await session.commit()
        return conv.id


async def load(gw: Any, model: Any, **where: Any) -> list[Any]:
    async with gw.sessions() as session:
        stmt = select(model)
        for key, value in where.items():
            stmt = stmt.where(getattr(model, key) == value)
        return list(await session.scalars(stmt.order_by(model.id)))


def ago(**kw: float) -> datetime:
    return utcnow() - timedelta(**kw)
