"""Structured logs (bot/logs.py): JSON lines with event names, ids and durations, and never what a
person wrote, their platform id or where they are — checked by driving the gateway through its
ordinary and its failing paths with every log record captured."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import IntegrityError

from bot.logs import AccessLogger, JsonFormatter, TextFormatter, configure, event, scrub
from bot.settings import PROJECT_ROOT
from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import (encode, messenger_location_event, messenger_text_event, sign_messenger,
                                  sign_zalo, zalo_text_event, ZALO_APP_ID)
from tests.fakes.rasa import FakeRasa
from tests.fakes.zalo import FakeZalo
from tests.gateway.conftest import eventually
from tests.production.inproc import APP_SECRET, OA_SECRET, gateway_settings, replica

SECRET_TEXT = "toi ten la Nguyen Thi Bi mat o so nha 42"
RISK_TEXT = "em bị nhốt ở đây, cứu em Bi mat"
PSID = "psid-personal-9988776655"
ZALO_USER = "zalo-personal-5544332211"
LAT, LON = "21.0345678", "105.8123456"


def record(msg: str, *args, exc: BaseException | None = None, **extra) -> logging.LogRecord:
    rec = logging.makeLogRecord({"name": "bot.test", "levelno": logging.ERROR, "levelname": "ERROR", "msg": msg,
                                 "args": args, **extra})
    if exc is not None:
        rec.exc_info = (type(exc), exc, exc.__traceback__)
    return rec


def test_a_json_line_has_the_event_template_the_message_and_the_fields():
    line = JsonFormatter().format(record("message %s to conversation %s failed", 12, 7, duration_ms=3.5))
    out = json.loads(line)
    assert out["event"] == "message %s to conversation %s failed"
    assert out["message"] == "message 12 to conversation 7 failed"
    assert out["level"] == "error" and out["logger"] == "bot.test" and out["duration_ms"] == 3.5
    assert out["ts"].endswith("+00:00")


def test_database_errors_lose_their_parameters():
    try:
        raise IntegrityError("INSERT INTO chat_message (text) VALUES (?)", (SECRET_TEXT, PSID), Exception("UNIQUE"))
    except IntegrityError as exc:
        error = exc
    for formatter in (JsonFormatter(), TextFormatter()):
        text = formatter.format(record("store failed", exc=error))
        assert SECRET_TEXT not in text and PSID not in text
        assert "INSERT INTO chat_message" in text and "parameters: hidden" in text
    asyncpg_style = 'invalid input for query argument $3: \'toi ten la Bi mat\' (a str is required)\nnext line'
    assert scrub(asyncpg_style) == "invalid input for query argument $3: hidden\nnext line"
    assert "Bi mat" not in scrub("duplicate key\nDETAIL:  Key (channel, user_id)=(messenger, Bi mat) already exists.")


def test_event_helper_and_configure_write_json_to_the_stream():
    stream = io.StringIO()
    handler = configure("INFO", "json", stream)
    try:
        event(logging.getLogger("bot.retention"), "retention_purged", messages=3, dry_run=False)
        logging.getLogger("bot.x").debug("not at INFO")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert lines == [{**lines[0], "event": "retention_purged", "messages": 3, "dry_run": False}]
    with pytest.raises(ValueError):
        configure("INFO", "xml", stream)


async def test_access_log_names_the_route_not_the_path():
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    app = web.Application()
    app.router.add_get("/l/{token}", lambda r: web.Response())
    request = make_mocked_request("GET", "/l/very-secret-token?x=psid-1", app=app)
    request._match_info = await app.router.resolve(request)
    stream = io.StringIO()
    logger = logging.getLogger("test.access")
    logger.handlers, logger.propagate = [logging.StreamHandler(stream)], False
    logger.handlers[0].setFormatter(JsonFormatter())
    logger.setLevel(logging.INFO)
    AccessLogger(logger, "").log(request, web.Response(status=410), 0.0123)
    out = json.loads(stream.getvalue())
    assert out["event"] == "http_request" and out["method"] == "GET"
    assert out["route"] == "/l/{token}" and out["status"] == 410 and out["duration_ms"] == 12.3
    assert "very-secret-token" not in stream.getvalue() and "psid-1" not in stream.getvalue()


@pytest.fixture
async def fakes():
    async with FakeGraph(timeout_delay=1) as graph, FakeZalo(timeout_delay=1) as zalo, FakeRasa() as rasa:
        yield SimpleNamespace(graph=graph, zalo=zalo, rasa=rasa)


@pytest.fixture
def captured():
    """Every record at INFO, and at DEBUG for the gateway's own loggers, formatted as JSON."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    ours = [logging.getLogger(n) for n in ("bot", "channels")]
    old = [lg.level for lg in ours]
    for lg in ours:
        lg.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)
    for lg, level in zip(ours, old):
        lg.setLevel(level)


async def test_the_gateway_s_logs_carry_no_text_ids_or_places(aiohttp_client, db_url, fakes, captured):
    gw = await replica(aiohttp_client, gateway_settings(db_url, fakes, send_max_attempts=2), "logs")

    async def messenger(payload: dict, secret: str = APP_SECRET) -> int:
        raw = encode(payload)
        async with gw.post("/webhooks/messenger", data=raw, headers=sign_messenger(raw, secret)) as r:
            return r.status

    fakes.graph.fail_next(1, 500)  # a retried send
    assert await messenger(messenger_text_event(PSID, SECRET_TEXT, "m-log-1")) == 200
    await eventually(lambda: fakes.graph.texts_to(PSID), timeout=10)
    fakes.rasa.down = True  # Rasa unavailable: the message waits, the person is told
    assert await messenger(messenger_text_event(PSID, SECRET_TEXT + " lan hai", "m-log-2")) == 200
    await eventually(lambda: len(fakes.graph.texts_to(PSID)) >= 2, timeout=10)
    assert await messenger(messenger_text_event(PSID, RISK_TEXT, "m-log-3")) == 200  # the safety screen
    assert await messenger(messenger_location_event(PSID, LAT, LON, "m-log-4")) == 200
    fakes.rasa.down = False
    assert await messenger(messenger_text_event(PSID, SECRET_TEXT, "m-log-5"), secret="forged") == 403
    raw = encode(zalo_text_event(ZALO_USER, SECRET_TEXT, "z-log-1"))
    fakes.zalo.set_unreachable(ZALO_USER)  # a send the platform refuses for good
    async with gw.post("/webhooks/zalo", data=raw, headers=sign_zalo(raw, ZALO_APP_ID, OA_SECRET)) as r:
        assert r.status == 200
    await eventually(lambda: any(c["json"]["recipient"]["user_id"] == ZALO_USER for c in fakes.zalo.calls), timeout=10)
    await eventually(lambda: "send failed" in captured.getvalue() or "failed:" in captured.getvalue(), timeout=10)

    logs = captured.getvalue()
    lines = [json.loads(x) for x in logs.splitlines()]
    assert len(lines) > 5, logs  # the gateway did log: retries, Rasa down, the forged request, the failure
    for secret in (SECRET_TEXT, "Bi mat", PSID, ZALO_USER, LAT, LON, "21.03", "105.81"):
        assert secret not in logs, f"{secret!r} appears in the logs"


def test_the_command_line_logs_json_lines(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LOG_"))},
           "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "LOG_FORMAT": "json"}
    result = subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "database at the newest schema" in result.stdout
    lines = [json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")]
    assert lines and all({"ts", "level", "logger", "event", "message"} <= set(x) for x in lines)
    bad = subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=PROJECT_ROOT,
                         env={**env, "LOG_FORMAT": "xml"}, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "LOG_FORMAT" in bad.stderr
