"""The production topology on loopback: two gateway processes and two Rasa processes sharing one
PostgreSQL server (the gateway's database and Rasa's tracker store, deploy/endpoints.production.yml)
and Redis (the gateways' live fan-out, Rasa's lock store), an action server, fake Graph and Zalo.

Gateway 1 talks to Rasa 1, gateway 2 to Rasa 2: a conversation whose webhooks alternate between the
gateways also alternates between the Rasa processes, so its context survives only if the trackers
are shared. Then the faults that need the real stack: Rasa stopped for 30 s, and PostgreSQL
restarted under everything.

Needs TEST_DATABASE_URL and TEST_REDIS_URL; the processes start once for the module (Rasa loads the
model in about 30 s).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import messenger_text_event
from tests.fakes.zalo import FakeZalo
from tests.support.hotline import (ConsoleClient, DbView, add_user, fake_platform_env, first_line, gateway_env,
                                   post, seed_answer, signed_messenger)
from tests.support.loop import BackgroundLoop
from tests.support.processes import PROJECT_ROOT, ManagedProcess, Stack, ensure_model, free_port, http_status

pytestmark = pytest.mark.slow
T = TypeVar("T")
RASA_TOKEN = "replica-test-rasa-token"
ENDPOINTS = PROJECT_ROOT / "deploy" / "endpoints.production.yml"


def until(check: Callable[[], T], timeout: float, interval: float = 0.2, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:.0f} s (last: {value!r})")
        time.sleep(interval)


def add_production_rasa(stack: Stack, name: str, *, model: Path, actions: ManagedProcess, tracker_url: str,
                        redis_url: str, lock_prefix: str) -> ManagedProcess:
    """`rasa run` as deploy/README.md runs it: the production endpoints file, its ${VAR}s set."""
    port = free_port()
    redis = make_url(redis_url)
    env = {"ACTION_ENDPOINT_URL": actions.url + "/webhook", "TRACKER_DATABASE_URL": tracker_url,
           "REDIS_HOST": redis.host or "127.0.0.1", "REDIS_PORT": str(redis.port or 6379),
           "REDIS_PASSWORD": redis.password or "", "RASA_LOCK_REDIS_DB": str(redis.database or 0),
           "RASA_LOCK_KEY_PREFIX": lock_prefix}
    cmd = [stack.rasa_bin, "run", "--enable-api", "-i", "127.0.0.1", "-p", str(port), "-m", str(model),
           "--endpoints", str(ENDPOINTS), "--credentials", str(PROJECT_ROOT / "credentials.yml"),
           "--auth-token", RASA_TOKEN]
    return stack.add_process(name, cmd, port=port, health_path="/", env=env, ready_timeout=240)


@dataclass
class Topology:
    loop: BackgroundLoop
    graph: FakeGraph
    zalo: FakeZalo
    stack: Stack
    db: DbView
    database_url: str
    tracker_url: str

    @property
    def gateways(self) -> list[ManagedProcess]:
        return [self.stack["gateway1"], self.stack["gateway2"]]

    @property
    def rasas(self) -> list[ManagedProcess]:
        return [self.stack["rasa1"], self.stack["rasa2"]]

    def messenger(self, gateway: int, payload: dict[str, Any] | tuple[bytes, dict[str, str]]) -> int:
        raw, headers = payload if isinstance(payload, tuple) else signed_messenger(payload)
        return post(self.gateways[gateway].url + "/webhooks/messenger", raw, headers)[0]

    def texts(self, psid: str) -> list[str]:
        return self.loop.call(self.graph.texts_to, psid)

    def tracker_user_events(self, sender: str) -> list[str]:
        """The texts of the user turns in Rasa's tracker store (shared by both Rasa processes)."""
        engine = create_engine(self.tracker_url)
        try:
            with engine.connect() as conn:
                return [json.loads(r[0]).get("text") for r in conn.execute(
                    text("SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id"),
                    {"s": sender})]
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def topology(pg_url: str, pg_empty_database: str, redis_url: str, redis_prefix: str) -> Iterator[Topology]:
    model = ensure_model()
    with BackgroundLoop("replica-fakes") as loop:
        graph, zalo = FakeGraph(timeout_delay=5), FakeZalo(timeout_delay=5)
        loop.run(graph.start())
        loop.run(zalo.start())
        stack = Stack("production-replicas", base_env={"DATABASE_URL": pg_url})
        db = DbView(pg_url)
        try:
            actions = stack.add_action_server(env={"DATABASE_URL": pg_url})
            for n in (1, 2):
                add_production_rasa(stack, f"rasa{n}", model=model, actions=actions, tracker_url=pg_empty_database,
                                    redis_url=redis_url, lock_prefix=redis_prefix)
            for n in (1, 2):
                stack.add_gateway(f"gateway{n}", env=gateway_env(
                    database_url=pg_url, rasa_url=stack[f"rasa{n}"].url, RASA_TOKEN=RASA_TOKEN,
                    REDIS_URL=redis_url, REDIS_PREFIX=redis_prefix, LOG_FORMAT="json",
                    **fake_platform_env(graph, zalo)))
            stack.start_all()
            yield Topology(loop, graph, zalo, stack, db, pg_url, pg_empty_database)
        finally:
            stack.stop_all()
            db.close()
            loop.run(graph.close())
            loop.run(zalo.close())


def key_of(reply: str, keys: list[str]) -> str:
    """Which seed answer a delivered text is (by its first line), or '?'."""
    for key in keys:
        if first_line(reply) == first_line(seed_answer(key, "vi")):
            return key
    return "?"


def test_a_conversation_alternating_between_replicas_keeps_its_context_and_order(topology: Topology):
    user = f"alt-{uuid.uuid4().hex[:8]}"
    # turn 1 on gateway 1 / Rasa 1: the agency form asks for the company
    assert topology.messenger(0, messenger_text_event(user, "kiểm tra công ty xuất khẩu lao động", f"{user}-1")) == 200
    asked = until(lambda: topology.texts(user), 60, what="the form's question")
    assert key_of(asked[0], ["utter_ask_agency"]) == "utter_ask_agency", asked
    # turn 2 on gateway 2 / Rasa 2: a bare name, which only the active form makes a company name
    assert topology.messenger(1, messenger_text_event(user, "Thành Đạt Phương Nam", f"{user}-2")) == 200
    agency_keys = ["utter_agency_not_found", "utter_agency_near_matches", "utter_agency_licensed",
                   "utter_agency_suspended", "utter_agency_revoked", "utter_agency_registry_empty"]
    answered = until(lambda: [t for t in topology.texts(user)[1:] if key_of(t, agency_keys) != "?"], 60,
                     what="the agency check on the other replica")
    if key_of(answered[0], agency_keys) == "utter_agency_not_found":
        assert "Thành Đạt Phương Nam" in answered[0]

    # the control: the same words opening a new conversation are not an agency check
    control = f"ctl-{uuid.uuid4().hex[:8]}"
    assert topology.messenger(1, messenger_text_event(control, "Thành Đạt Phương Nam", f"{control}-1")) == 200
    reply = until(lambda: topology.texts(control), 60, what="the control's answer")
    assert key_of(reply[0], agency_keys) == "?", reply

    # four turns in quick succession, alternating gateways (and so Rasa processes): answered in order
    before = len(topology.texts(user))
    turns = [("xin chào", "utter_greet"), ("tổng đài làm việc mấy giờ", "utter_faq_hours"),
             ("cảm ơn", "utter_thanks"), ("gọi 111 có mất tiền không", "utter_faq_cost")]
    for i, (words, _) in enumerate(turns):
        assert topology.messenger(i % 2, messenger_text_event(user, words, f"{user}-q{i}")) == 200
    expected = [k for _, k in turns]
    until(lambda: len(topology.texts(user)) >= before + 4, 90, what="four answers")
    time.sleep(1.0)
    got = [k for k in (key_of(t, expected) for t in topology.texts(user)[before:]) if k != "?"]
    assert got == expected
    conv = topology.db.conversation("messenger", user)
    assert [m["status"] for m in conv.inbound] == ["done"] * 6
    # both Rasa processes wrote one shared tracker: every turn is in it once, in order
    events = topology.tracker_user_events(f"messenger-{user}")
    assert events == ["kiểm tra công ty xuất khẩu lao động", "Thành Đạt Phương Nam", *[w for w, _ in turns]]


def test_one_delivery_posted_to_both_replicas_at_once_is_handled_once(topology: Topology):
    user = f"dup-{uuid.uuid4().hex[:8]}"
    signed = signed_messenger(messenger_text_event(user, "xin chào", f"{user}-1"))
    statuses: list[int] = []
    start = threading.Barrier(2)

    def deliver(gateway: int) -> None:
        start.wait()
        statuses.append(topology.messenger(gateway, signed))

    threads = [threading.Thread(target=deliver, args=(g,)) for g in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [200, 200]
    until(lambda: topology.texts(user), 60, what="the answer")
    time.sleep(3.0)  # a second handling would have answered by now
    texts = topology.texts(user)
    assert [key_of(t, ["utter_greet"]) for t in texts] == ["utter_greet"], texts
    conv = topology.db.conversation("messenger", user)
    assert len(conv.inbound) == 1 and len(conv.outbound) == len(texts)
    assert len(topology.tracker_user_events(f"messenger-{user}")) == 1


def test_rasa_stopped_for_30_s_risk_still_queues_others_get_the_fallback_then_answers(topology: Topology):
    risk_user, plain_user = f"risk-{uuid.uuid4().hex[:8]}", f"plain-{uuid.uuid4().hex[:8]}"
    for rasa in topology.rasas:
        rasa.kill()
    stopped = time.monotonic()
    try:
        assert topology.messenger(0, messenger_text_event(risk_user, "cứu em với, em bị nhốt ở đây", f"{risk_user}-1")) == 200
        queued = until(lambda: (c := topology.db.conversation("messenger", risk_user)) and c.state == "queued" and c,
                       5, what="the risk conversation in the queue")
        assert queued.priority == "emergency"
        risk_texts = until(lambda: topology.texts(risk_user), 5, what="the risk acknowledgement")
        assert key_of(risk_texts[0], ["utter_risk_emergency"]) == "utter_risk_emergency"
        # an ordinary message half-way through the outage (its retries then meet the restarted Rasa
        # sooner than the 30 s cap of the retry backoff would allow for one sent at the start)
        time.sleep(max(0.0, 14.0 - (time.monotonic() - stopped)))
        assert topology.messenger(1, messenger_text_event(plain_user, "xin chào", f"{plain_user}-1")) == 200
        fallback = until(lambda: topology.texts(plain_user), 5, what="the fallback")
        assert fallback == [seed_answer("utter_rasa_down", "vi")]
        for gateway in topology.gateways:
            assert http_status(gateway.url + "/readyz") == 503 and http_status(gateway.url + "/healthz") == 200
        # Rasa is back no sooner than 30 s after it went away: start it early by half the time it
        # took to load the model at the module's start (a restart is faster than that cold start)
        loading = min(r.last_ready_s or 0.0 for r in topology.rasas) / 2
        time.sleep(max(0.0, 30.0 - (time.monotonic() - stopped) - loading))
    finally:
        topology.stack.start_all(["rasa1", "rasa2"])
    assert time.monotonic() - stopped >= 30.0
    answered = until(lambda: [t for t in topology.texts(plain_user)[1:]], 45, what="the answer after recovery")
    assert key_of(answered[0], ["utter_greet"]) == "utter_greet"
    assert topology.texts(plain_user).count(seed_answer("utter_rasa_down", "vi")) == 1
    conv = topology.db.conversation("messenger", plain_user)
    assert [m["status"] for m in conv.inbound] == ["done"]


def test_postgresql_restarted_under_everything_the_gateways_recover_by_themselves(topology: Topology):
    version = sorted(os.listdir("/etc/postgresql"))[0] if os.path.isdir("/etc/postgresql") else None
    if version is None or not shutil.which("pg_ctlcluster"):
        pytest.skip("PostgreSQL is not a local pg_ctlcluster cluster: the test cannot restart it")
    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
    before = f"pgb-{uuid.uuid4().hex[:8]}"
    assert topology.messenger(0, messenger_text_event(before, "xin chào", f"{before}-1")) == 200
    until(lambda: topology.texts(before), 60, what="an answer before the restart")

    stopped = subprocess.run(ctl + ["stop"], capture_output=True, text=True, timeout=120)
    try:
        assert stopped.returncode == 0, stopped.stderr
        # while it is down nothing is acknowledged (the platform keeps the delivery and retries) ...
        down = f"pgd-{uuid.uuid4().hex[:8]}"
        for g in (0, 1):
            assert topology.messenger(g, messenger_text_event(down, "xin chào", f"{down}-{g}")) >= 500
        # ... the gateways stay alive and say what is missing
        for gateway in topology.gateways:
            assert http_status(gateway.url + "/healthz") == 200
            status, body = http_json(gateway.url + "/readyz")
            assert status == 503 and body["checks"]["database"] is False
    finally:
        started = subprocess.run(ctl + ["start"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    # the platforms redeliver what was not acknowledged: post until each gateway says 200
    users = [f"pga-{uuid.uuid4().hex[:8]}", f"pga-{uuid.uuid4().hex[:8]}"]
    for g, user in enumerate(users):
        payload = signed_messenger(messenger_text_event(user, "tổng đài làm việc mấy giờ", f"{user}-1"))
        until(lambda: topology.messenger(g, payload) == 200, 60, interval=0.5, what=f"gateway {g + 1} taking webhooks")
    for user in users:
        texts = until(lambda: topology.texts(user), 90, what="the answer after the restart")
        assert key_of(texts[0], ["utter_faq_hours"]) == "utter_faq_hours", texts
    for gateway in topology.gateways:
        until(lambda: http_status(gateway.url + "/readyz") == 200, 30, what="/readyz")
    console = ConsoleClient(topology.gateways[1].url)
    name = f"pgc{uuid.uuid4().hex[:6]}"
    add_user(topology.database_url, name, "counselor")
    console.login(name)
    status, queue = console.call("GET", "/api/queue")
    assert status == 200 and "conversations" in queue


def http_json(url: str) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
