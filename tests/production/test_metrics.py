"""/metrics: queue length and waiting time (per priority), the inbox and outbox backlogs and their
age, webhook latency, send failures — in the Prometheus text format, with no personal data."""
from __future__ import annotations

import re
import uuid
from types import SimpleNamespace

import pytest

from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import encode, messenger_text_event, sign_messenger
from tests.fakes.rasa import FakeRasa
from tests.fakes.zalo import FakeZalo
from tests.gateway.conftest import eventually
from tests.production.inproc import APP_SECRET, gateway_settings, replica

SAMPLE = re.compile(r'^hotline_[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+-]+$|^# TYPE hotline_[a-z_]+ '
                    r'(counter|gauge|histogram)$')


@pytest.fixture
async def fakes():
    async with FakeGraph(timeout_delay=1) as graph, FakeZalo(timeout_delay=1) as zalo, FakeRasa() as rasa:
        yield SimpleNamespace(graph=graph, zalo=zalo, rasa=rasa)


def value(text: str, series: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_show_the_queue_the_backlogs_latency_and_failures(aiohttp_client, db_url, fakes):
    gw = await replica(aiohttp_client, gateway_settings(db_url, fakes, send_max_attempts=1), "metrics")
    risk_user, waiting_user, failing_user = (f"{n}-{uuid.uuid4().hex[:6]}" for n in ("risk", "wait", "fail"))

    async def post(user: str, words: str, mid: str) -> None:
        raw = encode(messenger_text_event(user, words, mid))
        async with gw.post("/webhooks/messenger", data=raw, headers=sign_messenger(raw, APP_SECRET)) as r:
            assert r.status == 200

    await post(risk_user, "em bị nhốt ở đây, cứu em", "m-risk")
    fakes.graph.set_unavailable(failing_user)
    await post(failing_user, "xin chao", "m-fail")
    await eventually(lambda: any(c["json"]["recipient"]["id"] == failing_user for c in fakes.graph.calls))
    fakes.rasa.down = True
    await post(waiting_user, "xin chao", "m-wait")
    await eventually(lambda: fakes.graph.texts_to(waiting_user))  # the "Rasa is down" notice

    async def scrape() -> str:
        async with gw.get("/metrics") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            return await r.text()

    text = await eventually(lambda: _ready(scrape))
    for line in text.splitlines():
        assert SAMPLE.match(line), line
    assert value(text, 'hotline_queued{priority="emergency"}') == 1
    assert value(text, 'hotline_queued_oldest_wait_seconds{priority="emergency"}') >= 0
    assert value(text, 'hotline_conversations{state="queued"}') == 1
    assert value(text, "hotline_inbox_pending") == 1 and value(text, "hotline_inbox_oldest_pending_seconds") > 0
    assert value(text, 'hotline_send_failures_total{channel="messenger"}') >= 1
    assert value(text, "hotline_outbox_failed") >= 1
    assert value(text, 'hotline_webhook_ack_seconds_count{channel="messenger"}') == 3
    assert value(text, "hotline_rasa_failures_total") >= 1
    assert value(text, "hotline_database_up") == 1
    for personal in (risk_user, waiting_user, failing_user, "nhốt", "xin chao"):
        assert personal not in text


async def _ready(scrape):
    text = await scrape()
    return text if 'hotline_send_failures_total{channel="messenger"}' in text and "hotline_inbox_pending 1" in text \
        else None
