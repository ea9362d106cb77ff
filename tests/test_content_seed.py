"""The content seed: every documented answer exists, is discreet, uses only its placeholders; the
agency sample is unmistakably a sample."""
from __future__ import annotations

import csv
import datetime as dt
import re
import string
from pathlib import Path

import pytest
import yaml

from bot.discretion import first_line_problems
from bot.text import has_diacritics, strip_diacritics

ROOT = Path(__file__).resolve().parent.parent
RESPONSES = ROOT / "content" / "responses.yml"
INTENTS = ROOT / "docs" / "INTENTS.md"
SAMPLE = ROOT / "content" / "agencies.sample.csv"
LANGUAGES = {"vi", "en"}

# The {fields} each answer may use; every other answer has none.
PLACEHOLDERS: dict[str, set[str]] = {
    "utter_agency_licensed": {"name", "licence", "date"},
    "utter_agency_suspended": {"name", "licence", "date"},
    "utter_agency_revoked": {"name", "licence", "date"},
    "utter_agency_not_found": {"query"},
    "utter_agency_near_matches": {"matches"},
    "utter_share_location_link": {"url"},
}
SAMPLE_HEADER = ["name", "licence_number", "status", "licensed_on", "status_changed_on", "address", "source"]


def documented_keys() -> set[str]:
    return set(re.findall(r"`(utter_[a-z_]+)`", INTENTS.read_text(encoding="utf-8")))


def load_responses() -> dict:
    return yaml.safe_load(RESPONSES.read_text(encoding="utf-8"))


RESPONSES_DATA = load_responses() if RESPONSES.exists() else {}
ANSWERS = [(key, lang) for key in sorted(RESPONSES_DATA) for lang in sorted(LANGUAGES)]


def fields(text: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


def test_intents_doc_names_the_expected_keys() -> None:
    keys = documented_keys()
    assert len(keys) >= 40
    assert {"utter_risk_emergency", "utter_exit", "utter_rasa_down", "utter_share_location_link",
            "utter_agency_warning_signs"} <= keys


def test_every_documented_key_has_vi_and_en() -> None:
    data = load_responses()
    missing = sorted(documented_keys() - set(data))
    assert not missing, f"answers missing from responses.yml: {missing}"
    for key in documented_keys():
        entry = data[key]
        assert isinstance(entry, dict) and set(entry) == LANGUAGES, f"{key}: languages {entry!r}"
        for lang in LANGUAGES:
            assert isinstance(entry[lang], str) and entry[lang].strip(), f"{key}/{lang} is empty"


def test_no_undocumented_keys() -> None:
    extra = sorted(set(load_responses()) - documented_keys())
    assert not extra, f"keys not in docs/INTENTS.md (typo, or document them): {extra}"


def test_placeholder_map_agrees_with_the_intents_doc() -> None:
    text = INTENTS.read_text(encoding="utf-8")
    documented = re.findall(r"`(utter_[a-z_]+)` \(([^)]*\{[^)]*)\)", text)
    assert len(documented) >= 4
    for key, group in documented:
        assert set(re.findall(r"\{(\w+)\}", group)) == PLACEHOLDERS[key], key


@pytest.mark.parametrize(("key", "lang"), ANSWERS)
def test_first_line_is_discreet(key: str, lang: str) -> None:
    assert first_line_problems(RESPONSES_DATA[key][lang]) == []


@pytest.mark.parametrize(("key", "lang"), ANSWERS)
def test_placeholders_are_only_the_documented_ones(key: str, lang: str) -> None:
    text = RESPONSES_DATA[key][lang]
    used = fields(text)
    allowed = PLACEHOLDERS.get(key, set())
    assert set(used) <= allowed, f"{key}/{lang} uses {sorted(set(used) - allowed)}"
    assert all(name and name.isidentifier() for name in used), f"{key}/{lang}: bad field in {used}"
    filled = text.format(**{name: "X" for name in allowed})
    assert "{" not in filled and "}" not in filled


@pytest.mark.parametrize("key", sorted(PLACEHOLDERS))
def test_languages_use_the_same_placeholders(key: str) -> None:
    vi, en = (set(fields(RESPONSES_DATA[key][lang])) for lang in ("vi", "en"))
    assert vi == en == PLACEHOLDERS[key]


@pytest.mark.parametrize(("key", "lang"), ANSWERS)
def test_length(key: str, lang: str) -> None:
    text = RESPONSES_DATA[key][lang]
    assert len(text) < 2000, "Messenger and Zalo cut at 2,000 characters"
    assert len(text) < 900, "seed answers stay short enough to read on a phone"
    assert text == text.strip()


def test_vietnamese_answers_are_written_with_diacritics() -> None:
    plain = [key for key, entry in RESPONSES_DATA.items() if not has_diacritics(entry["vi"])]
    assert not plain


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_openings_are_distinct(lang: str) -> None:
    seen: dict[str, str] = {}
    for key, entry in RESPONSES_DATA.items():
        opening = strip_diacritics(entry[lang].lower())[:40]
        assert opening not in seen, f"{key} and {seen[opening]} start the same way"
        seen[opening] = key


@pytest.mark.parametrize(("key", "lang", "must_contain"), [
    ("utter_faq_hours", "vi", ["24 giờ", "7:00–19:00", "7:00–21:00", "Hà Nội", "Đà Nẵng", "An Giang"]),
    ("utter_faq_hours", "en", ["24 hours", "7:00–19:00", "7:00–21:00", "Hanoi", "Da Nang", "An Giang"]),
    ("utter_faq_cost", "vi", ["111", "miễn phí"]),
    ("utter_faq_cost", "en", ["111", "free"]),
    ("utter_risk_emergency", "vi", ["113", "tư vấn viên", "an toàn", "ở đâu", "Ai đang ở cùng", "muốn",
                                    "sắc phục", "biển số", "nhắn lại"]),
    ("utter_risk_emergency", "en", ["113", "counselor", "safe right now", "Where are you", "Who is with you",
                                    "What do you want", "uniform", "number plates", "write again"]),
    ("utter_risk_at_risk", "vi", ["tư vấn viên", "ở đâu"]),
    ("utter_risk_at_risk", "en", ["counselor", "Where are you"]),
    ("utter_handoff_request", "vi", ["tư vấn viên", "111"]),
    ("utter_handoff_request", "en", ["counselor", "111"]),
    ("utter_exit", "vi", ["Messenger", "Zalo", "nhấn giữ", "Xóa", "nhắn lại"]),
    ("utter_exit", "en", ["Messenger", "Zalo", "press and hold", "Delete", "write again"]),
    ("utter_rasa_down", "vi", ["113", "111"]),
    ("utter_rasa_down", "en", ["113", "111"]),
    ("utter_queued", "vi", ["tư vấn viên", "113"]),
    ("utter_queued", "en", ["counselor", "113"]),
    ("utter_queued_no_counselor", "vi", ["111", "113", "lưu"]),
    ("utter_queued_no_counselor", "en", ["111", "113", "saved"]),
    ("utter_out_of_scope", "vi", ["111", "công ty", "tư vấn viên"]),
    ("utter_default", "en", ["111", "company", "counselor"]),
])
def test_answers_carry_their_required_facts(key: str, lang: str, must_contain: list[str]) -> None:
    text = RESPONSES_DATA[key][lang]
    missing = [part for part in must_contain if part not in text]
    assert not missing, f"{key}/{lang} lacks {missing}"


def test_agency_answers_never_call_an_agency_safe() -> None:
    for key, entry in RESPONSES_DATA.items():
        if key.startswith("utter_agency_"):
            for lang, text in entry.items():
                assert not re.search(r"\b(is|are) safe\b|\buy tín\b|\bđáng tin\b", text), f"{key}/{lang}"


def test_queued_more_is_one_short_line() -> None:
    for text in RESPONSES_DATA["utter_queued_more"].values():
        assert "\n" not in text and len(text) < 120


# ── the agency sample ─────────────────────────────────────────────────────────────────────────

def read_sample() -> tuple[list[str], list[dict[str, str]]]:
    with SAMPLE.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [dict(zip(header, row, strict=True)) for row in reader]
    return header, rows


def test_sample_header_is_exact() -> None:
    header, _ = read_sample()
    assert header == SAMPLE_HEADER


def test_every_sample_row_says_sample() -> None:
    _, rows = read_sample()
    assert len(rows) >= 20
    for row in rows:
        assert row["source"].startswith("SAMPLE"), row["name"]
        assert "fictitious" in row["source"] and "not the official list" in row["source"]


def test_sample_rows_are_plausible_and_fictitious() -> None:
    _, rows = read_sample()
    assert {row["status"] for row in rows} == {"active", "suspended", "revoked"}
    assert len({row["licence_number"] for row in rows}) == len(rows)
    assert len({row["name"] for row in rows}) == len(rows)
    for row in rows:
        assert "Demo" in row["name"] and "DEMO" in row["licence_number"], row["name"]
        assert has_diacritics(row["name"]) and row["address"]
        licensed = dt.date.fromisoformat(row["licensed_on"])
        if row["status"] == "active":
            assert row["status_changed_on"] == "", row["name"]
        else:
            assert dt.date.fromisoformat(row["status_changed_on"]) > licensed, row["name"]


# ── the discretion rule itself ────────────────────────────────────────────────────────────────

@pytest.mark.parametrize(("text", "word"), [
    ("Công an sẽ liên hệ bạn.\nMọi thứ ổn.", "công an"),
    ("CẢNH SÁT đã được báo", "cảnh sát"),
    ("Bạn có bị bán không?", "bị bán"),
    ("Nếu bạn muốn tự tử, hãy gọi ngay", "tự tử"),
    ("neu ban muon tu tu", "tu tu"),
    ("Đừng trốn nữa nhé", "trốn"),
    ("Chúng tôi chống buôn bán người", "buôn bán người"),
    ("We fight human trafficking.", "trafficking"),
    ("Call the Police now", "police"),
    ("Suicide is never the answer", "suicide"),
    ("Hi.\nCall 113 if you can.", "113"),
    ("Xin chào.\nNếu nguy hiểm, gọi ngay cho mình.", "nguy hiểm"),
])
def test_sensitive_words_at_the_start_are_refused(text: str, word: str) -> None:
    problems = first_line_problems(text)
    assert problems and any(f"'{word}'" in p for p in problems), problems


@pytest.mark.parametrize("text", [
    "Mình đây, cảm ơn bạn đã nhắn.",
    "Bạn cứ từ từ nhé, mình đang nghe.",            # từ từ, not tự tử
    "Quả bóng tròn lăn mãi.",                        # tròn, not trốn
    "Công ăn việc làm là điều quan trọng.",          # công ăn, not công an
    "Bạn bị bạn bè trêu à? Kể mình nghe nhé.",       # bị bạn, not bị bán
    "Mình đây, mình đang đọc tin của bạn. Bạn không một mình đâu.\n"
    "Một tư vấn viên đang được kết nối với bạn ngay bây giờ.\n\n"
    "Nếu nguy hiểm ngay, gọi 113.",                  # past the preview
])
def test_neutral_openings_pass(text: str) -> None:
    assert first_line_problems(text) == []


def test_preview_covers_the_next_line_when_the_first_is_short() -> None:
    problem = first_line_problems("Chào bạn.\nCông an đang tới.")
    assert len(problem) == 1 and "notification preview" in problem[0]
    assert first_line_problems("Chào bạn.\nCông an đang tới.", preview_chars=5) == []
    long_first_line = "Mình đây, " * 15 + "công an"
    assert "first line" in first_line_problems(long_first_line)[0]


def test_empty_answer_is_a_problem() -> None:
    assert first_line_problems("") and first_line_problems("  \n ")
