"""The deterministic safety screen: the seed phrase list on real-looking messages, and the matcher."""
from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.safety import (
    AT_RISK,
    EMERGENCY,
    Phrase,
    SafetyScreen,
    Verdict,
    as_dict,
    load_phrases,
    validate_phrase,
)

PHRASES_FILE = Path(__file__).resolve().parent.parent / "content" / "safety_phrases.yml"

CONTRACT_RISK = "cứu tôi với, tôi đang bị giữ ở đây, họ không cho tôi về nhà"


@pytest.fixture(scope="module")
def screen() -> SafetyScreen:
    return SafetyScreen(load_phrases(PHRASES_FILE))


# (indicator from the facts sheet, message someone might send)
POSITIVES: list[tuple[str, str]] = [
    # held, locked in, not allowed to leave or go home
    ("held", CONTRACT_RISK),
    ("held", "cuu toi voi toi dang bi giu o day ho khong cho toi ve nha"),
    ("held", "e bị nhốt trong phòng ko ra đc"),
    ("held", "em bi nhot o mot ngoi nha, xung quanh toan nui"),
    ("held", "họ ko cho e về nhà"),
    ("held", "tụi nó giữ em ở đây không cho về"),
    ("held", "E BỊ NHỐT!!!"),
    ("held", "help me i am locked in a room"),
    ("held", "help me im locked"),
    ("held", "they locked me in the back of the restaurant"),
    ("held", "we are locked in a building in cambodia"),
    ("held", "i'm trapped here"),
    ("held", "they won't let me leave"),
    ("held", "they wont let me go home"),
    # watched, phone taken, borrowed phone, not knowing where one is
    ("phone", "em đang mượn điện thoại của chị bán hàng để nhắn"),
    ("phone", "em dùng điện thoại mượn nên không gọi được"),
    ("phone", "họ thu điện thoại của em, không cho liên lạc với gia đình"),
    ("phone", "they took my phone, this is a borrowed phone"),
    ("lost", "em không biết mình đang ở đâu"),
    ("lost", "e ko biet day la dau"),
    ("lost", "i dont know where i am"),
    ("lost", "I don't know where I am please help"),
    # documents taken
    ("documents", "công ty giữ hộ chiếu của em không trả"),
    ("documents", "cty giữ hộ chiếu k trả"),
    ("documents", "họ thu giấy tờ của em hết rồi"),
    ("documents", "bị thu hộ chiếu từ lúc xuống máy bay"),
    ("documents", "the agent took my passport"),
    ("documents", "my boss is holding my passport and won't give it back"),
    # sold, told one will be sold (also by family); forced marriage
    ("sold", "chị ơi em bị bán sang trung quốc rồi"),
    ("sold", "e bi ban sang tq roi"),
    ("sold", "họ bán em sang trung quốc làm vợ"),
    ("sold", "em bị bán làm vợ cho một người đàn ông"),
    ("sold", "em bị người quen bán sang tq"),
    ("sold", "bố mẹ định bán em lấy tiền"),
    ("sold", "dì em định bán em sang bên kia"),
    ("sold", "họ dọa sẽ bán em cho người khác"),
    ("sold", "bị bán vào nhà chứa"),
    ("sold", "bị  bán    sang   trung quốc"),
    ("sold", "i was sold to a man in china"),
    ("sold", "my uncle sold me to a brothel"),
    ("sold", "they want to sell me"),
    ("sold", "i have been trafficked"),
    ("marriage", "bố mẹ ép em lấy chồng trung quốc"),
    ("marriage", "e bi ep lay chong tq"),
    ("marriage", "gia dinh bat e cuoi nguoi dai loan"),
    ("marriage", "gia đình ép em cưới một người bên kia biên giới"),
    ("marriage", "my family is forcing me to marry a man i never met"),
    # forced to serve customers, forced labour, debt, quotas, scam compounds
    ("serve", "bị ép tiếp khách ở quán karaoke"),
    ("serve", "chúng nó bắt em đi khách"),
    ("serve", "em bị ép làm gái"),
    ("serve", "chúng nó ép em quan hệ với khách"),
    ("serve", "i am forced to serve customers in a karaoke bar"),
    ("labour", "em bi ep lam viec khong luong"),
    ("labour", "họ bắt em làm việc để trả nợ"),
    ("labour", "trả hết nợ mới được về"),
    ("labour", "em bị đánh vì không đủ chỉ tiêu"),
    ("labour", "em bị chích điện vì không đủ chỉ tiêu"),
    ("labour", "em bị lừa sang Campuchia, họ bắt em chat lừa người Việt"),
    ("labour", "my boss forces me to work without pay"),
    ("labour", "we are forced to work 16 hours and beaten if we don't meet the quota"),
    ("labour", "they beat us if we dont reach targets"),
    # missing child or relative; going with an acquaintance toward a border
    ("missing", "con gái tôi mất tích 3 ngày rồi"),
    ("missing", "con toi da mat tich tu hom thu hai"),
    ("missing", "em gái tôi mất liên lạc mấy ngày nay, đi với người quen lên biên giới"),
    ("missing", "my daughter is missing since monday"),
    # job offer abroad: high pay, easy work, no papers, leave at once, online "lover"
    ("job", "có người mời em sang trung quốc làm việc nhẹ lương cao"),
    ("job", "viec nhe luong cao khong can ho chieu di ngay"),
    ("job", "người yêu quen qua facebook rủ em sang trung quốc"),
    ("job", "em vượt biên sang trung quốc làm việc"),
    ("job", "they offer an easy job high salary in cambodia, no passport needed"),
    # abuse and violence against a child; sexual abuse; threats to publish pictures
    ("abuse", "em bị đánh đập hàng ngày"),
    ("abuse", "bố em đánh đập em"),
    ("abuse", "em bị xâm hại"),
    ("abuse", "chú hàng xóm sờ mó em"),
    ("abuse", "tôi bị cưỡng hiếp"),
    ("abuse", "i was raped"),
    ("sextortion", "họ dọa tung ảnh nóng của em"),
    ("sextortion", "nó dọa đăng ảnh nude của em lên mạng"),
    ("sextortion", "he is threatening to post my nude photos"),
    # suicide and self-harm
    ("suicide", "em muốn tự tử"),
    ("suicide", "e muốn tự tử quá"),
    ("suicide", "toi muon chet"),
    ("suicide", "em không muốn sống nữa"),
    ("suicide", "em chán sống quá"),
    ("suicide", "i want to kill myself"),
    ("suicide", "i want to end my life"),
    # cries for help
    ("help", "cứu em với"),
    ("help", "cuu em voi"),
    ("help", "có ai cứu chúng tôi không"),
    ("help", "em đang gặp nguy hiểm"),
    ("help", "im in danger pls help"),
    ("help", "sos"),
    ("kidnap", "tôi bị bắt cóc"),
    ("kidnap", "họ đòi tiền chuộc mới thả em"),
    ("kidnap", "my sister was kidnapped last night"),
]

NEGATIVES: list[str] = [
    # ordinary uses of "bán" and friends
    "em muốn bán điện thoại cũ",
    "toi muon mua ban dat o quan 9",
    "bán hàng online có cần đăng ký kinh doanh không",
    "shop bán quần áo ở đâu rẻ",
    "em bị bán hàng giả trên shopee thì làm sao",
    "bi ban hang gia",
    "tôi muốn bán xe máy cũ",
    "cần bán gấp nhà mặt phố",
    "mua bán nhà đất quận 7",
    "bán lúa sang Trung Quốc có lãi không",
    "thanh lý bàn ghế văn phòng",
    # bạn (friend), hộ (on behalf of), giữ xe (parking), going home early
    "giữ xe ở đâu vậy",
    "giu xe",
    "tôi muốn về nhà sớm",
    "toi muon ve nha som",
    "em hỏi hộ bạn em, đi xuất khẩu lao động Nhật mất bao nhiêu tiền",
    "nợ bạn em 2 triệu chưa trả",
    "bạn em cho em mượn tiền",
    "bạn em qua nhà chơi",
    "em bị bạn qua mặt",
    "em bị bạn cho leo cây",
    "giữ hộ em cái túi",
    # bắt đầu (begin), chi tiêu (spending), lừa qua mạng (online scam), cuối (end), gà (chicken)
    "tôi bắt đầu làm việc không lâu",
    "bắt đầu cưới người yêu vào tháng sau",
    "bắt đầu trả nợ ngân hàng từ tháng sau",
    "lương không đủ chi tiêu",
    "tháng này không đạt chỉ tiêu doanh số",
    "em bị lừa qua mạng mất 5 triệu",
    "bị lừa sang tên sổ đỏ thì làm sao",
    "ép giá cuối năm quá",
    "gà con cho ăn gì",
    "bị điện giật khi sửa quạt",
    "bố mẹ bắt em làm việc nhà",
    "cứ từ từ nhé",
    "tôi đang nghiên cứu với nhóm về di cư",
    "đi Thái Lan có cần visa không",
    "anh ấy nóng tính lắm",
    "về đến nhà chưa",
    # questions the FAQ answers
    "giờ làm việc của tổng đài là mấy giờ",
    "goi 111 co mat tien khong",
    "làm sao kiểm tra công ty xuất khẩu lao động",
    "phí môi giới đi Nhật bao nhiêu là hợp lý",
    "thủ tục kết hôn với người nước ngoài",
    "em bị mất hộ chiếu khi du lịch, làm lại thế nào",
    "làm sao tìm người thân bị mất tích",
    "buôn bán người là gì",
    "mua bán người bị phạt bao nhiêu năm tù",
    "làm sao gửi vị trí",
    "tôi muốn nói chuyện với tư vấn viên",
    "bố mẹ không cho em đi chơi tối",
    "em không biết mua ở đâu",
    # English
    "i want to sell my old phone",
    "he sold me a fake phone",
    "i was sold a broken laptop",
    "i lost my passport on holiday",
    "i locked my bike outside",
    "i can't go home for tet this year because of work",
    "what is human trafficking",
    "how do traffickers recruit young people",
    "police station opening hours",
    "drape me in the flag",
]


@pytest.mark.parametrize(("indicator", "message"), POSITIVES)
def test_risk_messages_escalate(screen: SafetyScreen, indicator: str, message: str) -> None:
    verdict = screen.check(message)
    assert verdict.escalate, f"{indicator}: {message!r} was not escalated"
    assert verdict.priority in (EMERGENCY, AT_RISK)
    assert verdict.reason
    assert verdict.matched


@pytest.mark.parametrize("message", NEGATIVES)
def test_ordinary_messages_do_not_escalate(screen: SafetyScreen, message: str) -> None:
    verdict = screen.check(message)
    assert not verdict.escalate, f"{message!r} escalated on {verdict.matched}"
    assert verdict == Verdict(False, None, None, [])


def test_every_indicator_has_vietnamese_and_english_cases() -> None:
    def english(text: str) -> bool:
        return text.isascii() and any(w in text.split() for w in ("i", "my", "me", "they", "we", "he", "sos"))

    groups: dict[str, set[bool]] = {}
    for indicator, message in POSITIVES:
        groups.setdefault(indicator, set()).add(english(message))
    missing = sorted(k for k, langs in groups.items() if langs != {True, False})
    assert not missing, f"indicators without both a Vietnamese and an English case: {missing}"
    assert len(POSITIVES) >= 60 and len(NEGATIVES) >= 40


def test_contract_cases(screen: SafetyScreen) -> None:
    risk = screen.check(CONTRACT_RISK)
    assert risk.escalate and risk.priority == EMERGENCY
    assert "khong cho * ve nha" in risk.matched
    assert not screen.check("em muốn bán điện thoại cũ").escalate
    assert not screen.check("toi muon mua ban dat o quan 9").escalate


def test_nfd_and_mixed_forms_match_like_nfc(screen: SafetyScreen) -> None:
    nfc = screen.check(CONTRACT_RISK)
    nfd = screen.check(unicodedata.normalize("NFD", CONTRACT_RISK))
    stripped = screen.check("CUU TOI VOI!!! toi dang bi giu o day... ho KO cho toi ve nha")
    assert nfd == nfc
    assert stripped.escalate and set(nfc.matched) <= set(stripped.matched)


def test_seed_priorities_are_sensible(screen: SafetyScreen) -> None:
    assert screen.check("họ giữ hộ chiếu của em").priority == AT_RISK
    assert screen.check("có người mời em đi làm việc nhẹ lương cao").priority == AT_RISK
    assert screen.check("em muốn tự tử").priority == EMERGENCY
    both = screen.check("họ giữ hộ chiếu của em và em bị nhốt")
    assert both.priority == EMERGENCY
    assert both.matched.index("bi nhot") < both.matched.index("giu ho chieu")


# ── the matcher, on small phrase lists ─────────────────────────────────────────────────────────

def _screen(*entries: tuple[str, str, str]) -> SafetyScreen:
    return SafetyScreen(Phrase(*e) for e in entries)


def test_highest_priority_wins_and_reason_follows_it() -> None:
    s = _screen(("giu ho chieu", AT_RISK, "documents taken"),
                ("bi nhot", EMERGENCY, "held"),
                ("bi danh dap", EMERGENCY, "beaten"))
    v = s.check("em bị giữ hộ chiếu, bị nhốt và bị đánh đập")
    assert v == Verdict(True, EMERGENCY, "held", ["bi nhot", "bi danh dap", "giu ho chieu"])
    only_at_risk = s.check("chủ giữ hộ chiếu")
    assert (only_at_risk.priority, only_at_risk.reason, only_at_risk.matched) == (
        AT_RISK, "documents taken", ["giu ho chieu"])


@pytest.mark.parametrize(("message", "hit"), [
    ("không cho về nhà", True),
    ("không cho em về nhà", True),
    ("không cho chúng tôi về nhà", True),
    ("ko cho chung toi ve nha", True),
    ("không cho chúng nó em về nhà", True),          # three words in the gap
    ("không cho mấy đứa chúng tôi về nhà", False),    # four words: too far apart
    ("về nhà không cho", False),                       # order matters
    ("khong chox em ve nha", False),                   # whole words only
])
def test_star_stands_for_up_to_three_words(message: str, hit: bool) -> None:
    assert _screen(("khong cho * ve nha", EMERGENCY, "held")).check(message).escalate is hit


def test_two_stars_and_whole_words() -> None:
    s = _screen(("ep * lam * tra no", EMERGENCY, "debt"), ("rape me", EMERGENCY, "rape"))
    assert s.check("họ ép em phải làm việc để trả nợ").escalate
    assert s.check("ep lam tra no").escalate
    assert not s.check("drape me in the flag").escalate
    assert not s.check("tra no ep lam").escalate


def test_phrase_at_start_end_and_whole_message() -> None:
    s = _screen(("bi nhot", EMERGENCY, "held"))
    for text in ("bị nhốt", "bị nhốt rồi", "em bị nhốt", "em bị nhốt.", "(bị nhốt)"):
        assert s.check(text).escalate, text


def test_empty_and_blank_messages() -> None:
    s = _screen(("bi nhot", EMERGENCY, "held"))
    for text in ("", "   ", "!!!", "😀"):
        assert s.check(text) == Verdict(False, None, None, [])


def test_duplicate_phrases_are_listed_once() -> None:
    s = _screen(("bi nhot", EMERGENCY, "held"), ("bi  nhot", AT_RISK, "again"))
    assert len(s) == 1
    assert s.check("bị nhốt").matched == ["bi nhot"]


def test_screen_refuses_invalid_phrases() -> None:
    with pytest.raises(ValueError, match="ban"):
        _screen(("ban", EMERGENCY, "sold"))
    with pytest.raises(ValueError, match="priority"):
        _screen(("bi nhot", "urgent", "held"))


def test_as_dict_is_the_api_shape(screen: SafetyScreen) -> None:
    body = as_dict(screen.check(CONTRACT_RISK))
    assert set(body) == {"escalate", "priority", "reason", "matched"}
    assert body["escalate"] is True and body["priority"] == EMERGENCY
    assert isinstance(body["reason"], str) and isinstance(body["matched"], list)
    assert as_dict(screen.check("xin chào")) == {
        "escalate": False, "priority": None, "reason": None, "matched": []}


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_gives_a_consistent_verdict(screen: SafetyScreen, text: str) -> None:
    v = screen.check(text)
    assert v.escalate == bool(v.matched)
    assert (v.priority is None) == (not v.escalate) == (v.reason is None)


# ── validation and loading ─────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("phrase", [
    "bi nhot", "khong cho * ve nha", "ep * lam * tra no", "help me i am locked", "self-harm",
    "sextortion", "trafficked", "sos", "  bi   nhot  ",
])
def test_valid_phrases(phrase: str) -> None:
    assert validate_phrase(phrase) is None


@pytest.mark.parametrize(("phrase", "complaint"), [
    ("", "empty"),
    ("   ", "empty"),
    ("*", "only"),
    ("* *", "only"),
    ("* bi nhot", "start or the end"),
    ("bi nhot *", "start or the end"),
    ("bi* nhot", "stand alone"),
    ("bị nhốt", "folded"),
    ("Bi Nhot", "folded"),
    ("ko cho * ve nha", "write 'khong'"),
    ("ban e sang", "write 'em'"),
    ("ban", "syllable"),
    ("giu", "syllable"),
    ("nguoi", "syllable"),
    ("help", "common"),
    ("police", "common"),
    ("sold", "common"),
    ("zq", "short"),
])
def test_invalid_phrases(phrase: str, complaint: str) -> None:
    error = validate_phrase(phrase)
    assert error is not None and complaint in error


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "phrases.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_phrases_reads_entries(tmp_path: Path) -> None:
    path = _write(tmp_path, '- {phrase: "bi nhot", priority: emergency, reason: held}\n'
                            '- phrase: "giu  ho chieu"\n  priority: at_risk\n  reason: " documents "\n')
    assert load_phrases(path) == [Phrase("bi nhot", EMERGENCY, "held"),
                                  Phrase("giu ho chieu", AT_RISK, "documents")]
    assert load_phrases(_write(tmp_path, "# nothing yet\n")) == []


@pytest.mark.parametrize(("text", "message"), [
    ("phrase: bi nhot\n", "list"),
    ("- just a string\n", "entry 1"),
    ('- {phrase: "bi nhot", priority: emergency, reason: ok}\n- {phrase: "ban", priority: emergency, reason: x}\n',
     "entry 2 ('ban')"),
    ('- {phrase: "bi nhot", priority: urgent, reason: held}\n', "priority must be one of"),
    ('- {phrase: "bi nhot", priority: emergency}\n', "missing 'reason'"),
    ('- {phrase: "bi nhot", priority: emergency, reason: "  "}\n', "reason"),
    ('- {phrase: "bi nhot", priority: emergency, reason: held, note: x}\n', "unknown field"),
    ('- {phrase: "bị nhốt", priority: emergency, reason: held}\n', "write 'bi'"),
    ('- {phrase: "bi nhot", priority: emergency, reason: a}\n- {phrase: "bi  nhot", priority: at_risk, reason: b}\n',
     "duplicate of entry 1"),
    ("- [unclosed\n", "not valid YAML"),
])
def test_load_phrases_names_the_bad_entry(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        load_phrases(_write(tmp_path, text))
    assert message in str(excinfo.value)


def test_seed_file_size_and_shape() -> None:
    phrases = load_phrases(PHRASES_FILE)
    assert len(phrases) >= 150
    assert {p.priority for p in phrases} == {EMERGENCY, AT_RISK}
    english = [p for p in phrases if p.phrase.split()[0] in {"i", "my", "they", "help", "sold", "forced"}]
    assert len(english) >= 20


# ── speed ──────────────────────────────────────────────────────────────────────────────────────

def test_checking_a_long_message_is_fast() -> None:
    phrases = load_phrases(PHRASES_FILE)[:300]
    assert len(phrases) == 300
    screen = SafetyScreen(phrases)
    ordinary = " ".join(NEGATIVES)
    message = (ordinary * (2000 // len(ordinary) + 1))[:2000]
    risky = ("em ở nhà bạn, " * 200)[:1950] + " em bị nhốt"
    assert not screen.check(message).escalate
    assert screen.check(risky).escalate
    rounds = 200
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(rounds):
            screen.check(message)
            screen.check(risky)
        best = min(best, (time.perf_counter() - start) / (2 * rounds))
    assert best < 0.005, f"{best * 1000:.2f} ms per 2,000-character message"
