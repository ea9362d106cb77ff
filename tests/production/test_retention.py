"""Retention (bot/retention.py and the commands `retention purge`, `person export`, `person erase`).

Runs on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set. Rasa's tracker store is a
database with Rasa's `events` table (the table the SQL tracker store creates)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import retention
from bot.db.models import (AuditEntry, Case, Conversation, Location, LocationToken, LoginFailure, Message,
                           StaffSession, utcnow)
from bot.db.session import async_engine, session_factory
from bot.retention import TRACKER_EVENTS
from bot.settings import PROJECT_ROOT

NOW = utcnow()


def ago(days: float) -> Any:
    return NOW - timedelta(days=days)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, db_url: str) -> str:
    return db_url if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
async def sessions(database: str):
    engine = async_engine(database)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def tracker(tmp_path: Path) -> str:
    """Rasa's tracker store on SQLite, with its `events` table."""
    url = f"sqlite:///{tmp_path / 'rasa.db'}"
    engine = async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(TRACKER_EVENTS.metadata.create_all)
    await engine.dispose()
    return url


async def tracker_events(url: str, sender: str | None = None) -> list[Any]:
    engine = async_engine(url)
    try:
        async with engine.connect() as conn:
            stmt = select(TRACKER_EVENTS)
            if sender is not None:
                stmt = stmt.where(TRACKER_EVENTS.c.sender_id == sender)
            return list(await conn.execute(stmt))
    finally:
        await engine.dispose()


async def add_tracker_events(url: str, sender: str, *days_ago: float) -> None:
    engine = async_engine(url)
    async with engine.begin() as conn:
        for d in days_ago:
            await conn.execute(TRACKER_EVENTS.insert().values(
                sender_id=sender, type_name="user", timestamp=ago(d).timestamp(), intent_name="greet",
                data=json.dumps({"event": "user", "text": "xin chao"})))
    await engine.dispose()


class World:
    """Conversations of every kind, with unique user ids (the PostgreSQL database is shared)."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.ids: dict[str, int] = {}

    def user(self, name: str) -> str:
        return f"{name}-{self.tag}"

    async def build(self, sessions: Any) -> "World":
        async with sessions() as s:
            def conv(name: str, **kw: Any) -> Conversation:
                c = Conversation(channel="messenger", user_id=self.user(name), summary={"where": "Lào Cai"},
                                 notices={}, **{"state": "closed", "last_user_at": ago(100), "created_at": ago(120),
                                                **kw})
                s.add(c)
                return c

            convs = {"closed_old": conv("closed_old"), "open_old": conv("open_old", state="queued"),
                     "nocase_old": conv("nocase_old", state="bot"),
                     "recent": conv("recent", state="bot", last_user_at=ago(1)),
                     "mixed": conv("mixed", last_user_at=ago(2))}
            await s.flush()
            self.ids = {k: c.id for k, c in convs.items()}

            def msg(name: str, days: float, text: str, **kw: Any) -> None:
                s.add(Message(conversation_id=self.ids[name], direction=kw.pop("direction", "in"), author="user",
                              channel="messenger", external_id=f"{name}-{self.tag}-{uuid.uuid4().hex[:6]}",
                              text=text, status=kw.pop("status", "done"), created_at=ago(days), **kw))

            for name in ("closed_old", "open_old", "nocase_old"):
                msg(name, 100, "tin nhắn cũ")
                msg(name, 99, "trả lời cũ", direction="out", status="sent")
            msg("closed_old", 100, "chưa xử lý", status="pending")  # the inbox still has to handle it
            msg("recent", 1, "tin nhắn mới")
            msg("mixed", 100, "tin cũ")
            msg("mixed", 2, "tin mới")
            for name, days in (("closed_old", 100), ("open_old", 100), ("mixed", 100), ("mixed", 2)):
                s.add(Location(conversation_id=self.ids[name], source="zalo", lat=21.0, lon=105.8, resolved={},
                               created_at=ago(days)))
            s.add(Case(conversation_id=self.ids["closed_old"], priority="at_risk", reason="r", summary={"age": 15},
                       outcome="information", opened_at=ago(100), closed_at=ago(95)))
            s.add(Case(conversation_id=self.ids["open_old"], priority="emergency", reason="r", summary={},
                       opened_at=ago(100)))
            s.add(Case(conversation_id=self.ids["mixed"], priority="request", reason="r", summary={},
                       outcome="information", opened_at=ago(3), closed_at=ago(2)))
            s.add(LocationToken(token_hash=uuid.uuid4().hex, conversation_id=self.ids["recent"], expires_at=ago(0.5)))
            s.add(LocationToken(token_hash=uuid.uuid4().hex, conversation_id=self.ids["recent"],
                                expires_at=NOW + timedelta(hours=1)))
            await s.commit()
        return self

    async def texts(self, sessions: Any, name: str) -> list[str]:
        async with sessions() as s:
            return list(await s.scalars(select(Message.text).where(Message.conversation_id == self.ids[name])
                                        .order_by(Message.id)))

    async def locations(self, sessions: Any, name: str) -> int:
        async with sessions() as s:
            return await s.scalar(select(func.count()).select_from(Location)
                                  .where(Location.conversation_id == self.ids[name]))

    async def conversation(self, sessions: Any, name: str) -> Conversation | None:
        async with sessions() as s:
            return await s.get(Conversation, self.ids[name])


async def snapshot(sessions: Any) -> dict[str, int]:
    async with sessions() as s:
        return {m.__name__: await s.scalar(select(func.count()).select_from(m))
                for m in (Message, Location, Conversation, LocationToken, Case)}


async def test_purge_keeps_open_cases_and_recent_data_and_removes_the_rest(sessions, tracker):
    world = await World().build(sessions)
    await add_tracker_events(tracker, f"messenger-{world.user('closed_old')}", 100, 99)
    await add_tracker_events(tracker, f"messenger-{world.user('open_old')}", 100)
    await add_tracker_events(tracker, f"messenger-{world.user('recent')}", 1)

    before = await snapshot(sessions)
    dry = await retention.purge(sessions, 90, dry_run=True, now=NOW, tracker_url=tracker)
    assert await snapshot(sessions) == before, "a dry run changed something"
    assert len(await tracker_events(tracker)) == 4
    report = await retention.purge(sessions, 90, now=NOW, tracker_url=tracker)
    assert {k: v for k, v in dry.as_dict().items() if k != "dry_run"} == \
        {k: v for k, v in report.as_dict().items() if k != "dry_run"}

    # closed long ago: transcript and places gone (but not what the inbox still owes), case kept
    assert await world.texts(sessions, "closed_old") == ["chưa xử lý"]
    assert await world.locations(sessions, "closed_old") == 0
    closed = await world.conversation(sessions, "closed_old")
    assert closed is not None and closed.summary == {}
    # an open case keeps everything, however old
    assert await world.texts(sessions, "open_old") == ["tin nhắn cũ", "trả lời cũ"]
    assert await world.locations(sessions, "open_old") == 1
    assert (await world.conversation(sessions, "open_old")).summary == {"where": "Lào Cai"}
    # nothing left and no case: the conversation (the platform id) goes too
    assert await world.conversation(sessions, "nocase_old") is None
    assert await world.texts(sessions, "recent") == ["tin nhắn mới"]
    assert await world.texts(sessions, "mixed") == ["tin mới"] and await world.locations(sessions, "mixed") == 1
    assert report.messages >= 5 and report.locations >= 2 and report.conversations >= 1
    assert report.location_tokens >= 1 and report.tracker_events == 2
    left = {r.sender_id for r in await tracker_events(tracker)}
    assert left == {f"messenger-{world.user('open_old')}", f"messenger-{world.user('recent')}"}
    async with sessions() as s:
        audit = await s.scalar(select(AuditEntry).where(AuditEntry.action == "retention_purge")
                               .order_by(AuditEntry.id.desc()).limit(1))
    assert audit.detail["messages"] == report.messages
    # and a second run finds nothing more
    again = await retention.purge(sessions, 90, now=NOW, tracker_url=tracker)
    assert (again.messages, again.locations, again.conversations, again.tracker_events) == (0, 0, 0, 0)


async def test_purge_housekeeping_of_sessions_and_sign_in_failures(sessions):
    from bot import accounts

    async with sessions() as s:
        account = await accounts.create_account(s, f"ret-{uuid.uuid4().hex[:6]}", "counselor", "Long-enough-pw-1")
        await s.flush()
        s.add(StaffSession(token_hash=uuid.uuid4().hex, account_id=account.id, csrf_token="x", created_at=ago(200),
                           last_seen_at=ago(200), expires_at=ago(199)))
        s.add(StaffSession(token_hash=uuid.uuid4().hex, account_id=account.id, csrf_token="y", created_at=NOW,
                           last_seen_at=NOW, expires_at=NOW + timedelta(hours=1)))
        s.add(LoginFailure(username="someone", ip="10.0.0.1", at=ago(2)))
        s.add(LoginFailure(username="someone", ip="10.0.0.1", at=NOW))
        await s.commit()
    report = await retention.purge(sessions, 90, now=NOW)
    assert report.staff_sessions >= 1 and report.login_failures >= 1
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(StaffSession)
                              .where(StaffSession.account_id == account.id)) == 1
        assert await s.scalar(select(func.count()).select_from(LoginFailure).where(LoginFailure.at > ago(1))) >= 1


async def test_a_retention_period_below_one_day_is_refused(sessions):
    with pytest.raises(ValueError):
        await retention.purge(sessions, 0)


async def test_export_then_erase_one_person(sessions, tracker):
    world = await World().build(sessions)
    user = world.user("closed_old")
    await add_tracker_events(tracker, f"messenger-{user}", 3, 2)
    await add_tracker_events(tracker, f"messenger-{world.user('recent')}", 1)

    data = await retention.export_person(sessions, "messenger", user, tracker_url=tracker, operator="tester")
    assert data["conversation"]["user_id"] == user and "lease_owner" not in data["conversation"]
    assert [m["text"] for m in data["messages"]] == ["tin nhắn cũ", "trả lời cũ", "chưa xử lý"]
    assert len(data["locations"]) == 1 and data["cases"][0]["outcome"] == "information"
    assert len(data["rasa_tracker_events"]) == 2 and data["rasa_tracker_events"][0]["data"]["text"] == "xin chao"
    json.dumps(data)  # serialisable as it is

    with pytest.raises(retention.PersonNotFound):
        await retention.export_person(sessions, "zalo", user)
    with pytest.raises(retention.CaseStillOpen):
        await retention.erase_person(sessions, "messenger", world.user("open_old"))

    report = await retention.erase_person(sessions, "messenger", user, tracker_url=tracker, operator="tester")
    assert (report.messages, report.locations, report.cases, report.tracker_events) == (3, 1, 1, 2)
    assert await world.conversation(sessions, "closed_old") is None
    assert await tracker_events(tracker, f"messenger-{user}") == []
    assert len(await tracker_events(tracker, f"messenger-{world.user('recent')}")) == 1
    async with sessions() as s:
        rows = list(await s.scalars(select(AuditEntry).where(AuditEntry.target == f"conversation:{report.conversation_id}")
                                    .order_by(AuditEntry.id)))
    assert [r.action for r in rows][-2:] == ["person_export", "person_erase"]
    assert user not in json.dumps([r.detail for r in rows]) and "tin nhắn" not in json.dumps([r.detail for r in rows])
    forced = await retention.erase_person(sessions, "messenger", world.user("open_old"), force=True)
    assert forced.cases == 1 and await world.conversation(sessions, "open_old") is None


# ---------------------------------------------------------------- the commands


def run_bot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TRACKER_DATABASE_URL",
                                                             "RETENTION_DAYS", "HOTLINE_ENV_FILE")}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=PROJECT_ROOT, env={**full, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
async def one_sessions(one_database: str):
    engine = async_engine(one_database)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def test_the_commands(one_database, one_sessions, tracker, tmp_path):
    """The commands on one backend (PostgreSQL when available): what they call is tested on both."""
    database, sessions = one_database, one_sessions
    world = await World().build(sessions)
    user = world.user("closed_old")
    await add_tracker_events(tracker, f"messenger-{user}", 2)
    env = {"DATABASE_URL": database, "TRACKER_DATABASE_URL": tracker, "LOG_FORMAT": "json"}

    exported = run_bot("person", "export", "messenger", user, env=env)
    assert exported.returncode == 0, exported.stderr
    assert [m["text"] for m in json.loads(exported.stdout)["messages"]][0] == "tin nhắn cũ"
    assert "tin nhắn cũ" not in exported.stderr  # the log lines say what happened, not what was written
    out = tmp_path / "person.json"
    to_file = run_bot("person", "export", "messenger", user, "--out", str(out), env=env)
    assert to_file.returncode == 0 and "3 messages" in to_file.stdout
    assert oct(out.stat().st_mode & 0o777) == "0o600" and json.loads(out.read_text())["user_id"] == user

    missing = run_bot("person", "export", "messenger", "nobody-" + world.tag, env=env)
    assert missing.returncode == 2 and "nothing is stored" in missing.stderr
    refused = run_bot("person", "erase", "messenger", world.user("open_old"), env=env)
    assert refused.returncode == 2 and "--force" in refused.stderr
    erased = run_bot("person", "erase", "messenger", user, env=env)
    assert erased.returncode == 0 and "1 Rasa tracker events" in erased.stdout, erased.stderr

    dry = run_bot("retention", "purge", "--dry-run", env={**env, "RETENTION_DAYS": "30"})
    assert dry.returncode == 0 and dry.stdout.startswith("would purge data older than"), dry.stderr
    assert await world.texts(sessions, "nocase_old") == ["tin nhắn cũ", "trả lời cũ"]
    done = run_bot("retention", "purge", "--days", "30", env=env)
    assert done.returncode == 0 and done.stdout.startswith("purged"), done.stderr
    assert await world.texts(sessions, "nocase_old") == []
    bad = run_bot("retention", "purge", env={**env, "RETENTION_DAYS": "soon"})
    assert bad.returncode == 2 and "RETENTION_DAYS" in bad.stderr
