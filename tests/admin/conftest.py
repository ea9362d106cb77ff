"""The gateway app with the content admin, on a copy of the repository's training data and
content (publishes write there, never into the checkout), a fake Rasa server with the model API,
stubbed publish steps, and signed-in staff members."""
from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Awaitable, Callable

import pytest

from bot import accounts
from bot.admin.state import publish_config_key, publisher_key
from bot.app import create_app
from bot.keys import gateway_key
from bot.settings import PROJECT_ROOT, Settings
from tests.admin.fakes import FakeRasaServer, StubSteps

PASSWORD = "Correct-Horse-9-battery"
SERVING = "hotline-serving.tar.gz"
COPIED = ("config.yml", "domain.yml", "nlu_data", "content", "docs/INTENTS.md", "tests/nlu/heldout.yml")


def copy_repository(dest: Path) -> Path:
    """The files a publish reads and writes, copied from the checkout; a stand-in serving model."""
    for rel in COPIED:
        src, dst = PROJECT_ROOT / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    (dest / "models").mkdir()
    (dest / "models" / SERVING).write_bytes(b"the model that serves before the publish")
    return dest


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the copied repository (to prove a refused publish changed nothing); not the
    work directory (var/) nor Rasa's training cache (.rasa/)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not {"var", ".rasa"} & set(p.relative_to(root).parts)}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_repository(tmp_path / "repo")


@pytest.fixture
async def rasa():
    async with FakeRasaServer(serving=SERVING) as server:
        yield server


@pytest.fixture
def settings(db_url: str, rasa: FakeRasaServer, repo: Path) -> Settings:
    return Settings(database_url=db_url, rasa_url=rasa.url, public_base_url="http://gateway.test",
                    session_secret="s" * 43, session_secret_generated=False, content_dir=repo / "content",
                    auto_migrate=False)


def publish_config(app: Any, repo: Path, **overrides: Any) -> None:
    cfg = app[publish_config_key]
    app[publish_config_key] = replace(cfg, root=repo, models_dir=repo / "models", work_dir=repo / "var" / "publish",
                                      heldout=repo / "tests" / "nlu" / "heldout.yml", content_dir=repo / "content",
                                      intents_doc=repo / "docs" / "INTENTS.md", **overrides)


@pytest.fixture
async def app_client(aiohttp_client, settings: Settings, repo: Path):
    app = create_app(settings)
    publish_config(app, repo)
    client = await aiohttp_client(app)
    client.gw = client.app[gateway_key]
    client.publisher = client.app[publisher_key]
    client.steps = StubSteps(client.publisher.config, client.publisher.http)
    client.publisher.steps = client.steps
    yield client
    await client.publisher.close()


@dataclass
class Staff:
    """One signed-in browser: its own client (cookie jar) and CSRF token."""

    client: Any
    name: str
    role: str
    csrf: str | None = None

    async def call(self, method: str, path: str, body: Any = None, *, csrf: bool = True, raw: bytes | None = None,
                   content_type: str = "text/csv") -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf or ""} if csrf else {}
        kwargs: dict[str, Any] = {"headers": headers}
        if raw is not None:
            headers["Content-Type"] = content_type
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with self.client.request(method, path, **kwargs) as r:
            try:
                data = await r.json()
            except Exception:
                data = await r.text()
            return r.status, data


@pytest.fixture
def staff(app_client, aiohttp_client) -> Callable[..., Awaitable[Staff]]:
    """`await staff("lan", "content_editor")`: create the account and sign in."""

    async def make(name: str, role: str) -> Staff:
        async with app_client.gw.sessions() as session:
            await accounts.create_account(session, name, role, PASSWORD)
            await session.commit()
        client = await aiohttp_client(app_client.server)
        member = Staff(client=client, name=name, role=role)
        async with client.post("/api/login", json={"username": name, "password": PASSWORD}) as r:
            assert r.status == 200, await r.text()
            member.csrf = (await r.json())["csrf_token"]
        return member

    return make


@pytest.fixture
async def editor(staff) -> Staff:
    return await staff("lan", "content_editor")


@pytest.fixture
async def counselor(staff) -> Staff:
    return await staff("minh", "counselor")


async def wait_for_job(member: Staff, job_id: int, timeout: float = 30.0) -> dict[str, Any]:
    """Poll `GET /api/publish/{id}` until the job has finished."""
    deadline = time.monotonic() + timeout
    while True:
        status, job = await member.call("GET", f"/api/publish/{job_id}")
        assert status == 200, job
        if job["state"] in ("done", "refused", "failed"):
            return job
        assert time.monotonic() < deadline, f"publish still {job['state']} after {timeout} s: {job['progress']}"
        await asyncio.sleep(0.05)


async def audit_actions(gw: Any) -> list[tuple[str, str | None]]:
    from sqlalchemy import select

    from bot.db.models import AuditEntry

    async with gw.sessions() as session:
        rows = (await session.execute(select(AuditEntry.action, AuditEntry.target).order_by(AuditEntry.id))).all()
    return [tuple(r) for r in rows]


def topic_examples(n: int) -> list[str]:
    """n different questions about a made-up topic (none in the training data or held-out set)."""
    places = ["Hà Nội", "Đà Nẵng", "An Giang", "Huế", "Cần Thơ", "Hải Phòng", "Lào Cai", "Nghệ An", "Sơn La",
              "Quảng Ninh", "Gia Lai", "Cà Mau"]
    return [f"lớp tập huấn kỹ năng an toàn cho học sinh ở {p} khi nào mở" for p in places[:n]]


TOPIC_ANSWERS = {"vi": "Mình đây, cảm ơn bạn đã hỏi.\nLớp tập huấn kỹ năng được thông báo trên trang này.",
                 "en": "Hi, thanks for asking.\nSkills workshops are announced on this page."}


def namespace(**kw: Any) -> SimpleNamespace:
    return SimpleNamespace(**kw)
