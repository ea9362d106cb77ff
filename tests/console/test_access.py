"""Who may call what: every console endpoint x every role, CSRF, sign-in throttling, headers."""
from __future__ import annotations

import pytest

from bot.db.models import Conversation, Message
from tests.console.conftest import PASSWORD, load, queued_conversation

ROLES = ("counselor", "supervisor", "content_editor", "admin")
CASEWORK = {"counselor", "supervisor", "admin"}
OVERSIGHT = {"supervisor", "admin"}
ALL = set(ROLES)
MISSING = 987654  # a conversation that does not exist: allowed roles get 404 (past the role check)

# (method, path, body, roles that may call it)
ENDPOINTS = [
    ("GET", "/api/me", None, ALL),
    ("GET", "/api/queue", None, CASEWORK),
    ("GET", "/api/counselors", None, CASEWORK),
    ("GET", "/api/centers", None, CASEWORK),
    ("GET", "/api/presence", None, CASEWORK),
    ("GET", "/api/canned", None, CASEWORK),
    ("GET", f"/api/conversations/{MISSING}", None, CASEWORK),
    ("GET", f"/api/conversations/{MISSING}/messages/1", None, CASEWORK),
    ("POST", f"/api/conversations/{MISSING}/take", None, CASEWORK),
    ("POST", f"/api/conversations/{MISSING}/reply", {"text": "hi"}, CASEWORK),
    ("POST", f"/api/conversations/{MISSING}/location-link", None, CASEWORK),
    ("POST", f"/api/conversations/{MISSING}/transfer", {"to": "someone"}, CASEWORK),
    ("POST", f"/api/conversations/{MISSING}/release", None, CASEWORK),
    ("POST", f"/api/conversations/{MISSING}/close", {"outcome": "information"}, CASEWORK),
    ("PATCH", f"/api/conversations/{MISSING}/triage", {"priority": "request"}, CASEWORK),
    ("PUT", f"/api/conversations/{MISSING}/summary", {"where": "Lào Cai"}, CASEWORK),
    ("GET", "/api/audit", None, OVERSIGHT),
    ("GET", "/api/supervisor/overview", None, OVERSIGHT),
]


@pytest.fixture
async def everyone(staff):
    return {role: await staff(f"user-{role.replace('_', '-')}", role) for role in ROLES}


async def test_every_endpoint_for_every_role(everyone):
    for method, path, body, allowed in ENDPOINTS:
        for role, member in everyone.items():
            status, answer = await member.call(method, path, body)
            if role in allowed:
                assert status not in (401, 403), (method, path, role, status, answer)
                assert status in (200, 404, 400), (method, path, role, status, answer)
            else:
                assert status == 403, (method, path, role, status, answer)
                assert role in answer["error"]


async def test_without_a_session_everything_is_401(app_client):
    for method, path, body, _ in ENDPOINTS:
        async with app_client.request(method, path, json=body) as r:
            assert r.status == 401, (method, path)


async def test_every_api_route_is_guarded(app_client):
    """A new /api/ route without `requires` would be readable by anyone: refuse that here."""
    open_routes = {"/api/login", "/api/live"}
    unguarded = [f"{r.method} {r.resource.canonical}" for r in app_client.app.router.routes()
                 if r.resource is not None and r.resource.canonical.startswith("/api/")
                 and r.resource.canonical not in open_routes and r.method != "HEAD"
                 and not getattr(r.handler, "roles", None)]
    assert unguarded == []


async def test_content_editor_cannot_read_a_conversation(app_client, everyone):
    cid = await queued_conversation(app_client.gw)
    status, body = await everyone["content_editor"].get(f"/api/conversations/{cid}")
    assert status == 403 and "messages" not in body
    status, body = await everyone["counselor"].get(f"/api/conversations/{cid}")
    assert status == 200 and body["conversation"]["id"] == cid


async def test_state_changes_without_or_with_a_wrong_csrf_token_are_refused(app_client, staff):
    cid = await queued_conversation(app_client.gw)
    anna = await staff("anna", "counselor")
    for csrf in (False, "wrong-token", ""):
        status, body = await anna.post(f"/api/conversations/{cid}/take", csrf=csrf)
        assert status == 403 and "CSRF" in body["error"]
    [conv] = await load(app_client.gw, Conversation, id=cid)
    assert conv.state == "queued" and conv.assigned_to is None
    assert (await anna.post(f"/api/conversations/{cid}/take"))[0] == 200
    for csrf in (False, "wrong-token"):
        assert (await anna.post(f"/api/conversations/{cid}/reply", {"text": "no token"}, csrf=csrf))[0] == 403
        assert (await anna.call("PATCH", f"/api/conversations/{cid}/triage", {"priority": "request"},
                                csrf=csrf))[0] == 403
        assert (await anna.call("PUT", f"/api/conversations/{cid}/summary", {"where": "x"}, csrf=csrf))[0] == 403
        assert (await anna.post(f"/api/conversations/{cid}/close", {"outcome": "information"}, csrf=csrf))[0] == 403
    assert [m for m in await load(app_client.gw, Message, conversation_id=cid) if m.author == "counselor"] == []
    [conv] = await load(app_client.gw, Conversation, id=cid)
    assert (conv.state, conv.priority, conv.summary) == ("assigned", "at_risk", {})
    # another user's token does not work either
    binh = await staff("binh", "counselor")
    assert (await anna.post(f"/api/conversations/{cid}/reply", {"text": "x"}, csrf=binh.csrf))[0] == 403


async def test_login_is_throttled_after_repeated_failures(app_client, staff):
    await staff("anna", "counselor", login=False)
    statuses = []
    for _ in range(6):
        async with app_client.post("/api/login", json={"username": "anna", "password": "wrong-password"}) as r:
            statuses.append(r.status)
    assert statuses == [401] * 5 + [429]
    async with app_client.post("/api/login", json={"username": "anna", "password": PASSWORD}) as r:
        assert r.status == 429 and "Retry-After" in r.headers


async def test_login_cookie_and_logout(app_client, staff):
    anna = await staff("anna", "counselor", login=False)
    async with anna.client.post("/api/login", json={"username": "anna", "password": PASSWORD}) as r:
        assert r.status == 200
        cookie = r.headers["Set-Cookie"]
        body = await r.json()
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert body["user"]["name"] == "anna" and body["user"]["role"] == "counselor" and body["csrf_token"]
    anna.csrf = body["csrf_token"]
    assert (await anna.get("/api/me"))[0] == 200
    assert (await anna.post("/api/logout"))[0] == 200
    assert (await anna.get("/api/queue"))[0] == 401


async def test_api_answers_are_not_cached_and_not_framable(app_client, staff):
    anna = await staff("anna", "counselor")
    async with anna.client.get("/api/queue") as r:
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    async with app_client.get("/api/queue") as r:  # also on refusals
        assert r.status == 401 and r.headers["Cache-Control"] == "no-store"


async def test_console_page_has_a_strict_csp(app_client):
    async with app_client.get("/console") as r:
        assert r.status == 200
        html = await r.text()
        csp = r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["frame-src"] == "https://www.openstreetmap.org"
    assert directives["frame-ancestors"] == "'none'"
    assert "<script>" not in html and "onclick" not in html.lower() and "style=" not in html
    assert '<script src="/console/static/app.js" defer></script>' in html
    async with app_client.get("/console/static/app.js") as r:
        assert r.status == 200 and "textContent" in await r.text()
    async with app_client.get("/console/static/../../settings.py") as r:
        assert r.status in (403, 404)


async def test_console_script_never_uses_inner_html():
    from bot.console.pages import STATIC

    script = (STATIC / "app.js").read_text(encoding="utf-8")
    for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert risky not in script, risky
