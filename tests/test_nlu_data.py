"""Training data, held-out set and domain stay consistent (fast: no training, no Rasa import)."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from bot.nlu_eval import Record, compute_metrics, infer_variant, render_report
from bot.nlu_tools import add_twins, main as nlu_tools_main, missing_twins
from bot.text import fold, has_diacritics, strip_diacritics

ROOT = Path(__file__).resolve().parent.parent
NLU_FILES = sorted((ROOT / "nlu_data" / "nlu").glob("*.yml"))
RULE_FILES = sorted((ROOT / "nlu_data" / "rules").glob("*.yml"))
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
RISK = ("emergency", "at_risk")
BUILT_IN = {"nlu_fallback"}


def _examples(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for item in data.get("nlu") or []:
        if "intent" not in item:
            continue
        for line in str(item.get("examples", "")).splitlines():
            line = line.strip()
            if line.startswith("- "):
                out[item["intent"]].append(line[2:].strip())
    return out


def _merge(paths: list[Path]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = defaultdict(list)
    for p in paths:
        for intent, texts in _examples(p).items():
            merged[intent].extend(texts)
    return merged


TRAINING = _merge(NLU_FILES)
HELD = _merge([HELDOUT])
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
DOMAIN_INTENTS = set(DOMAIN["intents"])
FAQ_INTENTS = sorted(i for i in DOMAIN_INTENTS if i.startswith("faq_"))


def _written(texts: list[str]) -> set[str]:
    """Examples as written by hand: a stripped twin counts with its original."""
    return {fold(t, teencode=False) for t in texts}


def _english(texts: list[str]) -> set[str]:
    return {fold(t, teencode=False) for t in texts if infer_variant(t) == "en"}


def test_nlu_files_exist_by_topic() -> None:
    names = {p.name for p in NLU_FILES}
    assert {"greetings.yml", "agency.yml", "risk_emergency.yml", "risk_at_risk.yml", "handoff.yml",
            "out_of_scope.yml"} <= names


@pytest.mark.parametrize("path", NLU_FILES, ids=lambda p: p.name)
def test_every_accented_example_has_its_stripped_twin(path: Path) -> None:
    assert missing_twins(path) == []


def test_every_accented_example_has_twin_in_same_intent() -> None:
    for intent, texts in TRAINING.items():
        present = set(texts)
        lacking = [t for t in texts if has_diacritics(t) and strip_diacritics(t) not in present]
        assert not lacking, f"{intent}: {lacking[:5]}"


def test_no_example_is_labelled_with_two_intents() -> None:
    seen: dict[str, str] = {}
    clashes = []
    for intent, texts in TRAINING.items():
        for t in texts:
            key = fold(t)
            if key in seen and seen[key] != intent:
                clashes.append((t, seen[key], intent))
            seen.setdefault(key, intent)
    assert not clashes


def test_no_heldout_message_is_a_training_example() -> None:
    train = {fold(t) for texts in TRAINING.values() for t in texts}
    leaked = [t for texts in HELD.values() for t in texts if fold(t) in train]
    assert not leaked, leaked


def test_heldout_messages_are_unique() -> None:
    folded = [fold(t) for texts in HELD.values() for t in texts]
    assert len(folded) == len(set(folded))


def test_every_domain_intent_has_training_and_heldout_examples() -> None:
    assert not DOMAIN_INTENTS - set(TRAINING), "intents without training examples"
    assert not DOMAIN_INTENTS - set(HELD), "intents without held-out examples"
    assert not set(TRAINING) - DOMAIN_INTENTS, "training intents missing from the domain"
    assert not set(HELD) - DOMAIN_INTENTS, "held-out intents missing from the domain"


def test_every_intent_of_intents_md_is_in_the_domain() -> None:
    text = (ROOT / "docs" / "INTENTS.md").read_text(encoding="utf-8")
    listed: set[str] = set()
    for line in text.splitlines():
        cells = line.split("|")
        if len(cells) > 2:
            listed.update(re.findall(r"`([a-z_]+)`", cells[1]))
    assert {"emergency", "at_risk", "check_agency", "faq_hours"} <= listed  # the table was parsed
    assert not (listed - BUILT_IN) - DOMAIN_INTENTS


def test_every_intent_has_a_rule() -> None:
    ruled: set[str] = set()
    for path in RULE_FILES:
        for rule in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("rules") or []:
            ruled.update(step["intent"] for step in rule.get("steps", []) if "intent" in step)
    assert not DOMAIN_INTENTS - ruled
    assert "nlu_fallback" in ruled


def test_domain_has_no_response_texts_and_declares_the_actions() -> None:
    assert not DOMAIN.get("responses")
    assert {"action_answer", "action_handoff", "action_check_agency", "action_ask_agency_query",
            "validate_agency_form", "action_exit"} <= set(DOMAIN["actions"])
    assert DOMAIN["forms"]["agency_form"]["required_slots"] == ["agency_query"]
    mappings = DOMAIN["slots"]["agency_query"]["mappings"]
    assert any(m.get("intent") == "check_agency" for m in mappings)
    in_form = [m for m in mappings if m.get("conditions")]
    assert set(in_form[0]["not_intent"]) == {"emergency", "at_risk", "request_human", "exit_chat"}


@pytest.mark.parametrize("intent", FAQ_INTENTS)
def test_faq_volume(intent: str) -> None:
    assert len(_written(TRAINING[intent])) >= 25
    assert len(_english(TRAINING[intent])) >= 8


@pytest.mark.parametrize("intent,minimum", [("emergency", 120), ("at_risk", 120),
                                            ("request_human", 40), ("out_of_scope", 60)])
def test_risk_and_handoff_volume(intent: str, minimum: int) -> None:
    assert len(_written(TRAINING[intent])) >= minimum
    if intent in RISK:
        assert len(_english(TRAINING[intent])) >= 30


def test_out_of_scope_teaches_ordinary_uses_of_risky_words() -> None:
    oos = {fold(t) for t in TRAINING["out_of_scope"]}
    for phrase in ("bán điện thoại cũ", "mua bán đất ở quận 9", "bán hàng online", "shop bán quần áo",
                   "tôi muốn đi du lịch Trung Quốc", "giá vé máy bay đi Hàn"):
        assert fold(phrase) in oos, phrase


def test_heldout_volume_and_spread() -> None:
    for intent in DOMAIN_INTENTS:
        assert len(HELD[intent]) >= 8, intent
    for intent in RISK:
        texts = HELD[intent]
        assert len(texts) >= 50
        variants = {infer_variant(t) for t in texts}
        assert variants == {"vi_diacritics", "vi_plain", "en"}, intent
    ordinary = [t for i, texts in HELD.items() if i.startswith("faq_") or i == "out_of_scope" for t in texts]
    assert len(ordinary) >= 60


# ------------------------------------------------------------------ tools


def test_add_twins_inserts_after_each_example_keeps_layout_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text(
        'version: "3.1"\n\n# comment kept\nnlu:\n  - intent: a\n    examples: |\n'
        "      - chào bạn\n      - hello\n      - cảm ơn\n      - cam on\n\n"
        "  - regex: r\n    examples: |\n      - số\\d+\n",
        encoding="utf-8",
    )
    assert add_twins(path) == 1
    assert path.read_text(encoding="utf-8") == (
        'version: "3.1"\n\n# comment kept\nnlu:\n  - intent: a\n    examples: |\n'
        "      - chào bạn\n      - chao ban\n      - hello\n      - cảm ơn\n      - cam on\n\n"
        "  - regex: r\n    examples: |\n      - số\\d+\n"
    )
    assert add_twins(path) == 0
    assert missing_twins(path) == []


def test_check_command_exits_1_listing_missing_twins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.yml"
    path.write_text("nlu:\n- intent: a\n  examples: |\n    - bị nhốt\n", encoding="utf-8")
    assert nlu_tools_main(["check", str(path)]) == 1
    assert "bi nhot" in capsys.readouterr().out
    assert nlu_tools_main(["add-twins", str(path)]) == 0
    assert nlu_tools_main(["check", str(path)]) == 0
    assert path.read_text(encoding="utf-8").endswith("    - bị nhốt\n    - bi nhot\n")


@pytest.mark.parametrize("text,variant", [
    ("tôi bị nhốt", "vi_diacritics"),
    ("e bi nhot ko ve dc", "vi_plain"),
    ("cty nay co giay phep ko", "vi_plain"),
    ("they took my phone", "en"),
    ("i want to die", "en"),
])
def test_infer_variant(text: str, variant: str) -> None:
    assert infer_variant(text) == variant


def test_compute_metrics_counts_risk_and_false_escalation() -> None:
    records = [
        Record("a", "emergency", "at_risk", 0.9, "en", screen=False),  # caught (either risk intent)
        Record("b", "at_risk", "faq_hours", 0.5, "en", screen=True),  # missed by NLU, caught by screen
        Record("c", "faq_hours", "faq_hours", 0.9, "vi_plain", screen=False),
        Record("d", "out_of_scope", "emergency", 0.6, "vi_plain", screen=False),  # false escalation
        Record("e", "request_human", "request_human", 0.9, "en", screen=True),  # neither risk nor ordinary
    ]
    m = compute_metrics(records)
    assert m["risk_recall"] == 0.5
    assert m["false_escalation_rate"] == 0.5
    assert m["combined"]["risk_recall"] == 1.0
    assert m["combined"]["false_escalation_rate"] == 0.5
    assert m["request_human_recall"] == 1.0
    assert m["intents"]["faq_hours"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["by_variant"]["en"]["risk_recall"] == 0.5
    assert [r["text"] for r in m["missed_risk"]] == ["b"]
    assert compute_metrics([Record("a", "faq_hours", "faq_hours", 1.0, "en")])["combined"] is None


def test_report_shows_targets_and_what_was_missed() -> None:
    m = compute_metrics([
        Record("bị nhốt", "emergency", "faq_hours", 0.5, "vi_diacritics", screen=True),
        Record("giờ làm việc", "faq_hours", "faq_hours", 0.9, "vi_diacritics", screen=False),
    ])
    m.update(model="/tmp/m.tar.gz", heldout="tests/nlu/heldout.yml", combined_note=None)
    report = render_report(m, train_seconds=100, model_size_bytes=30_000_000)
    assert "| risk recall (NLU alone) | ≥ 0.98 | 0.000 | **NO** |" in report
    assert "| risk recall (NLU or safety screen) | ≥ 0.98 | 1.000 | yes |" in report
    assert "| training time | < 10 min | 100 s | yes |" in report
    assert "| bị nhốt | emergency | faq_hours | 0.50 | escalates |" in report
