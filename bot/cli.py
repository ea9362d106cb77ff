"""`python -m bot [command]`: serve the gateway (default) and the operator commands.

Each command prints what it did and exits non-zero with a clear message on bad input.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path

from bot.settings import Settings, load_env_file

logger = logging.getLogger(__name__)
ROLES = ("counselor", "supervisor", "content_editor", "admin")


class CommandError(Exception):
    """A bad input to a command: printed without a traceback, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot", description="Anti-TIP hotline gateway and tools")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the gateway (the default)")
    sub.add_parser("migrate", help="apply database migrations and seed the content store")
    train = sub.add_parser("train", help="train the Rasa model if the training data changed")
    train.add_argument("--force", action="store_true")
    sub.add_parser("run-all", help="start Rasa, the action server and the gateway together")

    users = sub.add_parser("users", help="staff accounts").add_subparsers(dest="action", required=True)
    add = users.add_parser("add", help="create an account; the password is read from stdin")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--center", choices=("hanoi", "danang", "angiang"))
    users.add_parser("list", help="list accounts")

    agencies = sub.add_parser("agencies", help="recruitment-agency registry").add_subparsers(dest="action", required=True)
    imp = agencies.add_parser("import", help="import the official list from CSV")
    imp.add_argument("file", type=Path)
    imp.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")

    content = sub.add_parser("content", help="content store").add_subparsers(dest="action", required=True)
    content.add_parser("export", help="write the database's answers and phrases back to content/")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if os.environ.get("HOTLINE_ENV_FILE"):
        load_env_file(Path(os.environ["HOTLINE_ENV_FILE"]))
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = args.command or "serve"
    try:
        if command == "serve":
            from bot.app import serve

            serve(settings)
        elif command == "migrate":
            print(migrate(settings))
        elif command == "train":
            from bot.training import train

            train(force=args.force)
        elif command == "run-all":
            from bot.run_all import run_all

            return run_all(settings)
        elif command == "users":
            print(asyncio.run(users(settings, args)))
        elif command == "agencies":
            print(asyncio.run(agencies_import(settings, args.file, args.dry_run)))
        elif command == "content":
            print(asyncio.run(content_export(settings)))
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def migrate(settings: Settings) -> str:
    from bot.bootstrap import prepare_database

    return asyncio.run(prepare_database(settings))


async def users(settings: Settings, args: argparse.Namespace) -> str:
    from bot import accounts
    from bot.db.session import async_engine, session_factory

    engine = async_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            if args.action == "list":
                rows = await accounts.list_accounts(session)
                return "\n".join(f"{a.username}\t{a.role}\t{a.center or '-'}\t{'active' if a.active else 'disabled'}"
                                 for a in rows) or "no accounts"
            password = _read_password()
            try:
                account = await accounts.create_account(session, args.name, args.role, password, center=args.center)
            except accounts.AccountError as exc:
                raise CommandError(str(exc)) from exc
            await session.commit()
            return f"created {account.role} account {account.username!r}"
    finally:
        await engine.dispose()


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CommandError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    return password


async def agencies_import(settings: Settings, path: Path, dry_run: bool) -> str:
    from bot import agencies
    from bot.db.session import async_engine, session_factory

    if not path.is_file():
        raise CommandError(f"no such file: {path}")
    engine = async_engine(settings.database_url)
    try:
        try:
            plan = await agencies.import_file(session_factory(engine), path, dry_run)
        except agencies.CsvError as exc:
            raise CommandError(f"{path}: row {exc.row}: {exc.error}; nothing was changed") from exc
    finally:
        await engine.dispose()
    d = plan.as_dict()
    verb = "would change" if dry_run else "imported"
    return f"{verb}: {len(d['added'])} added, {len(d['changed'])} changed, {len(d['removed'])} removed"


async def content_export(settings: Settings) -> str:
    from bot.bootstrap import export_content

    return await export_content(settings)
