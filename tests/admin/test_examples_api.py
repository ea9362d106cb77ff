"""Example questions: the intents and their examples, drafts (add, edit, remove, new topic)
checked as they are written, discarded; the repository's files untouched until a publish."""
from __future__ import annotations

from tests.admin.conftest import TOPIC_ANSWERS, audit_actions, snapshot, topic_examples

NEW = "trung tâm Đà Nẵng làm việc đến mấy giờ tối"


async def test_intents_and_examples(editor) -> None:
    status, out = await editor.call("GET", "/api/content/intents")
    assert status == 200 and out["min_examples"] == 10 and out["pending"] == []
    by_name = {i["name"]: i for i in out["intents"]}
    assert by_name["faq_hours"]["examples"] >= 25 and by_name["faq_hours"]["topic"]
    assert by_name["emergency"]["examples"] >= 120 and not by_name["emergency"]["topic"]
    status, out = await editor.call("GET", "/api/content/intents/faq_cost")
    texts = [e["text"] for e in out["examples"]]
    assert "gọi 111 có mất tiền không" in texts and "goi 111 co mat tien khong" not in texts  # the twin is implied
    assert {"text": "gọi 111 có mất tiền không", "twin": "goi 111 co mat tien khong"} in out["examples"]
    assert (await editor.call("GET", "/api/content/intents/faq_nope"))[0] == 404


async def test_drafts_are_checked_listed_and_discarded_without_touching_the_files(app_client, editor, repo) -> None:
    files = snapshot(repo)
    status, out = await editor.call("POST", "/api/content/changes", {"op": "add", "intent": "faq_hours", "text": NEW})
    assert status == 201, out
    change = out["change"]
    assert change["op"] == "add" and change["state"] == "pending" and change["created_by"] == "lan"
    status, detail = await editor.call("GET", "/api/content/intents/faq_hours")
    assert detail["count_after"] == detail["count"] + 1 and NEW in detail["drafted"]
    assert [p["id"] for p in detail["pending"]] == [change["id"]]

    status, out = await editor.call("POST", "/api/content/changes",
                                    {"op": "edit", "intent": "faq_cost", "old_text": "gọi 111 có mất tiền không",
                                     "text": "gọi 111 có tốn tiền không ạ"})
    assert status == 201
    status, out = await editor.call("POST", "/api/content/changes",
                                    {"op": "remove", "intent": "faq_cost", "old_text": "gọi 111 mất phí không"})
    assert status == 201
    status, listed = await editor.call("GET", "/api/content/changes")
    assert [c["op"] for c in listed["changes"]] == ["remove", "edit", "add"]
    assert snapshot(repo) == files  # drafts live in the database until a publish

    status, out = await editor.call("DELETE", f"/api/content/changes/{change['id']}")
    assert status == 200 and out["change"]["state"] == "discarded"
    assert (await editor.call("DELETE", f"/api/content/changes/{change['id']}"))[0] == 404
    actions = [a for a, _ in await audit_actions(app_client.gw)]
    assert actions.count("example_drafted") == 3 and "example_discarded" in actions


async def test_bad_drafts_are_refused_with_the_reason(editor) -> None:
    cases = [
        ({"op": "add", "intent": "faq_hours", "text": "gọi 111 có mất tiền không"}, "already an example of faq_cost"),
        ({"op": "add", "intent": "faq_hours", "text": "mấy giờ thì có người trực"}, "held-out test set"),
        ({"op": "add", "intent": "faq_cost", "text": "GỌI 111 CÓ MẤT TIỀN KHÔNG"}, "already an example of faq_cost"),
        ({"op": "remove", "intent": "faq_cost", "old_text": "goi 111 co mat tien khong"}, "diacritic-free copy"),
        ({"op": "remove", "intent": "faq_cost", "old_text": "không có câu này"}, "is not an example of faq_cost"),
        ({"op": "add", "intent": "faq_nope", "text": "xin chào"}, "no intent 'faq_nope'"),
        ({"op": "add", "intent": "faq_hours", "text": ""}, "empty"),
        ({"op": "move", "intent": "faq_hours", "text": "x"}, "op must be"),
    ]
    for body, message in cases:
        status, out = await editor.call("POST", "/api/content/changes", body)
        assert status == 400 and message in out["error"], (body, out)
    assert (await editor.call("GET", "/api/content/changes"))[1]["changes"] == []


async def test_a_draft_sees_earlier_drafts(editor) -> None:
    body = {"op": "add", "intent": "faq_hours", "text": NEW}
    assert (await editor.call("POST", "/api/content/changes", body))[0] == 201
    status, out = await editor.call("POST", "/api/content/changes", body)
    assert status == 400 and "already an example of faq_hours" in out["error"]
    status, out = await editor.call("POST", "/api/content/changes", {**body, "intent": "faq_cost"})
    assert status == 400 and "already an example of faq_hours" in out["error"]


async def test_new_topic_draft(editor) -> None:
    body = {"intent": "faq_skills_class", "title": "Lớp kỹ năng an toàn", "answers": TOPIC_ANSWERS,
            "examples": topic_examples(4)}
    status, out = await editor.call("POST", "/api/content/topics", body)
    assert status == 201, out
    assert out["warnings"] == ["faq_skills_class has 4 different example questions; a publish needs at least 10"]
    status, out = await editor.call("GET", "/api/content/intents")
    topic = next(i for i in out["intents"] if i["name"] == "faq_skills_class")
    assert topic["new"] and topic["examples"] == 0 and topic["examples_after"] == 4
    status, out = await editor.call("POST", "/api/content/changes",
                                    {"op": "add", "intent": "faq_skills_class", "text": "có lớp kỹ năng online không"})
    assert status == 201
    status, detail = await editor.call("GET", "/api/content/intents/faq_skills_class")
    assert detail["new"] and detail["count_after"] == 5
    assert (await editor.call("POST", "/api/content/topics", body))[0] == 400  # already waiting


async def test_bad_topics_are_refused(editor) -> None:
    good = {"intent": "faq_skills_class", "title": "Lớp kỹ năng", "answers": TOPIC_ANSWERS,
            "examples": topic_examples(10)}
    cases = [
        ({"intent": "faq_hours"}, "already an intent 'faq_hours'"),
        ({"intent": "Skills"}, "lower-case letters"),
        ({"title": ""}, "title"),
        ({"answers": {"vi": "Công an sẽ giúp bạn.", "en": TOPIC_ANSWERS["en"]}}, "answer (vi)"),
        ({"answers": {"vi": TOPIC_ANSWERS["vi"], "en": "Hi {name}"}}, "answer (en): unknown placeholder"),
        ({"answers": {"vi": TOPIC_ANSWERS["vi"]}}, "answer (en): the answer is empty"),
        ({"examples": topic_examples(3) + ["gọi 111 có mất tiền không"]}, "already an example of faq_cost"),
        ({"examples": []}, "example questions"),
    ]
    for change, message in cases:
        status, out = await editor.call("POST", "/api/content/topics", {**good, **change})
        assert status == 400 and message in out["error"], (change, out)
