"""Storage for tokens that rotate (Zalo's access token and its single-use refresh token).

A refresh must happen once, everywhere: the refresh token is consumed by the first refresh, so two
workers refreshing at once break the chain until an OA admin re-authorises the app. Callers take
`store.lock()`, re-read with `load()`, refresh only if nobody else did, and `save()` both tokens
and their expiry together.

`lock()` is the only coordination API: an async context manager with no arguments, so a Redis lock
(`redis.asyncio.lock.Lock` is one) can stand in for the database lock when several replicas run.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import AsyncContextManager, AsyncIterator, Protocol

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.db.models import PlatformToken
from bot.dbutil import lock_across_replicas

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None = None  # timezone-aware UTC; None when unknown

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return self.expires_at - (now or datetime.now(timezone.utc)) < timedelta(seconds=seconds)

    def __repr__(self) -> str:  # never print the secrets themselves
        return f"Tokens(access_token=<{len(self.access_token)} chars>, refresh_token=<hidden>, " \
               f"expires_at={self.expires_at!r})"


class TokenStore(Protocol):
    async def load(self) -> Tokens | None: ...

    async def save(self, tokens: Tokens) -> None: ...

    def lock(self) -> AsyncContextManager[None]: ...


class MemoryTokenStore:
    """Tokens in process memory: tests, and a single-process gateway without a database."""

    def __init__(self, initial: Tokens | None = None) -> None:
        self._tokens = initial
        self._lock = asyncio.Lock()
        self.saves = 0

    async def load(self) -> Tokens | None:
        return self._tokens

    async def save(self, tokens: Tokens) -> None:
        self._tokens = tokens
        self.saves += 1

    def lock(self) -> AsyncContextManager[None]:
        return self._lock


# The session holding the database lock, per task: load()/save() inside lock() must use the locked
# transaction (on PostgreSQL a second connection would wait on the first; on SQLite it would fail).
_HELD: contextvars.ContextVar[tuple[DbTokenStore, AsyncSession] | None] = contextvars.ContextVar(
    "token_store_held", default=None)


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything here is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


class DbTokenStore:
    """Tokens in `ops_platform_token`, seeded from `initial` (the environment's tokens) when the
    row does not exist yet; afterwards the database is the source of truth.

    `lock()` serialises refreshes within the process (asyncio.Lock) and across processes: a
    transaction holding `pg_advisory_xact_lock` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite (which
    also holds SQLite's write lock for that time: keep the work inside short).
    """

    def __init__(self, sessions: sessionmaker, name: str = "zalo", initial: Tokens | None = None, *,
                 lock_timeout_s: float = 30.0) -> None:
        self._sessions = sessions
        self._name = name
        self._initial = initial
        self._local = asyncio.Lock()
        self._lock_timeout_s = lock_timeout_s

    def _held_session(self) -> AsyncSession | None:
        held = _HELD.get()
        return held[1] if held is not None and held[0] is self else None

    async def load(self) -> Tokens | None:
        session = self._held_session()
        if session is not None:
            return await self._load_in(session)
        async with self._sessions() as session:
            try:
                tokens = await self._load_in(session)
                await session.commit()
                return tokens
            except IntegrityError:  # another process seeded the row at the same moment
                await session.rollback()
                row = await session.get(PlatformToken, self._name)
                return self._tokens(row) if row is not None else None

    async def save(self, tokens: Tokens) -> None:
        session = self._held_session()
        if session is not None:
            await self._save_in(session, tokens)
            return
        async with self._sessions() as session:
            await self._save_in(session, tokens)
            await session.commit()

    @asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        async with self._local:
            async with self._sessions() as session:
                await self._acquire(session)
                held = _HELD.set((self, session))
                try:
                    yield
                except BaseException:
                    await session.rollback()
                    raise
                else:
                    await session.commit()
                finally:
                    _HELD.reset(held)

    async def _acquire(self, session: AsyncSession) -> None:
        connection = await session.connection()
        if connection.dialect.name == "postgresql":
            timeout_ms = int(self._lock_timeout_s * 1000)
            await session.execute(text(f"SET LOCAL lock_timeout = {timeout_ms}"))
            await lock_across_replicas(session, f"platform_token:{self._name}")
            return
        await self._begin_immediate(session)

    async def _begin_immediate(self, session: AsyncSession) -> None:
        """SQLite: take the write lock now. busy_timeout makes each attempt wait; retry until
        lock_timeout_s so that a refresh slower than busy_timeout in another process is waited for."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lock_timeout_s
        while True:
            connection = await session.connection()
            try:
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                await session.rollback()
                if "locked" not in str(exc.orig).lower() or loop.time() >= deadline:
                    raise
                logger.info("token store: waiting for another process's refresh")
                await asyncio.sleep(0.05)

    async def _load_in(self, session: AsyncSession) -> Tokens | None:
        row = await session.get(PlatformToken, self._name, populate_existing=True)
        if row is None and self._initial is not None:
            row = self._row(self._initial)
            session.add(row)
            await session.flush()
            logger.info("token store: seeded %r from the configured tokens", self._name)
        return self._tokens(row) if row is not None else None

    async def _save_in(self, session: AsyncSession, tokens: Tokens) -> None:
        result = await session.execute(select(PlatformToken).where(PlatformToken.name == self._name))
        row = result.scalar_one_or_none()
        if row is None:
            session.add(self._row(tokens))
        else:
            row.access_token = tokens.access_token
            row.refresh_token = tokens.refresh_token
            row.expires_at = tokens.expires_at
            row.updated_at = datetime.now(timezone.utc)
        await session.flush()

    def _row(self, tokens: Tokens) -> PlatformToken:
        return PlatformToken(name=self._name, access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                             expires_at=tokens.expires_at, updated_at=datetime.now(timezone.utc))

    @staticmethod
    def _tokens(row: PlatformToken) -> Tokens:
        return Tokens(access_token=row.access_token, refresh_token=row.refresh_token,
                      expires_at=_aware(row.expires_at))
