"""Staff accounts: argon2 password hashes, roles, creation and sign-in checks."""
from __future__ import annotations

import logging
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Account

logger = logging.getLogger(__name__)
ROLES = ("counselor", "supervisor", "content_editor", "admin")
CENTERS = ("hanoi", "danang", "angiang")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
_hasher = PasswordHasher()
# Verifying against this keeps the time of a sign-in with an unknown name like a known one.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class AccountError(Exception):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def create_account(session: AsyncSession, username: str, role: str, password: str,
                         *, center: str | None = None, display_name: str | None = None) -> Account:
    if not _NAME.match(username):
        raise AccountError("the name must be 2-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    if center is not None and center not in CENTERS:
        raise AccountError(f"unknown center {center!r}; choose from {', '.join(CENTERS)}")
    if len(password) < 10:
        raise AccountError("the password must have at least 10 characters")
    if await session.scalar(select(Account.id).where(Account.username == username)):
        raise AccountError(f"an account named {username!r} already exists")
    account = Account(username=username, role=role, password_hash=hash_password(password),
                      center=center, display_name=display_name or username)
    session.add(account)
    await session.flush()
    return account


async def authenticate(session: AsyncSession, username: str, password: str) -> Account | None:
    account = await session.scalar(select(Account).where(Account.username == username))
    if account is None or not account.active:
        check_password(_DUMMY_HASH, password)
        return None
    return account if check_password(account.password_hash, password) else None


async def list_accounts(session: AsyncSession) -> list[Account]:
    return list(await session.scalars(select(Account).order_by(Account.username)))
