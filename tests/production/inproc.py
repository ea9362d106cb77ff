"""In-process replicas: several gateway apps (aiohttp test servers) on one database, each with its
own engine, connection pool, worker id and background loops — what several `python -m bot`
processes are, minus the process boundary. Used where a test must control timing precisely."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from bot.app import create_app
from bot.keys import gateway_key
from bot.settings import PROJECT_ROOT, Settings
from tests.fakes.payloads import ZALO_APP_ID

APP_SECRET = "prod-test-app-secret"
OA_SECRET = "prod-test-oa-secret"
VERIFY_TOKEN = "prod-test-verify"


def gateway_settings(database_url: str, fakes: SimpleNamespace, **overrides: Any) -> Settings:
    base = Settings(
        database_url=database_url, rasa_url=fakes.rasa.url, public_base_url="http://gateway.test",
        messenger_app_secret=APP_SECRET, messenger_verify_token=VERIFY_TOKEN,
        messenger_page_access_token=fakes.graph.page_access_token, messenger_graph_url=fakes.graph.url,
        zalo_app_id=ZALO_APP_ID, zalo_oa_secret_key=OA_SECRET, zalo_app_secret_key=fakes.zalo.app_secret_key,
        zalo_access_token=fakes.zalo.access_token, zalo_refresh_token=fakes.zalo.refresh_token,
        zalo_api_url=fakes.zalo.url, zalo_oauth_url=fakes.zalo.url, session_secret="p" * 43,
        session_secret_generated=False, content_dir=PROJECT_ROOT / "content", send_max_attempts=6,
        retry_base_s=0.1, auto_migrate=False)
    return replace(base, **overrides)


async def replica(aiohttp_client: Any, settings: Settings, worker_id: str) -> Any:
    """A started gateway app with its own worker id (the default, host:pid, would be shared by
    every app of this process and make their leases indistinguishable)."""
    client = await aiohttp_client(create_app(settings))
    client.gw = client.app[gateway_key]
    client.gw.worker_id = worker_id
    return client
