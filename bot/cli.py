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

    zalo = sub.add_parser("zalo", help="Zalo OA tokens").add_subparsers(dest="action", required=True)
    zalo.add_parser("set-tokens", help="store a new access and refresh token after an OA admin authorised "
                                        "the app again (two lines on stdin: access token, refresh token)")

    content = sub.add_parser("content", help="content store").add_subparsers(dest="action", required=True)
    content.add_parser("export", help="write the database's answers and phrases back to content/")

    retention = sub.add_parser("retention", help="data retention").add_subparsers(dest="action", required=True)
    purge = retention.add_parser("purge", help="delete transcripts and locations older than RETENTION_DAYS "
                                               "unless their case is open")
    purge.add_argument("--days", type=int, help="override RETENTION_DAYS")
    purge.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")

    person = sub.add_parser("person", help="one person's data").add_subparsers(dest="action", required=True)
    export = person.add_parser("export", help="print everything stored about a person as JSON")
    erase = person.add_parser("erase", help="delete everything stored about a person")
    for p_ in (export, erase):
        p_.add_argument("channel", choices=("messenger", "zalo"))
        p_.add_argument("user_id", help="the platform's id of the person (PSID or Zalo user id)")
    export.add_argument("--out", type=Path, help="write to this file (mode 600) instead of stdout")
    erase.add_argument("--force", action="store_true", help="erase even while the case is open")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if os.environ.get("HOTLINE_ENV_FILE"):
        load_env_file(Path(os.environ["HOTLINE_ENV_FILE"]))
    try:
        settings = Settings.from_env()
        from bot.logs import configure

        configure(settings.log_level, settings.log_format)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
        elif command == "zalo":
            print(asyncio.run(zalo_set_tokens(settings)))
        elif command == "retention":
            print(asyncio.run(retention_purge(settings, args.days, args.dry_run)))
        elif command == "person":
            print(asyncio.run(person(settings, args)))
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


def _operator() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


async def retention_purge(settings: Settings, days: int | None, dry_run: bool) -> str:
    from bot import retention
    from bot.db.session import async_engine, session_factory

    days = settings.retention_days if days is None else days
    if days < 1:
        raise CommandError("--days must be at least 1")
    engine = async_engine(settings.database_url)
    try:
        report = await retention.purge(session_factory(engine), days, dry_run=dry_run,
                                       tracker_url=settings.tracker_database_url)
    except RuntimeError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        await engine.dispose()
    return report.describe()


async def person(settings: Settings, args: argparse.Namespace) -> str:
    import json

    from bot import retention
    from bot.db.session import async_engine, session_factory

    engine = async_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        if args.action == "export":
            data = await retention.export_person(sessions, args.channel, args.user_id,
                                                 tracker_url=settings.tracker_database_url, operator=_operator())
            text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
            if args.out is None:
                return text
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            return (f"wrote {args.out}: {len(data['messages'])} messages, {len(data['locations'])} locations, "
                    f"{len(data['cases'])} cases")
        report = await retention.erase_person(sessions, args.channel, args.user_id, force=args.force,
                                              tracker_url=settings.tracker_database_url, operator=_operator())
        return report.describe()
    except (retention.PersonNotFound, retention.CaseStillOpen) as exc:
        raise CommandError(str(exc.args[0])) from exc
    finally:
        await engine.dispose()


async def zalo_set_tokens(settings: Settings) -> str:
    """The stored tokens win over the environment after the first start (they rotate), so a new
    authorisation is stored here, under the same lock the refresh uses."""
    from bot.db.session import async_engine, session_factory
    from channels.tokens import DbTokenStore, Tokens

    lines = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
    if len(lines) != 2:
        raise CommandError("give two lines on stdin: the access token, then the refresh token")
    engine = async_engine(settings.database_url)
    try:
        store = DbTokenStore(session_factory(engine), "zalo")
        async with store.lock():
            await store.save(Tokens(lines[0], lines[1], None))
    finally:
        await engine.dispose()
    return "stored the new Zalo tokens; the gateway uses them from its next send"
