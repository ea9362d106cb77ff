"""Safety phrases: the test box, editing the list (refused with the message when invalid, live at
once in the gateway), versions in the audit log, restoring a version."""
from __future__ import annotations

import pytest

from tests.admin.conftest import audit_actions

HELD = "cứu tôi với, tôi đang bị giữ ở đây, họ không cho tôi về nhà"
NEW_PHRASE = {"phrase": "bat dong tien phat", "priority": "at_risk", "reason": "fines imposed by the employer"}
NEW_SENTENCE = "chủ bắt đóng tiền phạt mỗi ngày mười triệu"


@pytest.mark.parametrize("text,escalate", [
    (HELD, True),
    ("em muốn bán điện thoại cũ", False),
    ("toi muon mua ban dat o quan 9", False),
])
async def test_safety_check_contract(editor, text, escalate) -> None:
    status, out = await editor.call("POST", "/api/content/safety-check", {"text": text})
    assert status == 200
    assert out["escalate"] is escalate
    assert set(out) >= {"escalate", "priority", "reason", "matched"}
    if escalate:
        assert out["priority"] == "emergency" and out["reason"] and out["matched"]
    else:
        assert out["priority"] is None and out["matched"] == []


async def test_an_edit_is_live_at_once_versioned_and_restorable(app_client, editor) -> None:
    gw = app_client.gw
    assert not (await gw.content.safety_screen()).check(NEW_SENTENCE).escalate  # and now cached
    status, before = await editor.call("GET", "/api/content/safety-phrases")
    assert status == 200 and before["version"] == 0 and before["count"] > 50
    phrases = [{k: p[k] for k in ("phrase", "priority", "reason")} for p in before["phrases"]]

    status, out = await editor.call("PUT", "/api/content/safety-phrases",
                                    {"phrases": [NEW_PHRASE] + phrases, "version": 0})
    assert status == 200, out
    assert out["version"] == 1 and out["added"] == [NEW_PHRASE] and not out["removed"]
    verdict = (await gw.content.safety_screen()).check(NEW_SENTENCE)  # the gateway's screen, no 5 s wait
    assert verdict.escalate and verdict.reason == "fines imposed by the employer"
    status, out = await editor.call("POST", "/api/content/safety-check", {"text": NEW_SENTENCE})
    assert out["escalate"] and out["matched"] == ["bat dong tien phat"]

    changed = [dict(p, reason="held: changed reason") if p["phrase"] == phrases[0]["phrase"] else p
               for p in [NEW_PHRASE] + phrases]
    status, out = await editor.call("PUT", "/api/content/safety-phrases", {"phrases": changed, "version": 1})
    assert status == 200 and out["version"] == 2
    assert out["removed"] == [] and [c["phrase"] for c in out["changed"]] == [phrases[0]["phrase"]]

    status, history = await editor.call("GET", "/api/content/safety-phrases/history")
    assert [v["version"] for v in history["versions"]] == [2, 1]
    assert history["versions"][1]["author"] == "lan" and history["versions"][1]["added"] == [NEW_PHRASE]

    status, out = await editor.call("POST", "/api/content/safety-phrases/revert", {"version": 0})
    assert status == 200 and out["version"] == 3 and out["removed"] == [NEW_PHRASE]
    status, now = await editor.call("GET", "/api/content/safety-phrases")
    assert [{k: p[k] for k in ("phrase", "priority", "reason")} for p in now["phrases"]] == phrases
    assert not (await gw.content.safety_screen()).check(NEW_SENTENCE).escalate
    assert [a for a, _ in await audit_actions(gw)].count("safety_phrases") == 3


@pytest.mark.parametrize("entry,message", [
    ({"phrase": "ban", "priority": "at_risk", "reason": "x"}, "one Vietnamese syllable"),
    ({"phrase": "bị bán sang", "priority": "at_risk", "reason": "x"}, "not in folded form"),
    ({"phrase": "* khong cho", "priority": "at_risk", "reason": "x"}, "'*' at the start"),
    ({"phrase": "khong cho ve", "priority": "urgent", "reason": "x"}, "priority must be one of"),
    ({"phrase": "khong cho ve", "priority": "at_risk", "reason": " "}, "reason must be a non-empty text"),
])
async def test_an_invalid_phrase_is_refused_with_the_message_and_nothing_changes(app_client, editor, entry,
                                                                                 message) -> None:
    _, before = await editor.call("GET", "/api/content/safety-phrases")
    status, out = await editor.call("PUT", "/api/content/safety-phrases",
                                    {"phrases": [entry] + before["phrases"][:3]})
    assert status == 400 and message in out["error"] and "entry 1" in out["error"]
    _, after = await editor.call("GET", "/api/content/safety-phrases")
    assert after["phrases"] == before["phrases"] and after["version"] == 0
    assert "safety_phrases" not in [a for a, _ in await audit_actions(app_client.gw)]


async def test_empty_list_and_stale_version_are_refused(editor) -> None:
    status, out = await editor.call("PUT", "/api/content/safety-phrases", {"phrases": []})
    assert status == 400 and "empty" in out["error"]
    _, now = await editor.call("GET", "/api/content/safety-phrases")
    status, out = await editor.call("PUT", "/api/content/safety-phrases", {"phrases": now["phrases"][:5], "version": 7})
    assert status == 409


async def test_the_test_box_tries_a_draft_list(editor) -> None:
    status, out = await editor.call("POST", "/api/content/safety-check",
                                    {"text": NEW_SENTENCE, "phrases": [NEW_PHRASE]})
    assert status == 200 and out["escalate"] and out["phrases"] == "draft"
    status, out = await editor.call("POST", "/api/content/safety-check",
                                    {"text": NEW_SENTENCE, "phrases": [{"phrase": "ban", "priority": "at_risk",
                                                                         "reason": "x"}]})
    assert status == 400 and "syllable" in out["error"]
    status, out = await editor.call("POST", "/api/content/safety-check", {"text": NEW_SENTENCE})
    assert not out["escalate"]  # the draft was not saved

