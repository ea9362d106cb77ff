"""Editing the training-data files line by line: examples added, edited, removed (with their
diacritic-free twins), a new topic (file, domain intent, rule), layout kept, checks."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.admin.training_data import (
    Change,
    DataError,
    TrainingFiles,
    clean_example,
    data_problems,
    example_problems,
    hand_written,
    load_heldout,
)
from bot.nlu_tools import missing_twins
from tests.admin.conftest import copy_repository, topic_examples

NLU = """version: "3.1"

# a comment that must stay
nlu:
  - intent: faq_a
    examples: |
      - giờ làm việc
      - gio lam viec
      - mấy giờ mở cửa
      - may gio mo cua
      - opening hours

  - intent: faq_b
    examples: |
      - có mất tiền không
      - co mat tien khong
"""
DOMAIN = """version: "3.1"

intents:
  - greet
  - faq_a
  - faq_b
  # a comment in the list
  - emergency

actions:
  - action_answer
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "nlu_data" / "nlu").mkdir(parents=True)
    (tmp_path / "nlu_data" / "rules").mkdir(parents=True)
    (tmp_path / "nlu_data" / "nlu" / "faq.yml").write_text(NLU, encoding="utf-8")
    (tmp_path / "nlu_data" / "rules" / "faq.yml").write_text(
        'version: "3.1"\n\nrules:\n  - rule: a\n    steps:\n      - intent: faq_a\n      - action: action_answer\n',
        encoding="utf-8")
    (tmp_path / "domain.yml").write_text(DOMAIN, encoding="utf-8")
    return tmp_path


def written(root: Path, files: TrainingFiles, out: Path) -> str:
    files.write(out)
    return (out / "nlu_data" / "nlu" / "faq.yml").read_text(encoding="utf-8")


def test_add_inserts_at_the_end_of_the_block_and_the_twin_follows(root: Path, tmp_path: Path) -> None:
    files = TrainingFiles.load(root)
    files.apply(Change("add", "faq_a", "giờ mở cửa thứ bảy"))
    text = written(root, files, tmp_path / "out")
    assert text == NLU.replace("      - opening hours\n",
                               "      - opening hours\n      - giờ mở cửa thứ bảy\n      - gio mo cua thu bay\n")
    assert missing_twins(tmp_path / "out" / "nlu_data" / "nlu" / "faq.yml") == []


def test_edit_replaces_in_place_and_takes_the_old_twin_along(root: Path, tmp_path: Path) -> None:
    files = TrainingFiles.load(root)
    files.apply(Change("edit", "faq_a", "mấy giờ thì mở cửa", "mấy giờ mở cửa"))
    text = written(root, files, tmp_path / "out")
    assert text == NLU.replace("      - mấy giờ mở cửa\n      - may gio mo cua\n",
                               "      - mấy giờ thì mở cửa\n      - may gio thi mo cua\n")


def test_remove_drops_the_example_and_its_twin(root: Path, tmp_path: Path) -> None:
    files = TrainingFiles.load(root)
    files.apply(Change("remove", "faq_b", old_text="có mất tiền không"))
    text = written(root, files, tmp_path / "out")
    assert "mất tiền" not in text and "mat tien" not in text
    assert "# a comment that must stay" in text and "opening hours" in text


@pytest.mark.parametrize("change,message", [
    (Change("add", "faq_a", "Giờ Làm Việc"), "already an example of faq_a"),
    (Change("add", "faq_x", "xin chào"), "no intent 'faq_x'"),
    (Change("remove", "faq_a", old_text="not there"), "is not an example of faq_a"),
    (Change("remove", "faq_a", old_text="gio lam viec"), "the diacritic-free copy of 'giờ làm việc'"),
    (Change("edit", "faq_a", "opening hours", "giờ làm việc"), "already an example"),
    (Change("edit", "faq_a", "giờ làm việc", "giờ làm việc"), "the same as the old one"),
    (Change("add", "faq_a", "[Hoa Sen](company) ở đâu"), "entities"),
    (Change("add", "faq_a", "hai\ndòng"), "one line"),
    (Change("add_topic", "Faq-X", detail={"title": "x", "examples": ["abc"]}), "lower-case"),
    (Change("add_topic", "faq_new", detail={"title": "x", "examples": ["abc", "ABC"]}), "listed twice"),
])
def test_changes_that_do_not_fit_are_refused_with_a_reason(root: Path, change: Change, message: str) -> None:
    files = TrainingFiles.load(root)
    with pytest.raises(DataError) as caught:
        files.apply(change)
    assert message in caught.value.message


def test_a_topic_cannot_be_added_twice(root: Path) -> None:
    files = TrainingFiles.load(root)
    files.apply(Change("add_topic", "faq_new", detail={"title": "x", "examples": ["abc"]}))
    with pytest.raises(DataError, match="already an intent 'faq_new'"):
        files.apply(Change("add_topic", "faq_new", detail={"title": "y", "examples": ["def"]}))


def test_a_stored_draft_is_named_in_the_error(root: Path) -> None:
    with pytest.raises(DataError) as caught:
        TrainingFiles.load(root).apply(Change("remove", "faq_a", old_text="gone", id=42))
    assert caught.value.message.startswith("change 42 (remove 'gone' from faq_a)")


def test_a_new_topic_gets_its_file_domain_intent_and_rule(root: Path, tmp_path: Path) -> None:
    files = TrainingFiles.load(root)
    files.apply(Change("add_topic", "faq_skills", detail={"title": "Lớp kỹ năng", "examples": topic_examples(3)}))
    files.apply(Change("add", "faq_skills", "có lớp kỹ năng online không"))
    out = tmp_path / "out"
    files.write(out)
    nlu = yaml.safe_load((out / "nlu_data" / "nlu" / "faq_skills.yml").read_text(encoding="utf-8"))
    examples = [e[2:] for e in nlu["nlu"][0]["examples"].splitlines()]
    assert nlu["nlu"][0]["intent"] == "faq_skills"
    assert examples[:2] == [topic_examples(3)[0], "lop tap huan ky nang an toan cho hoc sinh o Ha Noi khi nao mo"]
    assert "có lớp kỹ năng online không" in examples and "co lop ky nang online khong" in examples
    domain = (out / "domain.yml").read_text(encoding="utf-8")
    assert domain == DOMAIN.replace("  - faq_b\n", "  - faq_b\n  - faq_skills\n")
    rules = yaml.safe_load((out / "nlu_data" / "rules" / "faq.yml").read_text(encoding="utf-8"))["rules"]
    assert rules[-1] == {"rule": "faq skills", "steps": [{"intent": "faq_skills"}, {"action": "action_answer"}]}
    assert TrainingFiles.load(out).domain_intents() == ["greet", "faq_a", "faq_b", "faq_skills", "emergency"]


def test_hand_written_hides_twins_only() -> None:
    assert hand_written(["giờ làm việc", "gio lam viec", "gio mo cua", "hello"]) == ["giờ làm việc", "gio mo cua",
                                                                                   "hello"]


def test_data_problems(root: Path) -> None:
    files = TrainingFiles.load(root)
    problems = data_problems(files, set(), 3)
    assert problems == ["intent greet is in domain.yml but has no example questions",
                        "intent faq_b has 1 example question; it needs at least 3 different ones (variants of "
                        "wording, with and without diacritics, English)",
                        "intent emergency is in domain.yml but has no example questions"]
    files.apply(Change("add", "faq_b", "mấy giờ mở cửa?"))
    assert any("same question" in p for p in data_problems(files, set(), 1))
    assert any("held-out" in p for p in data_problems(files, {"opening hours"}, 1))


def test_example_problems(root: Path) -> None:
    files = TrainingFiles.load(root)
    assert example_problems(files, "faq_a", "gọi có mất tiền không", set()) == []
    assert "already an example of faq_b" in example_problems(files, "faq_a", "co mat tien khong", set())[0]
    assert "held-out" in example_problems(files, "faq_a", "Hỏi Gì Đó", {"hoi gi do"})[0]


def test_clean_example_normalises() -> None:
    assert clean_example("  giờ   làm việc ") == "giờ làm việc"
    with pytest.raises(DataError):
        clean_example("x" * 201)
    with pytest.raises(DataError):
        clean_example("?!")


def test_the_repository_data_loads_and_passes(tmp_path: Path) -> None:
    repo = copy_repository(tmp_path / "repo")
    files = TrainingFiles.load(repo)
    assert set(files.domain_intents()) == set(files.examples())
    assert data_problems(files, load_heldout(repo / "tests" / "nlu" / "heldout.yml"), 10) == []
    # loading and writing nothing changes nothing
    files.write(repo)
    assert TrainingFiles.load(repo).nlu == files.nlu
