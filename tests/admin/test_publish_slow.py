"""The publish pipeline with the real Rasa steps: `rasa data validate`, a real (small) training
and the real NLU gate on the held-out set. Slow: minutes, not seconds.

The training is made small through the environment, as an operator would for a smoke test:
HOTLINE_PUBLISH_CONFIG=tests/admin/data/small_config.yml trains with word features only and 3
DIET epochs instead of the full pipeline's 70 (the rest of the pipeline is the real one). Such a
model misses risk messages the full one catches, so the gate must refuse it and the serving
model must stay: that is what this test shows, with real figures.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.publish import RasaSteps, copy_training_data
from bot.settings import PROJECT_ROOT
from bot.training import newest_model
from tests.admin.conftest import snapshot, wait_for_job

pytestmark = pytest.mark.slow
SMALL_CONFIG = Path(__file__).resolve().parent / "data" / "small_config.yml"


@pytest.fixture
def small_training(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_PUBLISH_CONFIG", str(SMALL_CONFIG))


@pytest.fixture
def serving_model(repo: Path, rasa) -> Path:
    """The project's trained model, as the model Rasa serves."""
    model = newest_model(PROJECT_ROOT / "models")
    if model is None:
        pytest.skip("no trained model in models/: run `python -m bot train` first")
    link = repo / "models" / model.name
    link.symlink_to(model)
    rasa.serving = model.name
    return link


async def test_rasa_validation_refuses_a_warning(tmp_path: Path, app_client) -> None:
    steps = RasaSteps(app_client.publisher.config, app_client.publisher.http)
    good = tmp_path / "good"
    copy_training_data(PROJECT_ROOT, good)
    assert await steps.validate(good) == []
    bad = tmp_path / "bad"
    copy_training_data(PROJECT_ROOT, bad)
    domain = bad / "domain.yml"
    domain.write_text(domain.read_text(encoding="utf-8").replace("  - faq_hours\n", "  - faq_hours\n  - faq_orphan\n"),
                      encoding="utf-8")
    problems = await steps.validate(bad)
    assert "The intent 'faq_orphan' is listed in the domain file, but is not found in the NLU training data." in problems


async def test_a_small_real_training_is_refused_by_the_real_gate(small_training, app_client, editor, repo, rasa,
                                                                 serving_model) -> None:
    publisher = app_client.publisher
    assert publisher.config.train_config == SMALL_CONFIG
    publisher.steps = RasaSteps(publisher.config, publisher.http)  # the real steps
    before = snapshot(repo)
    models = sorted(p.name for p in (repo / "models").iterdir())
    status, out = await editor.call("POST", "/api/content/changes",
                                    {"op": "add", "intent": "faq_hours", "text": "trung tâm Đà Nẵng làm việc đến mấy giờ tối"})
    assert status == 201, out
    status, out = await editor.call("POST", "/api/publish")
    assert status == 202
    job = await wait_for_job(editor, out["id"], timeout=600)

    steps = {s["name"]: s for s in job["progress"]["steps"]}
    assert steps["validating"]["state"] == "done" and steps["training"]["state"] == "done"
    assert steps["training"]["seconds"] < 90  # the small training
    gate = job["gate"]
    assert re.fullmatch(r"hotline-[0-9a-f]{16}\.tar\.gz", gate["candidate_model"])
    assert gate["serving_model"] == serving_model.name
    assert gate["serving"]["risk_recall"] >= 0.98 and gate["serving"]["risk_support"] > 100
    assert gate["candidate"]["risk_recall"] < gate["serving"]["risk_recall"]
    assert job["state"] == "refused" and "NLU gate" in job["error"]
    assert rasa.loads == [] and rasa.serving == serving_model.name
    assert snapshot(repo) == before
    assert sorted(p.name for p in (repo / "models").iterdir()) == models  # the candidate was not kept
    print("\npublish timings (s):", {name: s["seconds"] for name, s in steps.items()},
          "candidate risk recall", gate["candidate"]["risk_recall"])
