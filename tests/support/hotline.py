"""What a test or a benchmark needs around real gateway processes: the gateway's environment
pointed at the fake platforms, a migrated database, signed webhook requests, a read-only view of
the database and a signed-in console client (stdlib HTTP, usable from any thread)."""
from __future__ import annotations

import http.cookiejar
import json
import re
import sys
import uuid
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bot.db.models import Conversation, Location, Message
from bot.db.session import sync_engine
from tests.fakes.payloads import ZALO_APP_ID, encode, sign_messenger, sign_zalo
from tests.support.processes import PROJECT_ROOT, command

APP_SECRET = "e2e-app-secret"
VERIFY_TOKEN = "e2e-verify-token"
OA_SECRET = "e2e-oa-secret"
SESSION_SECRET = "e2e-session-secret-" + "x" * 30
STAFF_PASSWORD = "E2e-correct-horse-battery-9"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def create_pg_database(server_url: str, label: str) -> str:
    """A new empty database on the PostgreSQL server of `server_url`; returns its URL."""
    name = f"hl_{re.sub(r'[^a-z0-9]+', '_', label.lower())[:30]}_{uuid.uuid4().hex[:8]}"
    _pg_admin(server_url, f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(server_url: str, database_url: str) -> None:
    _pg_admin(server_url, f'DROP DATABASE IF EXISTS "{make_url(database_url).database}" WITH (FORCE)')


def _pg_admin(server_url: str, statement: str) -> None:
    import psycopg2

    url = make_url(server_url)
    conn = psycopg2.connect(host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username,
                            password=url.password, dbname=url.database or "postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def migrate(database_url: str) -> str:
    """`python -m bot migrate` on this database (tables and seed content)."""
    return command([sys.executable, "-m", "bot", "migrate"], {"DATABASE_URL": database_url}).stdout.strip()


def add_user(database_url: str, name: str, role: str, password: str = STAFF_PASSWORD) -> str:
    """`python -m bot users add NAME --role ROLE`, the password on stdin."""
    return command([sys.executable, "-m", "bot", "users", "add", name, "--role", role],
                   {"DATABASE_URL": database_url}, stdin=password + "\n").stdout.strip()


def gateway_env(*, database_url: str, rasa_url: str, graph_url: str | None = None,
                page_token: str | None = None, zalo_url: str | None = None, zalo_access_token: str | None = None,
                zalo_refresh_token: str | None = None, zalo_app_secret_key: str | None = None,
                **extra: str) -> dict[str, str]:
    """The configuration contract (shared/DESIGN.md) for a gateway on the fake platforms."""
    env = {"DATABASE_URL": database_url, "RASA_URL": rasa_url, "SESSION_SECRET": SESSION_SECRET,
           "AUTO_MIGRATE": "0", "LOG_LEVEL": "INFO"}
    if graph_url:
        env.update(MESSENGER_APP_SECRET=APP_SECRET, MESSENGER_VERIFY_TOKEN=VERIFY_TOKEN,
                   MESSENGER_PAGE_ACCESS_TOKEN=page_token or "", MESSENGER_GRAPH_URL=graph_url)
    if zalo_url:
        env.update(ZALO_APP_ID=ZALO_APP_ID, ZALO_OA_SECRET_KEY=OA_SECRET, ZALO_APP_SECRET_KEY=zalo_app_secret_key or "",
                   ZALO_ACCESS_TOKEN=zalo_access_token or "", ZALO_REFRESH_TOKEN=zalo_refresh_token or "",
                   ZALO_API_URL=zalo_url, ZALO_OAUTH_URL=zalo_url)
    env.update(extra)
    return env


def fake_platform_env(graph: Any, zalo: Any) -> dict[str, str]:
    """gateway_env's platform arguments for a FakeGraph and a FakeZalo."""
    return dict(graph_url=graph.url, page_token=graph.page_access_token, zalo_url=zalo.url,
                zalo_access_token=zalo.access_token, zalo_refresh_token=zalo.refresh_token,
                zalo_app_secret_key=zalo.app_secret_key)


def signed_messenger(payload: dict[str, Any], secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    raw = encode(payload)
    return raw, sign_messenger(raw, secret)


def signed_zalo(payload: dict[str, Any], secret: str = OA_SECRET) -> tuple[bytes, dict[str, str]]:
    raw = encode(payload)
    return raw, sign_zalo(raw, ZALO_APP_ID, secret)


def post(url: str, raw: bytes, headers: dict[str, str], timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=raw, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def seed_answer(key: str, lang: str) -> str:
    """An answer as content/responses.yml seeds it (a fresh database holds exactly these)."""
    data = yaml.safe_load((PROJECT_ROOT / "content" / "responses.yml").read_text(encoding="utf-8"))
    return str(data[key][lang]).strip()


def first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip()


@dataclass
class ConversationView:
    id: int
    state: str
    priority: str | None
    reason: str | None
    language: str | None
    inbound: list[dict[str, Any]] = field(default_factory=list)
    outbound: list[dict[str, Any]] = field(default_factory=list)
    locations: list[dict[str, Any]] = field(default_factory=list)


class DbView:
    """Read-only looks into the gateway's database from the test process (SQLite WAL or PostgreSQL)."""

    def __init__(self, database_url: str) -> None:
        self.engine = sync_engine(database_url)

    def close(self) -> None:
        self.engine.dispose()

    def conversation(self, channel: str, user_id: str) -> ConversationView | None:
        with Session(self.engine) as session:
            conv = session.scalar(select(Conversation).where(Conversation.channel == channel,
                                                             Conversation.user_id == user_id))
            if conv is None:
                return None
            messages = session.scalars(select(Message).where(Message.conversation_id == conv.id)
                                       .order_by(Message.id)).all()
            locations = session.scalars(select(Location).where(Location.conversation_id == conv.id)
                                        .order_by(Location.id)).all()
            rows = [{"id": m.id, "direction": m.direction, "author": m.author, "text": m.text,
                     "status": m.status, "attempts": m.attempts, "error": m.error} for m in messages]
            return ConversationView(
                id=conv.id, state=conv.state, priority=conv.priority, reason=conv.reason, language=conv.language,
                inbound=[r for r in rows if r["direction"] == "in"], outbound=[r for r in rows if r["direction"] == "out"],
                locations=[{"lat": loc.lat, "lon": loc.lon, "source": loc.source, "label": loc.label,
                            "resolved": loc.resolved} for loc in locations])


class ConsoleClient:
    """A signed-in console user over the JSON API (cookie jar + CSRF token)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf: str | None = None

    def call(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with self.opener.open(request, timeout=timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        return status, (json.loads(raw) if raw else None)

    def login(self, username: str, password: str = STAFF_PASSWORD) -> dict[str, Any]:
        status, out = self.call("POST", "/api/login", {"username": username, "password": password})
        if status != 200:
            raise AssertionError(f"login of {username!r} answered {status}: {out}")
        self.csrf = out["csrf_token"]
        return out

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)
