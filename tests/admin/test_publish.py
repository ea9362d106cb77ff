"""Publishing example changes (training and the NLU test stubbed; the Rasa model API is a fake
server reached over HTTP): the accepted data goes back to the repository and the model loads;
an invalid change or a lower risk recall is refused and the old model keeps serving; one publish
at a time; rollback; progress; recovery."""
from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.db.models import ExampleChange, PublishJob, Response, utcnow
from bot.publish import (
    TrainingProgress,
    gate_decision,
    set_epochs,
    validation_problems,
)
from bot.text import strip_diacritics
from tests.admin.fakes import FakeRasaServer
from tests.admin.conftest import (
    SERVING,
    TOPIC_ANSWERS,
    audit_actions,
    snapshot,
    topic_examples,
    wait_for_job,
)
from tests.admin.test_content_api import bot_answer

NEW = "trung tâm Đà Nẵng làm việc đến mấy giờ tối"
TOPIC = "faq_skills_class"


async def draft_example(editor, text: str = NEW, intent: str = "faq_hours") -> int:
    status, out = await editor.call("POST", "/api/content/changes", {"op": "add", "intent": intent, "text": text})
    assert status == 201, out
    return out["change"]["id"]


async def draft_topic(editor, n: int) -> int:
    status, out = await editor.call("POST", "/api/content/topics",
                                    {"intent": TOPIC, "title": "Lớp kỹ năng an toàn", "answers": TOPIC_ANSWERS,
                                     "examples": topic_examples(n)})
    assert status == 201, out
    return out["change"]["id"]


async def publish(editor) -> int:
    status, out = await editor.call("POST", "/api/publish")
    assert status == 202, out
    return out["id"]


async def pending(gw) -> list[int]:
    async with gw.sessions() as session:
        return list((await session.scalars(select(ExampleChange.id).where(ExampleChange.state == "pending"))).all())


async def test_publish_writes_the_data_back_loads_the_model_and_answers_the_new_topic(
        app_client, editor, repo, rasa, db_url) -> None:
    await draft_example(editor)
    await draft_topic(editor, 12)
    job_id = await publish(editor)
    job = await wait_for_job(editor, job_id)
    assert job["state"] == "done", job["error"]
    assert job["error"] is None and job["finished_at"] and job["created_by"] == "lan"
    progress = job["progress"]
    assert progress["percent"] == 100
    assert [(s["name"], s["state"]) for s in progress["steps"]] == [
        ("validating", "done"), ("training", "done"), ("testing", "done"), ("loading", "done")]
    assert all(isinstance(s["seconds"], float) for s in progress["steps"])
    gate = job["gate"]
    assert gate["passed"] and gate["serving_model"] == SERVING and gate["required_risk_recall"] == 1.0
    assert gate["candidate"]["risk_recall"] == 1.0 and gate["serving"]["risk_recall"] == 1.0

    # Rasa was asked to load the new model by its absolute path, and serves it
    model = repo / "models" / job["model"]
    assert model.exists() and (repo / "models" / SERVING).exists()  # the earlier model is kept
    assert rasa.loads == [{"body": {"model_file": str(model.resolve())}, "query": {}}]
    assert Path(rasa.loads[0]["body"]["model_file"]).is_absolute() and rasa.serving == model.name
    assert app_client.steps.evaluated == [[job["model"], SERVING]]

    # the accepted data is in the repository's files
    hotline = (repo / "nlu_data" / "nlu" / "faq_hotline.yml").read_text(encoding="utf-8")
    assert f"      - {NEW}\n      - {strip_diacritics(NEW)}\n" in hotline
    assert f"  - {TOPIC}\n" in (repo / "domain.yml").read_text(encoding="utf-8")
    topic_file = yaml.safe_load((repo / "nlu_data" / "nlu" / f"{TOPIC}.yml").read_text(encoding="utf-8"))
    assert topic_file["nlu"][0]["intent"] == TOPIC and len(topic_file["nlu"][0]["examples"].splitlines()) == 24
    rules = yaml.safe_load((repo / "nlu_data" / "rules" / "faq.yml").read_text(encoding="utf-8"))["rules"]
    assert {"intent": TOPIC} in rules[-1]["steps"] and {"action": "action_answer"} in rules[-1]["steps"]
    seed = yaml.safe_load((repo / "content" / "responses.yml").read_text(encoding="utf-8"))
    assert seed[f"utter_{TOPIC}"] == TOPIC_ANSWERS and "utter_faq_cost" in seed
    assert f"| `{TOPIC}` | Lớp kỹ năng an toàn | `utter_{TOPIC}` |" in (repo / "docs" / "INTENTS.md").read_text()
    assert f"  - {TOPIC}\n" in app_client.steps.data_seen["domain.yml"]  # what was trained is what was written

    # the drafts are published, the new topic answers at once
    assert await pending(app_client.gw) == []
    assert "Lớp tập huấn kỹ năng" in await bot_answer(db_url, repo / "content", "lớp kỹ năng ở đâu", TOPIC)
    status, out = await editor.call("GET", "/api/content/intents")
    assert next(i for i in out["intents"] if i["name"] == TOPIC)["examples"] == 12
    actions = await audit_actions(app_client.gw)
    assert ("publish_started", str(job_id)) in actions and ("publish_done", str(job_id)) in actions

    # the model list shows both, the new one serving; a rollback loads the earlier file
    status, out = await editor.call("GET", "/api/publish/models")
    assert [(m["name"], m["serving"]) for m in out["models"]] == [(model.name, True), (SERVING, False)]
    status, out = await editor.call("POST", "/api/publish/rollback", {"model": SERVING})
    assert status == 200 and out == {"model": SERVING, "previous": model.name, "serving": SERVING}
    assert rasa.loads[-1]["body"]["model_file"] == str((repo / "models" / SERVING).resolve())
    assert ("model_rollback", SERVING) in await audit_actions(app_client.gw)
    for bad in ("../domain.yml", "nope.tar.gz", "/etc/passwd", None):
        assert (await editor.call("POST", "/api/publish/rollback", {"model": bad}))[0] == 404


async def test_too_few_examples_are_refused_with_the_message_and_the_old_model_keeps_serving(
        app_client, editor, repo, rasa) -> None:
    before = snapshot(repo)
    await draft_example(editor)
    await draft_topic(editor, 4)
    job = await wait_for_job(editor, await publish(editor))
    assert job["state"] == "refused"
    assert f"intent {TOPIC} has 4 example questions; it needs at least 10" in job["error"]
    assert [(s["name"], s["state"]) for s in job["progress"]["steps"]] == [
        ("validating", "refused"), ("training", "waiting"), ("testing", "waiting"), ("loading", "waiting")]
    assert app_client.steps.trained == [] and rasa.loads == [] and rasa.serving == SERVING
    assert snapshot(repo) == before  # not one file of the repository changed
    assert len(await pending(app_client.gw)) == 2  # the drafts wait to be completed
    async with app_client.gw.sessions() as session:
        assert await session.scalar(select(Response.id).where(Response.key == f"utter_{TOPIC}")) is None
    assert not (repo / "var" / "publish" / f"job-{job['id']}").exists()


async def test_a_rasa_validation_warning_refuses(app_client, editor, repo, rasa) -> None:
    before = snapshot(repo)
    app_client.steps.validation_problems = ["The intent 'faq_x' is not used in any story or rule."]
    await draft_example(editor)
    job = await wait_for_job(editor, await publish(editor))
    assert job["state"] == "refused"
    assert job["error"] == "rasa data validate: The intent 'faq_x' is not used in any story or rule."
    assert rasa.loads == [] and snapshot(repo) == before


async def test_lower_risk_recall_is_refused_by_the_gate(app_client, editor, repo, rasa) -> None:
    before = snapshot(repo)
    steps = app_client.steps
    steps.metrics[SERVING] = dict(steps.default, risk_recall=1.0)
    steps.default = dict(steps.default, risk_recall=0.95, macro_f1=0.97)  # the candidate
    await draft_example(editor, "người ta giữ hộ chiếu của em thì có sao không", "faq_lost_documents")
    job = await wait_for_job(editor, await publish(editor))
    assert job["state"] == "refused"
    assert "risk recall 0.950 is below the floor of 0.98" in job["error"]
    assert "below the serving model's 1.000" in job["error"] and "serving model stays" in job["error"]
    gate = job["gate"]
    assert not gate["passed"] and gate["candidate"]["risk_recall"] == 0.95 and gate["serving"]["risk_recall"] == 1.0
    assert [s["state"] for s in job["progress"]["steps"]] == ["done", "done", "refused", "waiting"]
    assert rasa.loads == [] and rasa.serving == SERVING
    assert snapshot(repo) == before
    assert sorted(p.name for p in (repo / "models").iterdir()) == [SERVING]  # the candidate is not kept


async def test_recall_above_the_floor_but_below_the_serving_model_is_refused(app_client, editor, rasa) -> None:
    steps = app_client.steps
    steps.metrics[SERVING] = dict(steps.default, risk_recall=1.0)
    steps.default = dict(steps.default, risk_recall=0.99)
    await draft_example(editor)
    job = await wait_for_job(editor, await publish(editor))
    assert job["state"] == "refused" and job["gate"]["reasons"] == [
        "risk recall 0.990 is below the serving model's 1.000"]
    assert rasa.loads == []


async def test_one_publish_at_a_time_with_visible_progress(app_client, editor, rasa) -> None:
    steps = app_client.steps
    steps.hold = asyncio.Event()
    change = await draft_example(editor)
    job_id = await publish(editor)
    for _ in range(400):
        status, job = await editor.call("GET", f"/api/publish/{job_id}")
        if job["state"] == "training" and job["progress"]["percent"] >= 75:
            break
        await asyncio.sleep(0.02)
    assert job["state"] == "training" and job["progress"]["detail"] == "DIETClassifier: epoch 5/5"
    assert job["progress"]["steps"][0]["state"] == "done" and job["progress"]["steps"][1]["state"] == "running"

    await draft_example(editor, "tổng đài An Giang mở cửa lúc mấy giờ sáng")
    status, out = await editor.call("POST", "/api/publish")
    assert status == 409 and out["id"] == job_id
    status, out = await editor.call("GET", "/api/publish")
    assert out["active"] == job_id
    assert (await editor.call("POST", "/api/publish/rollback", {"model": SERVING}))[0] == 409
    assert (await editor.call("DELETE", f"/api/content/changes/{change}"))[0] == 409

    steps.hold.set()
    job = await wait_for_job(editor, job_id)
    assert job["state"] == "done" and job["progress"]["changes"] == [change]
    assert len(await pending(app_client.gw)) == 1  # drafted during the publish: waits for the next one
    job2 = await wait_for_job(editor, await publish(editor))
    assert job2["state"] == "done" and len(rasa.loads) == 2


async def test_rasa_refusing_the_model_fails_and_changes_nothing(app_client, editor, repo, rasa) -> None:
    before = snapshot(repo)
    rasa.load_status = 500
    await draft_topic(editor, 10)
    job = await wait_for_job(editor, await publish(editor))
    assert job["state"] == "failed" and "Rasa refused the model (HTTP 500)" in job["error"]
    assert snapshot(repo) == before and rasa.serving == SERVING
    async with app_client.gw.sessions() as session:
        assert await session.scalar(select(Response.id).where(Response.key == f"utter_{TOPIC}")) is None
    assert len(await pending(app_client.gw)) == 1


async def test_a_published_model_goes_into_every_rasa_replica(app_client, editor, rasa) -> None:
    async with FakeRasaServer(serving=SERVING) as second:
        app_client.steps.config = replace(app_client.steps.config, rasa_model_urls=(rasa.url, second.url))
        await draft_example(editor)
        job = await wait_for_job(editor, await publish(editor))
        assert job["state"] == "done"
        assert rasa.serving == second.serving != SERVING and len(rasa.loads) == len(second.loads) == 1


async def test_a_replica_refusing_the_model_sends_the_others_back_to_the_serving_model(
        app_client, editor, repo, rasa) -> None:
    before = snapshot(repo)
    async with FakeRasaServer(serving=SERVING) as second:
        second.load_status = 500
        app_client.steps.config = replace(app_client.steps.config, rasa_model_urls=(rasa.url, second.url))
        await draft_example(editor)
        job = await wait_for_job(editor, await publish(editor))
        assert job["state"] == "failed" and "1 of 2 replicas had loaded it and went back" in job["error"]
        assert [Path(load["body"]["model_file"]).name for load in rasa.loads][1:] == [SERVING]
        assert rasa.serving == second.serving == SERVING and snapshot(repo) == before


async def test_the_rasa_token_is_sent(app_client, editor, rasa, repo) -> None:
    rasa.token = "secret-token"
    app_client.publisher.config.rasa_token = "secret-token"
    await draft_example(editor)
    job = await wait_for_job(editor, await publish(editor))
    assert job["state"] == "done", job["error"]
    assert rasa.loads[-1]["query"] == {"token": "secret-token"}


async def test_files_edited_during_the_publish_fail_it(app_client, editor, repo, rasa) -> None:
    app_client.steps.hold = asyncio.Event()
    await draft_example(editor)
    job_id = await publish(editor)
    for _ in range(400):
        if (await editor.call("GET", f"/api/publish/{job_id}"))[1]["state"] == "training":
            break
        await asyncio.sleep(0.02)
    path = repo / "nlu_data" / "nlu" / "greetings.yml"
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    app_client.steps.hold.set()
    job = await wait_for_job(editor, job_id)
    assert job["state"] == "failed" and "changed during the publish" in job["error"]
    assert rasa.loads == []


async def test_nothing_to_publish_and_unknown_jobs(editor) -> None:
    status, out = await editor.call("POST", "/api/publish")
    assert status == 400 and "no pending changes" in out["error"]
    assert (await editor.call("GET", "/api/publish/999"))[0] == 404


async def test_a_publish_whose_process_died_does_not_block(app_client, editor) -> None:
    old = (utcnow() - timedelta(minutes=30)).isoformat()
    async with app_client.gw.sessions() as session:
        session.add(PublishJob(state="training", progress={"heartbeat": old, "steps": []}, created_by="x",
                               created_at=utcnow() - timedelta(minutes=30)))
        await session.commit()
    assert await app_client.publisher.recover() == 1
    async with app_client.gw.sessions() as session:
        row = (await session.scalars(select(PublishJob))).one()
    assert row.state == "failed" and "interrupted" in row.error
    await draft_example(editor)
    job = await wait_for_job(editor, await publish(editor))
    assert job["state"] == "done"


async def test_the_gate_figures_are_cached_per_model(app_client, editor) -> None:
    await draft_example(editor)
    await wait_for_job(editor, await publish(editor))
    await draft_example(editor, "tổng đài An Giang mở cửa lúc mấy giờ sáng")
    job = await wait_for_job(editor, await publish(editor))
    assert job["state"] == "done"
    first, second = app_client.steps.evaluated
    assert second == [job["model"]]  # the serving model (published just before) was not evaluated again
    assert first[1] == SERVING


# ------------------------------------------------------------------------------------ units

def test_validation_output_is_read_for_warnings() -> None:
    output = ("2026-01-01 INFO     rasa.validator  - Validating intents...\n"
              "\x1b[93m/x/rasa/shared/utils/io.py:100: UserWarning: The intent 'faq_x' is listed in the domain "
              "file, but is not found in the NLU training data.\n\x1b[0m"
              "/x/pkg_resources/__init__.py:3117: DeprecationWarning: Deprecated call\n"
              "2026-01-01 ERROR    rasa.cli.utils  - Project validation completed with errors.\n")
    assert validation_problems(output, 1) == [
        "The intent 'faq_x' is listed in the domain file, but is not found in the NLU training data.",
        "Project validation completed with errors."]
    assert validation_problems("2026-01-01 INFO     rasa.validator  - fine\n", 0) == []
    assert validation_problems("Traceback\nKeyError: x\n", 2)[0].startswith("rasa data validate exited with status 2")


def test_training_output_becomes_progress() -> None:
    seen: list[tuple[float, str]] = []
    progress = TrainingProgress(lambda f, label: seen.append((round(f, 2), label)))
    for line in ["INFO rasa.engine.training.hooks  - Starting to train component 'RegexFeaturizer'.",
                 "INFO rasa.engine.training.hooks  - Starting to train component 'DIETClassifier'.",
                 "Epochs:   0%|          | 0/70 [00:00<?, ?it/s]",
                 "Epochs:  50%|█████     | 35/70 [00:30<00:30,  1.1it/s, t_loss=2.1, i_acc=0.9]",
                 "INFO rasa.engine.training.hooks  - Starting to train component 'RulePolicy'.",
                 "\x1b[92mYour Rasa model is trained and saved at 'out/x.tar.gz'.\x1b[0m"]:
        progress(line)
    assert seen == [(0.09, "RegexFeaturizer"), (0.3, "DIETClassifier"), (0.3, "DIETClassifier: epoch 0/70"),
                    (0.6, "DIETClassifier: epoch 35/70"), (0.92, "RulePolicy"), (1.0, "saved")]


def test_gate_decision() -> None:
    ok = gate_decision({"risk_recall": 1.0}, {"risk_recall": 0.99}, 0.98, "m")
    assert ok["passed"] and ok["required_risk_recall"] == 0.99
    assert gate_decision({"risk_recall": 0.985}, None, 0.98, None)["passed"]
    assert not gate_decision({"risk_recall": 0.97}, None, 0.98, None)["passed"]
    assert not gate_decision({"risk_recall": None}, None, 0.98, None)["passed"]


def test_set_epochs_changes_only_the_epochs() -> None:
    text = "pipeline:\n  - name: DIETClassifier\n    epochs: 70\n    random_seed: 42\n"
    assert set_epochs(text, 3) == text.replace("epochs: 70", "epochs: 3")


def test_job_json_shape() -> None:
    from bot.publish import job_json

    row = PublishJob(id=7, state="refused", progress={"percent": 10, "steps": []}, gate=None, error="why",
                     model_path=None, created_by="lan", created_at=utcnow(), finished_at=None)
    out = job_json(row)
    assert {"state", "progress", "gate", "error"} <= set(out) and out["id"] == 7
    json.dumps(out)


@pytest.mark.parametrize("epochs,config", [("3", "tests/admin/data/small_config.yml"), ("", "")])
def test_a_smaller_training_comes_from_the_environment(epochs: str, config: str, tmp_path: Path) -> None:
    from bot.publish import PublishConfig, copy_training_data
    from bot.settings import PROJECT_ROOT, Settings

    cfg = PublishConfig.from_settings(Settings(), {"HOTLINE_PUBLISH_EPOCHS": epochs, "HOTLINE_PUBLISH_CONFIG": config})
    assert cfg.epochs == (3 if epochs else None)
    assert cfg.train_config == (Path(config) if config else None)
    assert cfg.models_dir.name == "models" and cfg.heldout.name == "heldout.yml"
    copy_training_data(PROJECT_ROOT, tmp_path / "copy", cfg.epochs,
                       PROJECT_ROOT / cfg.train_config if cfg.train_config else None)
    copied = (tmp_path / "copy" / "config.yml").read_text(encoding="utf-8")
    if config:
        assert "epochs: 3" in copied and "char_wb" not in copied
    else:
        assert copied == (PROJECT_ROOT / "config.yml").read_text(encoding="utf-8")
    assert (tmp_path / "copy" / "domain.yml").read_bytes() == (PROJECT_ROOT / "domain.yml").read_bytes()
