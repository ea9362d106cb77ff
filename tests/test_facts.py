"""Facts for the counselor: safe now, where, with whom, wants, age — with and without diacritics."""
from __future__ import annotations

from datetime import date

import pytest

from bot import facts as facts_module
from bot.facts import FACT_KEYS, extract_facts
from bot.text import strip_diacritics


@pytest.fixture(autouse=True)
def no_geo_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests exercise the phrase fallback; the geographic index has its own tests."""
    monkeypatch.setattr(facts_module, "_geo_place", lambda text: None)


def one(text: str) -> dict:
    return extract_facts([text])


def test_empty_input_gives_every_key_as_none() -> None:
    assert extract_facts([]) == dict.fromkeys(FACT_KEYS)
    assert extract_facts(["", "   ", "ok"]) == dict.fromkeys(FACT_KEYS)


# ------------------------------------------------------------------ safe_now

@pytest.mark.parametrize("text", [
    "Em đang bị giữ ở đây",
    "toi bi nhot trong phong",
    "ho khong cho em ve nha",
    "ko cho e ve",
    "em khong an toan",
    "cứu em với",
    "I am not safe",
    "they won't let me leave",
    "I can't leave this place",
    "we are locked in",
    "e ko ve dc",
])
def test_not_safe(text: str) -> None:
    assert one(text)["safe_now"] is False


@pytest.mark.parametrize("text", [
    "Em an toàn rồi",
    "toi da an toan",
    "em da ve nha roi",
    "I'm safe now",
    "I am safe",
    "mình không sao rồi",
    "i got out yesterday",
])
def test_safe(text: str) -> None:
    assert one(text)["safe_now"] is True


@pytest.mark.parametrize("text", [
    "có an toàn không ạ",  # a question, not a statement
    "is it safe to call?",
    "giờ làm việc của tổng đài",
    "phòng chống mua bán người",
    "my boss took my passport",  # a warning sign, but it says nothing about right now
])
def test_neither(text: str) -> None:
    assert one(text)["safe_now"] is None


def test_not_safe_wins_within_one_message() -> None:
    assert one("em tuong la an toan nhung ho khong cho em ve")["safe_now"] is False


def test_later_message_overrides() -> None:
    assert extract_facts(["em bị nhốt", "em an toàn rồi"])["safe_now"] is True
    assert extract_facts(["I am safe", "they locked me in again, I am locked in"])["safe_now"] is False


# ------------------------------------------------------------------ where

@pytest.mark.parametrize("text,where", [
    ("Em đang ở Móng Cái với chủ", "Móng Cái"),
    ("em dang o mong cai", "mong cai"),
    ("e dang o tq ko ve dc", "Trung Quốc"),
    ("em bị bán sang Trung Quốc làm vợ", "Trung Quốc"),
    ("toi dang tai khach san Hoa Mai, Lang Son", "khach san Hoa Mai"),
    ("I am in Sihanoukville and they took my phone", "Sihanoukville"),
    ("help, I'm at Golden Dragon karaoke", "Golden Dragon karaoke"),
    ("im in cambodia", "Cambodia"),
    ("minh dang bi giu ben campuchia", "Campuchia"),
])
def test_where(text: str, where: str) -> None:
    assert one(text)["where"] == where


@pytest.mark.parametrize("text", [
    "em đang ở đây",
    "I am in danger",
    "I'm in trouble",
    "toi o nha",
    "ở một căn phòng",
    "cho em hỏi giờ làm việc",
])
def test_no_place(text: str) -> None:
    assert one(text)["where"] is None


def test_where_from_the_geographic_index_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(facts_module, "_geo_place", lambda text: "Móng Cái" if "mong cai" in text.lower() else None)
    assert extract_facts(["em o Mong Cai"])["where"] == "Móng Cái"
    assert extract_facts(["em o Lao Cai"])["where"] == "Lao Cai"  # not in the index: the phrase


def test_geo_failure_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real _geo_place, with a broken index behind it

    def broken(text: str) -> None:
        raise RuntimeError("index not loaded")

    monkeypatch.setattr(facts_module, "find_place_in_text", broken)
    assert extract_facts(["em o Mong Cai"])["where"] == "Mong Cai"


@pytest.mark.parametrize("text,where", [
    ("Em đang ở Móng Cái với chủ", "Móng Cái, Quảng Ninh"),
    ("em o mong cai", "Móng Cái, Quảng Ninh"),  # the index gives the proper spelling
    ("e dang o tq ko ve dc", "Trung Quốc"),
    ("I am in Sihanoukville", "Sihanoukville"),
    ("toi dang tai khach san Hoa Mai, Lang Son", "Lạng Sơn"),
])
def test_where_with_the_geographic_index(monkeypatch: pytest.MonkeyPatch, text: str, where: str) -> None:
    monkeypatch.undo()
    assert where in extract_facts([text])["where"]


# ------------------------------------------------------------------ with whom

@pytest.mark.parametrize("text,who", [
    ("Em đang ở Móng Cái với chủ", "với chủ"),
    ("bọn nó lấy điện thoại của em", "bọn nó"),
    ("bon no lay dt cua e", "bon no"),
    ("người yêu em rủ sang bên đó", "người yêu"),
    ("ck em đánh em", "ck"),
    ("chồng không cho em về", "chồng"),
    ("my boss keeps my passport", "my boss"),
    ("I am alone in the room", "alone"),
    ("em ở một mình", "một mình"),
    ("ông chủ quán karaoke giữ giấy tờ", "ông chủ quán karaoke"),
])
def test_with_whom(text: str, who: str) -> None:
    assert one(text)["with_whom"] == who


@pytest.mark.parametrize("text", [
    "phòng chống mua bán người là gì",
    "em đi với chú em",  # chú (uncle) is not chủ (boss)
    "chống lại",
    "cho em hỏi",
])
def test_no_with_whom(text: str) -> None:
    assert one(text)["with_whom"] is None


# ------------------------------------------------------------------ wants

@pytest.mark.parametrize("text,label", [
    ("em muốn về nhà", "go home"),
    ("cho em ve viet nam", "go home"),
    ("I want to go home", "go home"),
    ("cứu em với", "be rescued"),
    ("please get me out of here", "be rescued"),
    ("em muon noi chuyen voi nguoi that", "talk to a counselor"),
    ("I want to talk to a counselor", "talk to a counselor"),
    ("con tôi mất tích 3 ngày rồi", "find a missing person"),
    ("em muốn tố cáo", "report"),
    ("em phải làm sao bây giờ", "advice"),
    ("cho em hỏi thông tin", "information"),
])
def test_wants(text: str, label: str) -> None:
    wants = one(text)["wants"]
    assert wants is not None and wants.startswith(label + ": ")
    assert strip_diacritics(text).lower().split()[0] in strip_diacritics(wants).lower()  # the user's phrase


def test_wants_keeps_the_users_phrase() -> None:
    assert one("Em bị giữ ở đây. Em muốn về nhà!")["wants"] == "go home: Em muốn về nhà"


def test_rescue_outranks_information_in_one_message() -> None:
    assert one("cho em hỏi, cứu em với")["wants"].startswith("be rescued")


def test_research_is_not_rescue() -> None:
    assert one("em đang nghiên cứu về chủ đề này")["wants"] is None


# ------------------------------------------------------------------ age

@pytest.mark.parametrize("text,age", [
    ("em 15 tuổi", 15),
    ("e 15t", 15),
    ("em năm nay 14", 14),
    ("nam nay e 16 roi", 16),
    ("I am 16", 16),
    ("I'm 17 years old", 17),
    ("my daughter is 12 years old", 12),
    ("toi 45 tuoi", 45),
])
def test_age(text: str, age: int) -> None:
    assert one(text)["age"] == age


def test_age_from_birth_year() -> None:
    assert extract_facts(["em sinh năm 2010"], today=lambda: date(2026, 1, 1))["age"] == 16


@pytest.mark.parametrize("text", [
    "dưới 18 tuổi có được đi xuất khẩu lao động không",  # a rule, not an age
    "I am 20 minutes away",
    "em 200 tuổi",
    "nợ 15 triệu",
    "năm nay 2 tuổi",  # below 5: not plausible for someone writing
    "tôi 3t",
    "I am 99",
])
def test_no_age(text: str) -> None:
    assert one(text)["age"] is None


# ------------------------------------------------------------------ all together

def test_emergency_session() -> None:
    texts = ["cứu em", "em 16 tuổi, đang ở Móng Cái", "bọn nó không cho em về nhà, em muốn về nhà"]
    assert extract_facts(texts) == {
        "safe_now": False,
        "where": "Móng Cái",
        "with_whom": "bọn nó",
        "wants": "go home: em muốn về nhà",
        "age": 16,
    }


def test_same_facts_without_diacritics() -> None:
    with_marks = ["Em 16 tuổi, đang bị giữ ở Móng Cái với chủ", "em muốn về nhà"]
    without = [strip_diacritics(t) for t in with_marks]
    a, b = extract_facts(with_marks), extract_facts(without)
    assert a["safe_now"] is b["safe_now"] is False
    assert a["age"] == b["age"] == 16
    assert strip_diacritics(a["where"]) == b["where"] == "Mong Cai"
    assert strip_diacritics(a["with_whom"]) == b["with_whom"] == "voi chu"
    assert a["wants"].split(":")[0] == b["wants"].split(":")[0] == "go home"
