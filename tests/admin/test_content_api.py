"""Answers: list, search, preview, save, history with diffs, one-step revert; roles and CSRF;
an edit is in the very next reply (the real action server code and the gateway's own texts)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.answers import ActionAnswer
from actions.runtime import Runtime, set_runtime
from bot.db.models import Response, ResponseVersion
from bot.settings import Settings
from tests.admin.conftest import audit_actions

KEY = "utter_faq_cost"


def tracker(text: str, intent: str, lang: str = "vi") -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.93}, "entities": [],
              "intent_ranking": [{"name": intent, "confidence": 0.93}], "metadata": {"language": lang}}
    events = [{"event": "action", "name": "action_listen"},
              {"event": "user", "text": text, "parse_data": latest, "metadata": {"language": lang}}]
    return Tracker("admin-test-user", {"language": None, "agency_query": None, "requested_slot": None}, latest,
                   events, False, None, {}, "action_listen")


async def bot_answer(db_url: str, content_dir: Path, text: str, intent: str, lang: str = "vi") -> str:
    """What the action server's action_answer sends for this message (a fresh runtime, as in a
    running action server: it reads the database on every message)."""
    runtime = Runtime(Settings(database_url=db_url, content_dir=content_dir))
    set_runtime(runtime)
    try:
        dispatcher = CollectingDispatcher()
        await ActionAnswer().run(dispatcher, tracker(text, intent, lang), {})
        return "\n".join(m.get("text") or "" for m in dispatcher.messages)
    finally:
        await runtime.close()
        set_runtime(None)


async def current(gw: Any, key: str, lang: str) -> Response:
    async with gw.sessions() as session:
        return await session.scalar(select(Response).where(Response.key == key, Response.lang == lang))


async def test_list_and_search(editor) -> None:
    status, out = await editor.call("GET", "/api/content/responses")
    assert status == 200
    rows = out["responses"]
    assert {(r["key"], r["lang"]) for r in rows} >= {(KEY, "vi"), (KEY, "en"), ("utter_queued", "vi")}
    assert all({"key", "lang", "text", "version"} <= set(r) for r in rows)
    status, out = await editor.call("GET", "/api/content/responses?q=mien phi")  # folded search finds "miễn phí"
    assert status == 200
    assert (KEY, "vi") in {(r["key"], r["lang"]) for r in out["responses"]}
    assert len(out["responses"]) < len(rows)


async def test_an_edit_is_in_the_next_reply_without_training_and_reverts(app_client, editor, db_url, repo) -> None:
    question = "gọi 111 có mất tiền không"
    before = await bot_answer(db_url, repo / "content", question, "faq_cost")
    row = await current(app_client.gw, KEY, "vi")
    assert before == row.text

    new_text = row.text + "\n\nMARK-edited-answer"
    status, saved = await editor.call("PUT", f"/api/content/responses/{KEY}/vi", {"text": new_text})
    assert status == 200, saved
    assert saved["version"] == row.version + 1 and saved["updated_by"] == "lan"
    assert "+MARK-edited-answer" in saved["diff"]

    after = await bot_answer(db_url, repo / "content", question, "faq_cost")
    assert "MARK-edited-answer" in after  # the next reply, with no training and no restart
    assert "MARK-edited-answer" not in await bot_answer(db_url, repo / "content", "does it cost money", "faq_cost",
                                                        "en")

    status, history = await editor.call("GET", f"/api/content/responses/{KEY}/vi/history")
    assert status == 200
    newest, older = history["versions"][0], history["versions"][1]
    assert newest["version"] == saved["version"] and newest["author"] == "lan" and newest["created_at"]
    assert newest["current"] and "+MARK-edited-answer" in newest["diff"]
    assert older["author"] == "seed" and not older["current"]

    status, reverted = await editor.call("POST", f"/api/content/responses/{KEY}/vi/revert", {"version": row.version})
    assert status == 200, reverted
    assert reverted["text"] == row.text and reverted["version"] == saved["version"] + 1
    assert "-MARK-edited-answer" in reverted["diff"]
    assert await bot_answer(db_url, repo / "content", question, "faq_cost") == row.text
    actions = await audit_actions(app_client.gw)
    assert ("answer_saved", f"{KEY}/vi") in actions and ("answer_reverted", f"{KEY}/vi") in actions


async def test_the_gateways_own_texts_change_at_once(app_client, editor) -> None:
    row = await current(app_client.gw, "utter_queued", "vi")
    status, _ = await editor.call("PUT", "/api/content/responses/utter_queued/vi", {"text": row.text + " MARK-queued"})
    assert status == 200
    assert (await app_client.gw.text("utter_queued", "vi")).endswith("MARK-queued")


@pytest.mark.parametrize("text,message", [
    ("Công an sẽ giúp bạn.\nGọi 111.", "'công an' in the first line"),
    ("Mình đây.\nGiá là {price}.", "unknown placeholder(s) {price}"),
    ("Mình đây. " + "x" * 2100, "the limit is 2000"),
    ("   ", "the answer is empty"),
    ("Mình đây {", "unbalanced braces"),
])
async def test_an_invalid_edit_is_refused_with_the_message_and_nothing_changes(app_client, editor, text, message) -> None:
    row = await current(app_client.gw, KEY, "vi")
    status, out = await editor.call("PUT", f"/api/content/responses/{KEY}/vi", {"text": text})
    assert status == 400
    assert message in out["error"]
    after = await current(app_client.gw, KEY, "vi")
    assert (after.text, after.version) == (row.text, row.version)


async def test_preview_checks_and_diffs_without_saving(app_client, editor) -> None:
    row = await current(app_client.gw, KEY, "vi")
    status, out = await editor.call("POST", "/api/content/preview",
                                    {"key": KEY, "lang": "vi", "text": "Xin chào.\nGọi 111 là miễn phí."})
    assert status == 200 and out["ok"] and out["error"] is None
    assert out["preview"]["first_line"] == "Xin chào."
    assert out["preview"]["notification"].startswith("Xin chào. Gọi 111")  # a short first line runs on
    assert "+Xin chào." in out["diff"]
    status, out = await editor.call("POST", "/api/content/preview",
                                    {"key": KEY, "lang": "vi", "text": "Bị bán sang Trung Quốc?"})
    assert status == 200 and not out["ok"] and "notification" in out["error"]
    assert (await current(app_client.gw, KEY, "vi")).version == row.version


async def test_an_edit_based_on_an_old_version_is_refused(app_client, editor) -> None:
    row = await current(app_client.gw, KEY, "en")
    status, _ = await editor.call("PUT", f"/api/content/responses/{KEY}/en", {"text": row.text + " one",
                                                                            "version": row.version})
    assert status == 200
    status, out = await editor.call("PUT", f"/api/content/responses/{KEY}/en", {"text": row.text + " two",
                                                                              "version": row.version})
    assert status == 409 and out["current"]["text"].endswith(" one")


async def test_unknown_answers_and_versions(editor) -> None:
    assert (await editor.call("PUT", "/api/content/responses/utter_nope/vi", {"text": "Xin chào"}))[0] == 404
    assert (await editor.call("GET", "/api/content/responses/utter_nope/vi/history"))[0] == 404
    status, out = await editor.call("POST", f"/api/content/responses/{KEY}/vi/revert", {"version": 999})
    assert status == 404 and "no version 999" in out["error"]
    assert (await editor.call("POST", f"/api/content/responses/{KEY}/vi/revert", {"version": "1"}))[0] == 400
    status, out = await editor.call("PUT", f"/api/content/responses/{KEY}/fr", {"text": "Bonjour"})
    assert status == 400 and "unknown language" in out["error"]


ENDPOINTS = [
    ("GET", "/api/content/responses", None),
    ("GET", f"/api/content/responses/{KEY}/vi", None),
    ("GET", f"/api/content/responses/{KEY}/vi/history", None),
    ("PUT", f"/api/content/responses/{KEY}/vi", {"text": "Xin chào MARK"}),
    ("POST", f"/api/content/responses/{KEY}/vi/revert", {"version": 1}),
    ("POST", "/api/content/preview", {"key": KEY, "lang": "vi", "text": "Xin chào"}),
    ("GET", "/api/content/safety-phrases", None),
    ("PUT", "/api/content/safety-phrases", {"phrases": []}),
    ("GET", "/api/content/safety-phrases/history", None),
    ("POST", "/api/content/safety-phrases/revert", {"version": 0}),
    ("POST", "/api/content/safety-check", {"text": "xin chào"}),
    ("GET", "/api/content/intents", None),
    ("GET", "/api/content/intents/faq_cost", None),
    ("GET", "/api/content/changes", None),
    ("POST", "/api/content/changes", {"op": "add", "intent": "faq_cost", "text": "MARK"}),
    ("DELETE", "/api/content/changes/1", None),
    ("POST", "/api/content/topics", {}),
    ("POST", "/api/publish", None),
    ("GET", "/api/publish", None),
    ("GET", "/api/publish/1", None),
    ("GET", "/api/publish/models", None),
    ("POST", "/api/publish/rollback", {"model": "x.tar.gz"}),
    ("POST", "/api/agencies/import?dry_run=1", None),
]


@pytest.mark.parametrize("role", ["counselor", "supervisor"])
async def test_other_roles_get_403_and_change_nothing(app_client, staff, role) -> None:
    member = await staff(f"user-{role}", role)
    row = await current(app_client.gw, KEY, "vi")
    for method, path, body in ENDPOINTS:
        status, out = await member.call(method, path, body)
        assert status == 403, (method, path, status, out)
    after = await current(app_client.gw, KEY, "vi")
    assert (after.text, after.version) == (row.text, row.version)


async def test_admin_may_edit(app_client, staff) -> None:
    admin = await staff("root", "admin")
    row = await current(app_client.gw, KEY, "en")
    status, out = await admin.call("PUT", f"/api/content/responses/{KEY}/en", {"text": row.text + " (admin)"})
    assert status == 200 and out["updated_by"] == "root"


async def test_without_sign_in_401(app_client) -> None:
    for method, path, body in ENDPOINTS:
        async with app_client.request(method, path, json=body) as r:
            assert r.status == 401, (method, path)


async def test_state_changes_need_the_csrf_token(app_client, editor) -> None:
    row = await current(app_client.gw, KEY, "vi")
    for method, path, body in ENDPOINTS:
        if method == "GET":
            continue
        status, out = await editor.call(method, path, body, csrf=False)
        assert status == 403 and "CSRF" in out["error"], (method, path)
    status, _ = await editor.call("PUT", f"/api/content/responses/{KEY}/vi", {"text": "Xin chào MARK"}, csrf=False)
    assert status == 403
    after = await current(app_client.gw, KEY, "vi")
    assert (after.text, after.version) == (row.text, row.version)
    async with app_client.gw.sessions() as session:
        versions = (await session.scalars(select(ResponseVersion.version).where(ResponseVersion.key == KEY))).all()
    assert len(versions) == 2  # the seed's vi and en only


async def test_api_answers_are_not_cached_and_the_page_has_a_strict_csp(app_client, editor) -> None:
    async with editor.client.get("/api/content/responses") as r:
        assert r.headers["Cache-Control"] == "no-store"
    async with app_client.get("/admin") as r:
        assert r.status == 200
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["X-Frame-Options"] == "DENY"
        body = await r.text()
        assert "/admin/static/admin.js" in body
    async with app_client.get("/admin/static/admin.js") as r:
        assert r.status == 200
        script = await r.text()
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script
