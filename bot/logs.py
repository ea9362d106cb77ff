"""Structured logging: one JSON object per line, with event names, ids, durations and counts.

Nothing here logs what people wrote. The rules the code follows, and this module enforces where it
can:

- a log line names an *event* (the message template, e.g. ``"message %s to conversation %s
  failed: %s"``) and carries ids, statuses, counts and durations — never message text, names,
  coordinates or platform user ids;
- database errors carry their SQL parameters (which may be a message's text) in their string
  form: the formatter cuts ``[parameters: ...]`` out of every message and traceback;
- the HTTP access log records the *route* (``/l/{token}``, never the token), the status and the
  duration, not the client's address or the query string.

``configure(level, fmt)`` is called by the command line (``python -m bot``); ``fmt`` is ``json``,
``text`` or ``auto`` (text on a terminal, JSON otherwise: systemd's journal, containers).
"""
from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import datetime, timezone
from typing import IO, Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Where database drivers put values: SQLAlchemy's "[parameters: ...]" (up to its "(Background on
# this error" line), asyncpg's "invalid input for query argument $3: 'value'", PostgreSQL's
# "DETAIL:  Key (col)=(value) already exists".
_SCRUB = (
    (re.compile(r"\[(?:SQL )?parameters: .*?(?=\n\(Background on this error|\Z)", re.DOTALL), "[parameters: hidden]"),
    (re.compile(r"(query argument \$\d+)[^\n]*"), r"\1: hidden"),
    (re.compile(r"DETAIL:[^\n]*"), "DETAIL: hidden"),
)
_FIELD_TYPES = (str, int, float, bool, type(None))
MAX_MESSAGE = 2000


def scrub(text: str) -> str:
    """Remove SQL parameters (which may hold what a person wrote) from error texts."""
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


def _field(value: Any) -> Any:
    if isinstance(value, _FIELD_TYPES):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _FIELD_TYPES) for v in value):
        return list(value)
    return repr(value)[:200]


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "event", "message", ...fields, "error"?}` on one line.

    `event` is the unformatted template: stable across occurrences, so it can be counted and
    alerted on; `message` is the formatted line (ids and counts filled in)."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = str(record.msg)
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": str(record.msg)[:200],
            "message": scrub(message)[:MAX_MESSAGE],
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = _field(value)
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__
            out["traceback"] = scrub("".join(traceback.format_exception(*record.exc_info)))[-8000:]
        elif record.exc_text:
            out["traceback"] = scrub(record.exc_text)[-8000:]
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The development format, with the same scrubbing of SQL parameters."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure(level: str = "INFO", fmt: str = "auto", stream: IO[str] | None = None) -> logging.Handler:
    """Send every logger's records to `stream` (stderr) in the chosen format. Idempotent: an
    earlier handler installed by this function is replaced."""
    stream = stream or sys.stderr
    if fmt not in ("json", "text", "auto"):
        raise ValueError(f"LOG_FORMAT must be json, text or auto, not {fmt!r}")
    if fmt == "auto":
        fmt = "text" if getattr(stream, "isatty", lambda: False)() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name("hotline")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "hotline"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log a named event with fields: `event(logger, "retention_purged", messages=12)`."""
    logger.log(level, name, extra={k: _field(v) for k, v in fields.items()})


class AccessLogger(AbstractAccessLogger):
    """One `http_request` line per request: method, route template, status, duration. No client
    address, no query string, no path parameters (a share-location token is a secret)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, duration: float) -> None:
        route = "unmatched"
        match_info = getattr(request, "match_info", None)
        resource = getattr(getattr(match_info, "route", None), "resource", None)
        if resource is not None:
            route = resource.canonical
        status = response.status
        level = logging.WARNING if status >= 500 else logging.INFO
        self.logger.log(level, "http_request", extra={
            "method": request.method, "route": route, "status": status,
            "duration_ms": round(duration * 1000, 2)})
