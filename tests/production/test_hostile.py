"""Hostile input: property-based fuzzing of both webhooks and of the console API through the real
app, oversized / malformed / forged / replayed requests, sign-in brute force, and the role matrix
of every API route.

Runs on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set (PostgreSQL is the stricter:
NUL characters, column lengths and integer ranges are enforced there)."""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, func, select

from bot import accounts
from bot.db.models import Conversation, LoginFailure, Message
from channels import messenger, zalo
from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import ZALO_APP_ID, ZALO_OA_ID, encode, messenger_text_event, sign_messenger, \
    zalo_text_event
from tests.fakes.rasa import FakeRasa
from tests.fakes.zalo import FakeZalo
from tests.gateway.conftest import eventually
from tests.production.inproc import APP_SECRET, OA_SECRET, gateway_settings, replica

PASSWORD = "Hostile-input-password-1"
ROLES = ("counselor", "supervisor", "content_editor", "admin")
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
# Routes a fuzzer must not drive with random bodies: publishing trains a model (minutes of CPU).
NOT_FUZZED = re.compile(r"^/api/publish$")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, db_url: str) -> str:
    return db_url if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
async def fakes():
    async with FakeGraph(timeout_delay=1) as graph, FakeZalo(timeout_delay=1) as zalo_fake, FakeRasa() as rasa:
        yield SimpleNamespace(graph=graph, zalo=zalo_fake, rasa=rasa)


@pytest.fixture
async def app(aiohttp_client, database, fakes):
    """On each backend: for what PostgreSQL and SQLite may treat differently."""
    return await replica(aiohttp_client, gateway_settings(database, fakes), f"hostile-{uuid.uuid4().hex[:6]}")


@pytest.fixture
async def one_app(aiohttp_client, one_database, fakes):
    """On one backend (PostgreSQL when available): for what does not depend on it."""
    return await replica(aiohttp_client, gateway_settings(one_database, fakes), f"hostile-{uuid.uuid4().hex[:6]}")


# ---------------------------------------------------------------- strategies

ids = st.one_of(st.text(max_size=300), st.integers(min_value=-2**70, max_value=2**70), st.none(),
                st.booleans(), st.floats(allow_nan=True), st.just("\x00abc"), st.just("1" * 300))
texts = st.one_of(st.text(max_size=500), st.just("\x00"), st.just("a\x00b"), st.none(), st.integers(),
                  st.just("\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace")),
                  st.text(alphabet=st.characters(blacklist_categories=()), max_size=50))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children,
                                                                                       max_size=4),
                    max_leaves=20)


def maybe(strategy: Any) -> Any:
    return st.one_of(strategy, JSON)


coordinates = st.fixed_dictionaries({}, optional={"lat": maybe(st.floats() | st.text(max_size=20)),
                                                  "long": maybe(st.floats() | st.text(max_size=20)),
                                                  "latitude": maybe(st.floats() | st.text(max_size=20)),
                                                  "longitude": maybe(st.floats() | st.text(max_size=20))})
attachment = st.fixed_dictionaries({}, optional={
    "type": maybe(st.sampled_from(["location", "image", "file", "sticker", "link", "audio", "video"])),
    "title": maybe(texts), "url": maybe(texts),
    "payload": maybe(st.fixed_dictionaries({}, optional={"coordinates": coordinates, "url": texts,
                                                          "sticker_id": ids}))})
messenger_message = st.fixed_dictionaries({}, optional={
    "mid": maybe(ids), "text": maybe(texts), "is_echo": maybe(st.booleans()),
    "attachments": maybe(st.lists(attachment, max_size=3)),
    "quick_reply": maybe(st.fixed_dictionaries({"payload": texts}))})
messenger_event = st.fixed_dictionaries({}, optional={
    "sender": maybe(st.fixed_dictionaries({}, optional={"id": ids, "user_ref": ids})),
    "recipient": maybe(st.fixed_dictionaries({"id": ids})), "timestamp": maybe(ids),
    "message": maybe(messenger_message),
    "postback": maybe(st.fixed_dictionaries({}, optional={"title": texts, "payload": texts, "mid": ids})),
    "delivery": JSON, "read": JSON, "reaction": JSON})
messenger_body = st.one_of(
    st.fixed_dictionaries({"object": st.sampled_from(["page", "page", "instagram", ""]),
                           "entry": maybe(st.lists(st.fixed_dictionaries({}, optional={
                               "id": ids, "time": ids, "messaging": maybe(st.lists(messenger_event, max_size=4)),
                               "standby": maybe(st.lists(messenger_event, max_size=2)), "changes": JSON}),
                               max_size=3))}),
    JSON)
zalo_body = st.one_of(
    st.fixed_dictionaries({"event_name": maybe(st.sampled_from([
        "user_send_text", "user_send_location", "user_send_image", "user_send_sticker", "user_send_file",
        "user_send_link", "follow", "unfollow", "oa_send_text", "user_received_message", "anything"]))},
        optional={"app_id": st.one_of(st.just(ZALO_APP_ID), ids),
                  "sender": maybe(st.fixed_dictionaries({}, optional={"id": ids})),
                  "recipient": maybe(st.fixed_dictionaries({"id": st.one_of(st.just(ZALO_OA_ID), ids)})),
                  "follower": maybe(st.fixed_dictionaries({}, optional={"id": ids})),
                  "message": maybe(st.fixed_dictionaries({}, optional={
                      "text": maybe(texts), "msg_id": maybe(ids),
                      "attachments": maybe(st.lists(attachment, max_size=3))})),
                  "timestamp": maybe(ids), "user_id_by_app": ids}),
    JSON)


def sign_zalo_raw(raw: bytes) -> dict[str, str]:
    """Zalo's signature over any body (the timestamp term is empty when the body has none)."""
    try:
        body = json.loads(raw)
        timestamp = body.get("timestamp") if isinstance(body, dict) else None
    except (ValueError, RecursionError):
        timestamp = None
    tail = raw + ("" if timestamp is None else str(timestamp)).encode() + OA_SECRET.encode()
    return {"X-ZEvent-Signature": "mac=" + hashlib.sha256(ZALO_APP_ID.encode() + tail).hexdigest(),
            "Content-Type": "application/json"}


async def inbound_since(app: Any, last_id: int) -> list[tuple[Message, Conversation]]:
    async with app.gw.sessions() as s:
        return list(await s.execute(select(Message, Conversation).join(Conversation)
                                    .where(Message.id > last_id, Message.direction == "in")))


async def last_message_id(app: Any) -> int:
    async with app.gw.sessions() as s:
        return await s.scalar(select(func.coalesce(func.max(Message.id), 0)))


def well_formed(msg: Message, conv: Conversation, channel: str, expected: dict[str, Any]) -> None:
    """A stored inbound row is one the channel's parser produced from the body, and nothing odd."""
    assert msg.channel == channel == conv.channel
    assert msg.external_id in expected, (msg.external_id, list(expected))
    event = expected[msg.external_id]
    assert conv.user_id == event.user_id and 0 < len(conv.user_id) <= 128
    assert msg.text == (event.text or None) or msg.text == event.text
    assert msg.text is None or (isinstance(msg.text, str) and "\x00" not in msg.text)
    assert isinstance(msg.payload, dict) and isinstance(msg.payload.get("kind"), str)
    loc = msg.payload.get("location")
    if loc is not None:
        assert -90 <= loc["lat"] <= 90 and -180 <= loc["lon"] <= 180


async def check_webhook(app: Any, path: str, raw: bytes, headers: dict[str, str], channel: str,
                        parse: Any) -> int:
    before = await last_message_id(app)
    async with app.post(path, data=raw, headers=headers) as r:
        status = r.status
    assert status < 500, (status, raw[:300])
    rows = await inbound_since(app, before)
    if status != 200:
        assert rows == [], "a refused request stored something"
        return status
    expected = {e.external_id: e for e in parse(json.loads(raw))}
    for msg, conv in rows:
        well_formed(msg, conv, channel, expected)
    return status


# ---------------------------------------------------------------- webhook fuzzing


@FUZZ
@given(body=messenger_body)
async def test_fuzzed_signed_messenger_webhooks(app, body):
    raw = encode(body)
    await check_webhook(app, "/webhooks/messenger", raw, sign_messenger(raw, APP_SECRET), "messenger",
                        messenger.parse_webhook)


@FUZZ
@given(body=zalo_body)
async def test_fuzzed_signed_zalo_webhooks(app, body):
    raw = encode(body)
    await check_webhook(app, "/webhooks/zalo", raw, sign_zalo_raw(raw), "zalo", zalo.parse_webhook)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(str.encode)),
       path=st.sampled_from(["/webhooks/messenger", "/webhooks/zalo"]))
async def test_fuzzed_raw_bytes_signed_or_not(app, raw, path):
    for headers in ({}, sign_messenger(raw, APP_SECRET) if path.endswith("messenger") else sign_zalo_raw(raw)):
        before = await last_message_id(app)
        async with app.post(path, data=raw, headers=headers) as r:
            assert r.status in (200, 400, 403), r.status
            if r.status != 200:
                assert await inbound_since(app, before) == []


# ---------------------------------------------------------------- malformed, oversized, forged, replayed


async def test_deeply_nested_json_is_refused_not_crashed(one_app):
    deep = b"[" * 200_000 + b"]" * 200_000
    for path, headers in (("/webhooks/messenger", sign_messenger(deep, APP_SECRET)),
                          ("/webhooks/zalo", sign_zalo_raw(deep)), ("/webhooks/zalo", {}),
                          ("/webhooks/messenger", {})):
        async with one_app.post(path, data=deep, headers=headers) as r:
            assert r.status in (400, 403), (path, r.status)
    async with one_app.post("/api/login", data=deep, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400


async def test_out_of_range_ids_and_nul_characters_are_client_errors(app):
    """Found by the fuzzers below on PostgreSQL (integer out of range, NUL in text) and SQLite
    (int too large to bind): each was a 500 before bot.app.hostile_input."""
    await clear_throttle(app)
    name = await make_staff(app, "admin")
    status, body = await login(app, name)
    headers = {"X-CSRF-Token": body["csrf_token"]}
    for huge in (str(2**31), str(2**63), "9" * 40, "1" * 5000):
        async with app.get(f"/api/conversations/{huge}", headers=headers) as r:
            assert r.status == 404
        async with app.post(f"/api/conversations/{huge}/take", headers=headers) as r:
            assert r.status == 404
    for method, path, _, _ in api_routes(app):  # every route with a row id in its path, whoever wrote it
        if re.search(r"\{(id|mid|\w+_id)\b", path) and not NOT_FUZZED.match(path):
            async with app.request(method, fill(path, {n: str(2**63) for n in ("id", "mid")}), headers=headers,
                                   json={}) as r:
                assert r.status == 404, (method, path, r.status)
    async with app.get("/api/conversations/2147483647", headers=headers) as r:
        assert r.status == 404 and (await r.json())["error"] == "no such conversation"  # the handler's own
    for url in ("/api/content/responses/%00/vi", "/api/queue?x=%00", "/l/abc%00"):
        async with app.get(url, headers=headers) as r:
            assert r.status == 400, url
    async with app.post("/api/conversations/1/reply", data=b'{"text": "a\\u0000b"}',
                        headers={**headers, "Content-Type": "application/json"}) as r:
        assert r.status == 400
    # a webhook's NUL is the parser's business: the message is kept, without the NUL
    user = f"nul-{uuid.uuid4().hex[:6]}"
    raw = encode(messenger_text_event(user, "xin\x00 chao", f"{user}-1"))
    async with app.post("/webhooks/messenger", data=raw, headers=sign_messenger(raw, APP_SECRET)) as r:
        assert r.status == 200
    async with app.gw.sessions() as s:
        text = await s.scalar(select(Message.text).where(Message.external_id == f"{user}-1"))
    assert text == "xin chao"


async def test_oversized_malformed_and_forged_requests_store_nothing(one_app):
    before = await last_message_id(one_app)
    big = encode(messenger_text_event("big", "x" * (1024 * 1024 + 10), "m-big"))
    for path, headers in (("/webhooks/messenger", sign_messenger(big, APP_SECRET)), ("/webhooks/zalo", {})):
        async with one_app.post(path, data=big, headers=headers) as r:
            assert r.status == 413
    malformed = b'{"object": "page", "entry": [ '
    async with one_app.post("/webhooks/messenger", data=malformed, headers=sign_messenger(malformed, APP_SECRET)) as r:
        assert r.status == 400
    good = encode(messenger_text_event("forge", "xin chao", "m-forge"))
    forged = [{"X-Hub-Signature-256": "sha256=" + "0" * 64},
              {"X-Hub-Signature-256": sign_messenger(good, "another-secret")["X-Hub-Signature-256"]},
              # the legacy SHA-1 header is not a way around a wrong SHA-256 one
              {"X-Hub-Signature-256": "sha256=" + "1" * 64, "X-Hub-Signature": sign_messenger(good, APP_SECRET)["X-Hub-Signature"]},
              {"X-Hub-Signature-256": "sha256="}, {"X-Hub-Signature-256": "garbage"}, {}]
    for headers in forged:
        async with one_app.post("/webhooks/messenger", data=good, headers=headers) as r:
            assert r.status == 403, headers
    # a body changed after signing
    tampered = good.replace(b"xin chao", b"xin chaO")
    async with one_app.post("/webhooks/messenger", data=tampered, headers=sign_messenger(good, APP_SECRET)) as r:
        assert r.status == 403
    zraw = encode(zalo_text_event("forge-z", "xin chao", "z-forge"))
    zheaders = sign_zalo_raw(zraw)
    for headers in ({"X-ZEvent-Signature": "mac=" + "0" * 64}, {},
                    {"X-ZEvent-Signature": zheaders["X-ZEvent-Signature"][:-2]}):
        async with one_app.post("/webhooks/zalo", data=zraw, headers=headers) as r:
            assert r.status == 403
    other_app = encode({**zalo_text_event("forge-z", "hi", "z-other"), "app_id": "999"})
    async with one_app.post("/webhooks/zalo", data=other_app, headers=sign_zalo_raw(other_app)) as r:
        assert r.status == 403
    assert await inbound_since(one_app, before) == []


async def test_replayed_webhooks_are_stored_and_answered_once(one_app, fakes):
    app = one_app
    user = f"replay-{uuid.uuid4().hex[:6]}"
    raw = encode(messenger_text_event(user, "xin chao lan mot", f"{user}-m1"))
    headers = sign_messenger(raw, APP_SECRET)
    zraw = encode(zalo_text_event(user, "xin chao zalo", f"{user}-z1"))
    for _ in range(5):
        async with app.post("/webhooks/messenger", data=raw, headers=headers) as r:
            assert r.status == 200
        async with app.post("/webhooks/zalo", data=zraw, headers=sign_zalo_raw(zraw)) as r:
            assert r.status == 200
    await eventually(lambda: fakes.graph.texts_to(user) and fakes.zalo.texts_to(user), timeout=10)
    await asyncio.sleep(1.0)  # a second answer to any replay would have been sent by now
    assert fakes.graph.texts_to(user) == ["[vi] bot: xin chao lan mot"]
    assert fakes.zalo.texts_to(user) == ["[vi] bot: xin chao zalo"]
    async with app.gw.sessions() as s:
        n = await s.scalar(select(func.count()).select_from(Message).where(
            Message.external_id.in_([f"{user}-m1", f"{user}-z1"])))
    assert n == 2


# ---------------------------------------------------------------- sign-in


async def make_staff(app: Any, role: str) -> str:
    name = f"{role[:4]}-{uuid.uuid4().hex[:8]}"
    async with app.gw.sessions() as s:
        await accounts.create_account(s, name, role, PASSWORD)
        await s.commit()
    return name


async def clear_throttle(app: Any) -> None:
    """Forget failed sign-ins (the PostgreSQL database is shared by this module's tests)."""
    async with app.gw.sessions() as s:
        await s.execute(delete(LoginFailure))
        await s.commit()


async def login(client: Any, name: str, password: str = PASSWORD) -> tuple[int, dict]:
    async with client.post("/api/login", json={"username": name, "password": password}) as r:
        return r.status, (await r.json())


async def test_brute_force_is_throttled_across_replicas(aiohttp_client, one_database, fakes):
    """Five wrong passwords for one account, spread over two replicas: the sixth attempt — even
    with the right password, on either replica — is refused with 429 and Retry-After."""
    settings = gateway_settings(one_database, fakes)
    a = await replica(aiohttp_client, settings, "brute-a")
    b = await replica(aiohttp_client, settings, "brute-b")
    await clear_throttle(a)
    name = await make_staff(a, "counselor")
    for i in range(5):
        status, _ = await login(a if i % 2 else b, name, f"wrong-{i}")
        assert status == 401
    for client in (a, b):
        async with client.post("/api/login", json={"username": name, "password": PASSWORD}) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) > 0
    # many names from one address: the address is throttled too
    for i in range(20):
        status, _ = await login(a, f"nobody-{uuid.uuid4().hex[:6]}", "x")
        assert status in (401, 429)
    other = await make_staff(a, "counselor")
    assert (await login(a, other))[0] == 429
    async with a.gw.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(LoginFailure).where(LoginFailure.username == name)) >= 5


# ---------------------------------------------------------------- the API: roles and fuzzing


def api_routes(app: Any) -> list[tuple[str, str, Any, Any]]:
    """(method, canonical path, handler, resource) of every /api/ route but HEAD."""
    out = []
    for route in app.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/api/") and route.method not in ("HEAD", "*"):
            out.append((route.method, path, route.handler, route.resource))
    return sorted(out, key=lambda r: (r[1], r[0]))


def fill(path: str, values: dict[str, str] | None = None) -> str:
    values = values or {}
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: quote(values.get(m.group(1), "1"), safe=""), path)


async def test_every_api_route_is_guarded_and_no_role_reaches_another_role_s_endpoints(one_app):
    routes = api_routes(one_app)
    assert len(routes) >= 15, routes
    open_routes = {("POST", "/api/login"), ("GET", "/api/live")}  # the WebSocket checks its own sign-in
    clients: dict[str, tuple[Any, str]] = {}
    await clear_throttle(one_app)
    for role in ROLES:
        client = TestClient(one_app.server)
        await client.start_server()
        name = await make_staff(one_app, role)
        status, body = await login(client, name)
        assert status == 200
        clients[role] = (client, body["csrf_token"])
    anonymous = TestClient(one_app.server)
    await anonymous.start_server()
    checked = 0
    try:
        for method, path, handler, _ in routes:
            roles = getattr(handler, "roles", None)
            if (method, path) in open_routes:
                continue
            assert roles, f"{method} {path} has no `requires(...)` roles: an unguarded API endpoint"
            url = fill(path, {"id": "999999", "mid": "999999", "key": "utter_greet", "lang": "vi"})
            async with anonymous.request(method, url, json={}) as r:
                assert r.status == 401, (method, path, r.status)
            for role, (client, csrf) in clients.items():
                if role not in roles:
                    async with client.request(method, url, json={}, headers={"X-CSRF-Token": csrf}) as r:
                        assert r.status == 403, (role, method, path, r.status)
                        assert "role" in (await r.json())["error"]
                    checked += 1
                elif method not in ("GET", "HEAD", "OPTIONS"):
                    if NOT_FUZZED.match(path) or path == "/api/logout":  # (logout would end the session)
                        continue
                    async with client.request(method, url, json={}) as r:  # no CSRF token
                        assert r.status == 403 and "CSRF" in (await r.json())["error"], (role, method, path)
                    async with client.request(method, url, json={}, headers={"X-CSRF-Token": csrf}) as r:
                        assert r.status not in (401, 403) or "role" not in (await r.json()).get("error", ""), \
                            (role, method, path, r.status)
                        assert r.status < 500, (role, method, path, r.status)
                else:
                    async with client.request(method, url) as r:
                        assert r.status not in (401, 403) and r.status < 500, (role, method, path, r.status)
        assert checked > 0
    finally:
        for client, _ in clients.values():
            await client.close()
        await anonymous.close()


path_values = st.one_of(st.integers(min_value=0, max_value=10**30).map(str), st.text(max_size=30),
                        st.just("0"), st.just(str(2**31)), st.just(str(2**63)), st.just("-1"))


@FUZZ
@given(data=st.data())
async def test_fuzzed_console_api_never_fails_with_5xx(app, data):
    state = getattr(app, "_fuzz_admin", None)
    if state is None:  # sign in (again): the fuzzed /api/login calls may have throttled this address
        await clear_throttle(app)
        name = await make_staff(app, "admin")
        status, body = await login(app, name)
        assert status == 200, body
        state = app._fuzz_admin = {"name": name, "csrf": body["csrf_token"],
                                   "routes": [r for r in api_routes(app) if r[1] != "/api/live"
                                              and not NOT_FUZZED.match(r[1]) and r[1] != "/api/logout"]}
    method, path, _, _ = data.draw(st.sampled_from(state["routes"]), label="route")
    names = re.findall(r"\{(\w+)", path)
    values = {n: data.draw(path_values, label=n) for n in names}
    url = fill(path, values)
    body = data.draw(st.one_of(JSON, st.binary(max_size=200), st.none()), label="body")
    query = data.draw(st.dictionaries(st.sampled_from(["q", "limit", "before", "lang", "conversation", "action",
                                                       "account", "target", "dry_run"]),
                                      st.text(max_size=20), max_size=3), label="query")
    kwargs: dict[str, Any] = {"params": query, "headers": {"X-CSRF-Token": state["csrf"]}}
    if isinstance(body, bytes):
        kwargs["data"] = body
        kwargs["headers"]["Content-Type"] = data.draw(st.sampled_from(["application/json", "text/csv",
                                                                      "application/octet-stream"]))
    elif body is not None:
        kwargs["data"] = json.dumps(body)
        kwargs["headers"]["Content-Type"] = "application/json"
    try:
        async with app.request(method, url, **kwargs) as r:
            status = r.status
    except ValueError:  # the client itself refuses a path it cannot encode: nothing reached the server
        return
    assert status < 500, (method, url, body, status)
    if status == 401:  # signed out by something the fuzzer did (e.g. the account was changed): sign in again
        app._fuzz_admin = None


async def test_behind_a_trusted_proxy_throttling_counts_clients_and_spoofing_does_not_help(aiohttp_client,
                                                                                         one_database, fakes):
    """Behind nginx every request comes from 127.0.0.1: with TRUSTED_PROXIES the address throttle
    counts the client of X-Forwarded-For (one attacker cannot lock every counselor out); without
    it the header is ignored (an attacker cannot dodge the throttle by inventing addresses)."""
    proxied = await replica(aiohttp_client, gateway_settings(one_database, fakes, trusted_proxies=("127.0.0.1/32",)),
                            "proxied")
    await clear_throttle(proxied)
    name = await make_staff(proxied, "counselor")

    async def attempt(client: Any, xff: str, username: str, password: str, proto: str = "https") -> Any:
        async with client.post("/api/login", json={"username": username, "password": password},
                               headers={"X-Forwarded-For": xff, "X-Forwarded-Proto": proto}) as r:
            return r.status, r.headers.getall("Set-Cookie", [])

    for i in range(20):  # an attacker at 203.0.113.66 tries many names
        status, _ = await attempt(proxied, "203.0.113.66", f"guess-{i}", "x")
        assert status == 401
    assert (await attempt(proxied, "203.0.113.66", name, PASSWORD))[0] == 429
    # a counselor elsewhere still signs in; the cookie is Secure because the proxy spoke HTTPS
    status, cookies = await attempt(proxied, "198.51.100.7", name, PASSWORD)
    assert status == 200 and any("Secure" in c for c in cookies)
    # a client-supplied X-Forwarded-For in front of the proxy's own entry changes nothing
    assert (await attempt(proxied, "198.51.100.7, 203.0.113.66", name, PASSWORD))[0] == 429
    async with proxied.gw.sessions() as s:
        ips = {f.ip for f in await s.scalars(select(LoginFailure))}
    assert ips == {"203.0.113.66"}

    direct = await replica(aiohttp_client, gateway_settings(one_database, fakes), "direct")
    await clear_throttle(direct)
    for i in range(20):  # without trusted proxies, inventing addresses does not help
        status, _ = await attempt(direct, f"192.0.2.{i}", f"guess-{i}", "x")
        assert status == 401
    assert (await attempt(direct, "192.0.2.200", name, PASSWORD))[0] == 429
