"""The SQLite driver of the gateway: aiosqlite, with one writer at a time per process queued
fairly in asyncio, and one trip to the driver's thread per statement.

SQLite lets one connection write at a time; another that wants to write waits in SQLite's busy
handler, sleeping and polling in its aiosqlite thread. With kept (pooled) connections that wait
can freeze the whole gateway: when the garbage collector frees a cursor of a waiting connection
on the event-loop thread, `sqlite3_reset` blocks on that connection's mutex while holding the
GIL, and the writer everyone waits for can no longer run until the busy timeout (15 s) ends.
Under load this cascaded into webhooks answered 500 after 15 s.

This dialect takes a per-database asyncio lock before a connection's first writing statement and
releases it after its COMMIT or ROLLBACK, so in-process writers queue in the event loop (first
come, first served) and never poll inside SQLite; the busy handler is left for other processes
(a command run beside the gateway). Reads never take the lock (WAL: readers do not block).

SQLAlchemy's aiosqlite adapter makes four trips to aiosqlite's thread per statement (open a
cursor, execute, fetch, close), each a thread hand-over and an event-loop wake-up, and leaves
the cursor to the garbage collector when the statement fails. `OneTripCursor` does the four in
one function on that thread and always closes the cursor there.
"""
from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy import exc
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util import await_only

DRIVER = "hotline_aiosqlite"
LOCK_TIMEOUT_S = 15.0  # as SQLite's busy_timeout: a writer stuck this long is an error, not a hang
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")

# one lock per database file and event loop (tests run several loops one after another)
_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]]" = weakref.WeakKeyDictionary()


def write_lock(database: str) -> asyncio.Lock:
    per_loop = _locks.setdefault(asyncio.get_running_loop(), {})
    return per_loop.setdefault(database, asyncio.Lock())


def _is_write(statement: str) -> bool:
    return statement.lstrip()[:16].upper().startswith(_WRITES)


def _adapted(connection: Any) -> Any:
    """The aiosqlite adapter behind a pool proxy, a cursor's connection or the adapter itself."""
    return getattr(connection, "dbapi_connection", None) or connection


def _run_statement(conn: Any, operation: str, parameters: Any, many: bool) -> tuple[Any, list, int, int]:
    """On aiosqlite's thread: the whole statement, cursor closed whatever happens."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        if cursor.description:
            return cursor.description, cursor.fetchall(), -1, -1
        return None, [], cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _run(self, operation: str, parameters: Any, many: bool) -> None:
        aio = self._connection  # aiosqlite.Connection; _execute and _conn are its own (0.22)
        try:
            self.description, self._rows, self.lastrowid, self.rowcount = self.await_(
                aio._execute(lambda: _run_statement(aio._conn, operation, parameters, many)))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def execute(self, operation, parameters=None):
        self._run(operation, parameters, False)

    def executemany(self, operation, seq_of_parameters):
        self._run(operation, seq_of_parameters, True)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side=False):
        return super().cursor(server_side) if server_side else OneTripCursor(self)


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        kw.pop("async_fallback", None)
        kw["check_same_thread"] = False  # as SQLAlchemy's adapter: every call runs on the one thread
        connection = self.aiosqlite.connect(*arg, **kw)
        connection.daemon = True
        return OneTripConnection(self, await_only(connection))


class SerializedWritesDialect(SQLiteDialect_aiosqlite):
    """aiosqlite with in-process writes in turn; `database_path` is set by `bot.db.session`."""

    driver = DRIVER
    supports_statement_cache = True
    database_path = ""

    @classmethod
    def dbapi(cls) -> OneTripDBAPI:
        return OneTripDBAPI(__import__("aiosqlite"), __import__("sqlite3"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns: dict[int, asyncio.Lock] = {}  # id(aiosqlite adapter) -> the lock it holds

    def _take_turn(self, cursor: Any, statement: str) -> None:
        key = id(cursor._adapt_connection)
        if key in self._turns or not _is_write(statement):
            return
        lock = write_lock(self.database_path)
        try:
            await_only(asyncio.wait_for(lock.acquire(), LOCK_TIMEOUT_S))
        except asyncio.TimeoutError:
            raise exc.OperationalError(statement, None, Exception(
                f"database is locked: no write turn within {LOCK_TIMEOUT_S:.0f} s")) from None
        self._turns[key] = lock

    def _end_turn(self, dbapi_connection: Any) -> None:
        lock = self._turns.pop(id(_adapted(dbapi_connection)), None)
        if lock is not None:
            lock.release()

    def do_execute(self, cursor, statement, parameters, context=None):
        self._take_turn(cursor, statement)
        super().do_execute(cursor, statement, parameters, context)

    def do_executemany(self, cursor, statement, parameters, context=None):
        self._take_turn(cursor, statement)
        super().do_executemany(cursor, statement, parameters, context)

    def do_execute_no_params(self, cursor, statement, context=None):
        self._take_turn(cursor, statement)
        super().do_execute_no_params(cursor, statement, context)

    def do_commit(self, dbapi_connection):
        try:
            super().do_commit(dbapi_connection)
        finally:
            self._end_turn(dbapi_connection)

    def do_rollback(self, dbapi_connection):
        try:
            super().do_rollback(dbapi_connection)
        finally:
            self._end_turn(dbapi_connection)

    def do_close(self, dbapi_connection):
        try:
            super().do_close(dbapi_connection)
        finally:
            self._end_turn(dbapi_connection)


def register() -> None:
    """Make `sqlite+hotline_aiosqlite://` known to SQLAlchemy (idempotent)."""
    registry.register(f"sqlite.{DRIVER}", __name__, "SerializedWritesDialect")
