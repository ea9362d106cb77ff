"""Reply-language detection: Vietnamese with and without diacritics, teencode, English, mixed."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.language import detect_language

VIETNAMESE = [
    # teencode and diacritic-free
    "e dang o tq ko ve dc",
    "toi bi giu o day",
    "cuu em voi",
    "ban oi",
    "cong ty nay co uy tin khong",
    "em muon check cong ty ABC",
    "e 15t",
    "dc ko",
    "sdt tong dai la gi",
    "xin chao",
    "tu van tam ly",
    "lam sao de gui vi tri",
    "gio lam viec cua tong dai",
    "goi 111 co mat tien ko",
    "minh bi lua sang cam roi",
    "chong em khong cho em ve nha",
    "ho lay ho chieu cua toi",
    "e ko bik e dang o dau",
    "ng yeu e rủ sang tq lam",
    "toi muon noi chuyen voi nguoi that",
    # with diacritics (any Vietnamese mark decides)
    "Tôi bị giữ ở đây",
    "Xin chào, I need help",
    "Cho mình hỏi",
    "cảm ơn",
    "đc",
    "Công ty TNHH Sao Mai có giấy phép không?",
]

ENGLISH = [
    "help me please",
    "I was promised a job in Taiwan",
    "my boss took my passport",
    "Can you speak English?",
    "I'm in danger",
    "im scared",
    "where are you located",
    "I need help",
    "Is it free to call 111?",
    "what are your opening hours",
    "They took my phone and I cannot leave",
    "how do I check if a recruitment agency is real",
    "I want to talk to a person",
    "my sister is missing",
]


@pytest.mark.parametrize("text", VIETNAMESE)
def test_vietnamese(text: str) -> None:
    assert detect_language(text) == "vi"
    assert detect_language(text, previous="vi") == "vi"


@pytest.mark.parametrize("text", [t for t in VIETNAMESE if len(t.split()) >= 3])
def test_vietnamese_sentence_switches_an_english_conversation(text: str) -> None:
    assert detect_language(text, previous="en") == "vi"


@pytest.mark.parametrize("text", ENGLISH)
def test_english(text: str) -> None:
    assert detect_language(text) == "en"
    assert detect_language(text, previous="en") == "en"


@pytest.mark.parametrize("text", ["help me please", "I was promised a job in Taiwan", "my boss took my passport"])
def test_clear_english_switches_a_vietnamese_conversation(text: str) -> None:
    assert detect_language(text, previous="vi") == "en"


@pytest.mark.parametrize("text", ["ok", "111", "?", "👍", "hello", "hi", "alo", "", "   ", "OK!!", "...", "😭😭", "sos"])
@pytest.mark.parametrize("previous", [None, "vi", "en"])
def test_short_or_ambiguous_keeps_previous(text: str, previous: str | None) -> None:
    assert detect_language(text, previous=previous) == (previous or "vi")


@pytest.mark.parametrize("text,previous", [("thank you", "vi"), ("help", "vi"), ("ko", "en"), ("dc", "en")])
def test_one_weak_word_does_not_switch(text: str, previous: str) -> None:
    assert detect_language(text, previous=previous) == previous


def test_unknown_previous_is_ignored() -> None:
    assert detect_language("ok", previous="fr") == "vi"
    assert detect_language("help me please", previous="fr") == "en"


def test_nfd_input_is_vietnamese() -> None:
    import unicodedata

    assert detect_language(unicodedata.normalize("NFD", "tôi bị giữ")) == "vi"


def test_mixed_mostly_vietnamese() -> None:
    assert detect_language("em muon hoi ve job o Taiwan") == "vi"
    assert detect_language("cong ty recruitment nay co that ko") == "vi"


def test_mixed_mostly_english() -> None:
    assert detect_language("I work in Binh Duong and my boss keeps my passport") == "en"


def test_one_accented_loanword_in_english() -> None:
    assert detect_language("I had a coffee at the café near my work") == "en"


def test_short_vietnamese_replies_keep_an_english_conversation() -> None:
    # "co" / "khong" are yes / no in Vietnamese, but one word is too little to switch
    assert detect_language("co", previous="en") == "en"
    assert detect_language("khong", previous="vi") == "vi"
    assert detect_language("khong") == "vi"


def test_stable_results() -> None:
    texts = ENGLISH + VIETNAMESE
    assert [detect_language(t) for t in texts] == [detect_language(t) for t in texts]


@given(vi=st.sampled_from([x / 4 for x in range(0, 40)]), en=st.sampled_from([x / 4 for x in range(0, 40)]),
       prev=st.sampled_from([None, "vi", "en"]))
def test_langdetect_is_skipped_only_when_its_vote_could_not_change_the_answer(vi, en, prev):
    from bot.language import LANGDETECT_VOTE, _decide

    vote = LANGDETECT_VOTE
    if _decide(vi + vote, en, prev, "vi") == _decide(vi, en + vote, prev, "vi"):
        outcomes = {_decide(vi, en, prev, "vi"), _decide(vi + vote, en, prev, "vi"), _decide(vi, en + vote, prev, "vi")}
        assert len(outcomes) == 1
