"""Which counselors are online, across gateway replicas.

An open console WebSocket heartbeats `Account.last_seen_at` every HEARTBEAT seconds (so does a
sign-in); an account is online while it was seen in the last ONLINE_WINDOW and has a casework role.
Because the mark lives in the database, every replica sees the same answer.

When a browser goes away, `went_away` back-dates the mark so that the account drops out within
GONE_GRACE unless another open console (on any replica) heartbeats again before then.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from bot.db.models import Account, utcnow

logger = logging.getLogger(__name__)
ONLINE_WINDOW = timedelta(seconds=90)
HEARTBEAT = timedelta(seconds=20)
GONE_GRACE = HEARTBEAT + timedelta(seconds=5)
CASEWORK_ROLES = ("counselor", "supervisor", "admin")


async def heartbeat(session: Any, account_id: int, now: datetime | None = None) -> None:
    """Mark the account as seen now. The caller commits."""
    await session.execute(update(Account).where(Account.id == account_id).values(last_seen_at=now or utcnow()))


async def went_away(session: Any, account_id: int, now: datetime | None = None) -> None:
    """The account's console closed here: let it drop out soon unless it is open elsewhere."""
    now = now or utcnow()
    soon_gone = now - ONLINE_WINDOW + GONE_GRACE
    await session.execute(update(Account).where(Account.id == account_id, Account.last_seen_at > soon_gone)
                          .values(last_seen_at=soon_gone))


def _online_filter(now: datetime, roles: tuple[str, ...]) -> list[Any]:
    return [Account.active.is_(True), Account.role.in_(roles), Account.last_seen_at.is_not(None),
            Account.last_seen_at > now - ONLINE_WINDOW]


def _center_filter(center: str, fallback: str | None) -> Any:
    """Accounts of the center; accounts without a center belong to the fallback (operation) center."""
    if fallback is not None and center == fallback:
        return or_(Account.center == center, Account.center.is_(None))
    return Account.center == center


async def online_accounts(session: Any, *, center: str | None = None, fallback: str | None = "hanoi",
                          roles: tuple[str, ...] = CASEWORK_ROLES, now: datetime | None = None) -> list[Account]:
    """Online accounts with one of `roles`, of `center` when given."""
    conditions = _online_filter(now or utcnow(), roles)
    if center is not None:
        conditions.append(_center_filter(center, fallback))
    return list(await session.scalars(select(Account).where(*conditions).order_by(Account.username)))


async def anyone_online(session: Any, *, center: str | None = None, fallback: str | None = "hanoi",
                        roles: tuple[str, ...] = CASEWORK_ROLES, now: datetime | None = None) -> bool:
    conditions = _online_filter(now or utcnow(), roles)
    if center is not None:
        conditions.append(_center_filter(center, fallback))
    return bool(await session.scalar(select(func.count()).select_from(Account).where(*conditions)))


def is_online(account: Account, now: datetime | None = None) -> bool:
    from bot.outbox import _aware

    seen = _aware(account.last_seen_at)
    return bool(account.active and seen is not None and seen > (now or utcnow()) - ONLINE_WINDOW)
