"""What a counselor needs first, read from the person's own messages.

Hotline operators ask someone who may be cut off at any moment: are you safe right now, where are
you, who is with you, what do you want to happen. `extract_facts` reads the messages of a session
and fills in what it can:

- ``safe_now``: False when they say they are held, locked in, not allowed to leave, in danger;
  True when they say they are safe now; None when they say neither;
- ``where``: a place found by :func:`bot.geo.find_place_in_text`, else the words after "ở", "tại",
  "sang", "in", "at" ...;
- ``with_whom``: the person's own words for who is with them ("với chủ", "bọn nó", "my boss");
- ``wants``: a short English label and the person's own phrase ("go home: em muốn về nhà");
- ``age``: from "em 15 tuổi", "15t", "năm nay 14", "I am 16", "sinh năm 2009" (5 to 90 only).

Matching runs on the folded text (bot.text.fold: no diacritics, teencode expanded), so it works
with and without diacritics; what is returned is taken from the original words. A later message
overrides an earlier one. Pure functions: no I/O.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Sequence

from bot.geo import find_place_in_text
from bot.text import fold, has_diacritics, nfc

logger = logging.getLogger(__name__)

FACT_KEYS = ("safe_now", "where", "with_whom", "wants", "age")
MIN_AGE, MAX_AGE = 5, 90
MAX_PHRASE = 80

_CLAUSE_SPLIT = re.compile(r"[.!?;\n]+|,\s*|\s+-\s+")
_APOSTROPHES = re.compile(r"['’`´]")  # "I'm" -> "im", "won't" -> "wont"


@dataclass
class _Clause:
    """One clause: its original words and their folded tokens, aligned for span recovery."""

    original: str
    words: list[str]
    tokens: list[str]
    owner: list[int]  # token index -> word index
    folded: str  # " tok tok tok " (padded with spaces)
    starts: list[int]  # character offset of each token in `folded`

    @classmethod
    def parse(cls, text: str) -> "_Clause":
        words = text.split()
        tokens: list[str] = []
        owner: list[int] = []
        for i, word in enumerate(words):
            for token in fold(_APOSTROPHES.sub("", word)).split():
                tokens.append(token)
                owner.append(i)
        starts: list[int] = []
        offset = 1
        for token in tokens:
            starts.append(offset)
            offset += len(token) + 1
        return cls(text.strip(), words, tokens, owner, " " + " ".join(tokens) + " ", starts)

    def words_of(self, start: int, end: int) -> list[str]:
        """Original words covering the folded character span [start, end)."""
        idx = [i for i, s in enumerate(self.starts) if s < end and s + len(self.tokens[i]) > start]
        if not idx:
            return []
        first, last = self.owner[idx[0]], self.owner[idx[-1]]
        return self.words[first:last + 1]

    def text_of(self, start: int, end: int) -> str:
        return _clean(" ".join(self.words_of(start, end)))


def _clean(text: str) -> str:
    return text.strip(" \t.,;:!?\"'“”‘’()[]{}-–—…")


def _clauses(text: str) -> list[_Clause]:
    return [_Clause.parse(part) for part in _CLAUSE_SPLIT.split(nfc(text)) if part.strip()]


def _phrase(clause: _Clause) -> str:
    text = _clean(" ".join(clause.words))
    if len(text) > MAX_PHRASE:
        text = text[:MAX_PHRASE].rsplit(" ", 1)[0] + "…"
    return text


def _rx(pattern: str) -> re.Pattern[str]:
    """Patterns are written over folded tokens; each match must start and end on a word boundary."""
    return re.compile(rf"(?<= )(?:{pattern})(?= )")


# ------------------------------------------------------------------------------------ safe now

_UNSAFE = [_rx(p) for p in (
    r"(khong|chua|het|chang) (con )?an toan",
    r"(dang |van |con )?bi (ho |bon no |chung no |nguoi ta )?(giu|nhot|khoa|giam|canh|theo doi|bat giu|cam tu|danh|ep|tra tan)",
    r"khong (cho|duoc|the|dam) ((em|toi|minh|chau|con|tui|chung em|chung toi) )?(ve|ra|di|thoat|tron|lien lac)",
    r"(khong|chang) (ve|ra|thoat|tron|di) (duoc|noi)",
    r"(nguy hiem|so qua|cuu (em|toi|minh|con|chau|tui|voi|chung em)|giai cuu)",
    r"(not|isnt|is not|arent|are not|never) safe",
    r"unsafe|in danger|trapped|locked (in|up)|(am|are|being|been|was|were) (held|kept|locked|watched)",
    r"(cant|cannot|can not|couldnt|unable to) (leave|go|get out|escape|go home)",
    r"(wont|dont|do not|will not|doesnt|does not) let (me|us) (leave|go|out)",
    r"(save|rescue) (me|us)|help (me|us) (escape|get out)",
)]
_SAFE = [_rx(p) for p in (
    r"(em|toi|minh|tui|chau|con|chung em|chung toi) (da |dang |van |hien |bay gio |gio )*(duoc )?an toan(?! khong)( roi| that)?",
    r"(da|dang|van|hien da|gio da) an toan(?! khong)",
    r"(em|toi|minh|tui|chau|con) (da |vua )?(ve (nha|den nha|que|viet nam|nuoc)|thoat (ra|duoc)|tron (ra |thoat )?duoc) ?(roi)?",
    r"(em|toi|minh|tui) (van )?(khong sao|on) (roi|ca|dau|ma)",
    r"(i am|im|we are|were|i feel) (now |already |finally )?safe",
    r"safe now|i got out|i escaped|we escaped|i am home now|im home now",
)]


def _safe_now(clauses: list[_Clause]) -> bool | None:
    unsafe = any(p.search(c.folded) for c in clauses for p in _UNSAFE)
    if unsafe:
        return False
    if any(p.search(c.folded) for c in clauses for p in _SAFE):
        return True
    return None


# ------------------------------------------------------------------------------------ where

_VI_PREPOSITIONS = {"o": ("ở", "o"), "tai": ("tại", "tai"), "sang": ("sang",), "ben": ("bên", "ben")}
_EN_PREPOSITIONS = {"in", "at", "near"}
_PLACE_STOP = frozenset("""
    voi va khong roi nua day do luon a ah oi nhe nha nhi duoc bi dang cung ma thi la nen vi de can
    giup cuu em anh chi toi minh tui tu den hien gio bay nay hon lam lau lai ve ra vao di may co
    and with now right for but because so please since to from they he she we i my our the is are
    am was were it this that who which where help me us
""".split())
_PLACE_GENERIC_START = frozenset("""
    day do dau nha mot cai trong ngoai kia cho nay no the nao ben phong lam choi hoc
    a an my our his her their this that the some home here there danger trouble work night
    morning bed school love pain debt prison jail touch contact bad
""".split()) | _PLACE_STOP
_KNOWN_PLACES = {
    "trung quoc": "Trung Quốc", "campuchia": "Campuchia", "cam pu chia": "Campuchia", "lao": "Lào",
    "dai loan": "Đài Loan", "malaysia": "Malaysia", "thai lan": "Thái Lan", "han quoc": "Hàn Quốc",
    "nhat": "Nhật Bản", "nhat ban": "Nhật Bản", "myanmar": "Myanmar", "china": "China",
    "cambodia": "Cambodia", "laos": "Laos", "taiwan": "Taiwan", "thailand": "Thailand",
    "korea": "Korea", "japan": "Japan", "vietnam": "Vietnam", "viet nam": "Việt Nam",
}
_MAX_PLACE_WORDS = 4


def _geo_place(text: str) -> str | None:
    """The place the offline index finds: "Móng Cái, Quảng Ninh", "Trung Quốc",
    "Xi-ha-núc-vin (Sihanoukville), Campuchia"."""
    try:
        match = find_place_in_text(text)
    except Exception:  # the geographic index must never stop a handoff
        logger.exception("place look-up failed; falling back to phrases")
        return None
    if match is None or not match.name:
        return None
    label = match.name
    name_en = getattr(match, "name_en", None)
    if match.kind == "foreign_city" and name_en and fold(name_en) != fold(label):
        label += f" ({name_en})"
    province = getattr(match, "province", None)
    country_name = getattr(match, "country_name", None)
    if province and fold(province) != fold(match.name):
        label += f", {province}"
    elif match.kind not in ("country", "province") and match.country != "VN" and country_name is not None:
        label += f", {getattr(country_name, 'vi', country_name)}"
    return label


def _place_after_preposition(clause: _Clause) -> str | None:
    words = clause.words
    for i, word in enumerate(words[:-1]):
        plain = _clean(word)
        key = fold(plain, teencode=False)
        english = False
        if key in _VI_PREPOSITIONS:
            if has_diacritics(plain) and plain.lower() not in _VI_PREPOSITIONS[key]:
                continue  # "ô", "ơ", "tai" (ear) written with other marks
        elif key in _EN_PREPOSITIONS:
            english = True
        else:
            continue
        captured: list[str] = []
        for nxt in words[i + 1:i + 1 + _MAX_PLACE_WORDS]:
            cleaned = _clean(nxt)
            folded = fold(cleaned)
            if not cleaned or not folded or folded.split()[0] in _PLACE_STOP:
                break
            captured.append(cleaned)
            if nxt[-1:] in ",.;:!?)\"”":
                break  # punctuation ends the place
        if not captured:
            continue
        folded = fold(" ".join(captured))
        if folded in _KNOWN_PLACES:
            return _KNOWN_PLACES[folded]
        first = folded.split()[0]
        if first in _PLACE_GENERIC_START or first.isdigit() or folded.startswith(("lao dong", "xuat khau")):
            continue
        if english and not captured[0][:1].isupper():
            continue  # English needs a capitalised name ("in Taiwan", not "in trouble")
        return " ".join(captured)
    return None


def _where(text: str, clauses: list[_Clause]) -> str | None:
    place = _geo_place(text)
    if place:
        return place
    for clause in clauses:
        found = _place_after_preposition(clause)
        if found:
            return found
    for clause in clauses:
        for key, display in _KNOWN_PLACES.items():
            if f" {key} " in clause.folded and key not in ("lao", "nhat", "viet nam", "vietnam"):
                return display
    return None


# ------------------------------------------------------------------------------------ with whom

# (pattern over folded tokens, {folded word: the only spellings it may have when written with
#  diacritics}) - "chu" is chủ (boss) but also chú (uncle), "chong" is chồng but also chống.
_WITH_WHOM: list[tuple[re.Pattern[str], dict[str, tuple[str, ...]]]] = [
    (_rx(r"(voi|cung|bi) (ong |ba |thang |mu |lao |bon |vo )?chu( quan( karaoke| bar| hat)?| nha hang| xuong| tiem| cho)?"),
     {"chu": ("chủ",)}),
    (_rx(r"(ong|ba|bon|thang|lao|mu|vo) chu( quan( karaoke| bar| hat)?| nha hang| xuong| tiem)?"), {"chu": ("chủ",)}),
    (_rx(r"(bon|chung|tui|lu|may thang|may nguoi|bon nguoi) (no|chung no|ho|buon nguoi|xau|trung quoc|lua dao)"), {}),
    (_rx(r"nguoi yeu|ban trai|ban gai|ny|bo cua (em|toi|minh)|nguoi yeu qua mang"), {}),
    (_rx(r"(?<!phong )chong(?! lai| doi| chi| lung)( sap cuoi| tuong lai| nguoi (trung|han|dai loan))?"),
     {"chong": ("chồng", "ck")}),
    (_rx(r"me ke|bo duong|cha duong|di ghe|chu ruot|cau ruot"), {}),
    (_rx(r"ma mi|tu ba|chu chua|quan ly|moi gioi|co moi gioi|dau nau|nguoi moi gioi"), {}),
    (_rx(r"nguoi quen|ban qua mang|ban tren mang|ban facebook|ban zalo|nguoi la(?! gi| ai| nguoi| ban| em| toi)"),
     {"la": ("lạ",)}),
    (_rx(r"mot minh"), {}),
    (_rx(r"(my|the|our|her|his) (boss|employer|manager|agent|broker|husband|boyfriend|girlfriend|pimp|owner"
         r"|stepfather|stepmother)"), {}),
    (_rx(r"(these|those|some|two|three|many|the|other) (men|guys|people|traffickers|chinese men|women|girls)"), {}),
    (_rx(r"alone|by myself|on my own"), {}),
]


def _with_whom(clauses: list[_Clause]) -> str | None:
    for clause in clauses:
        for pattern, spellings in _WITH_WHOM:
            for m in pattern.finditer(clause.folded):
                if spellings and not _spelled_as(clause, m, spellings):
                    continue
                words = clause.words_of(m.start(), m.end())
                if words:
                    return _clean(" ".join(words))
    return None


def _spelled_as(clause: _Clause, m: re.Match[str], spellings: dict[str, tuple[str, ...]]) -> bool:
    """Ambiguous folded words count when written without diacritics or with the listed ones."""
    for i, start in enumerate(clause.starts):
        if m.start() <= start < m.end() and clause.tokens[i] in spellings:
            word = _clean(clause.words[clause.owner[i]]).lower()
            if has_diacritics(word) and word not in spellings[clause.tokens[i]]:
                return False
    return True


# ------------------------------------------------------------------------------------ wants

_SUBJ = r"(em|toi|minh|tui|chau|con|chung em|chung toi|me|us)"
_WANTS: list[tuple[str, re.Pattern[str]]] = [
    ("be rescued", _rx(
        rf"(?<!nghien )cuu( {_SUBJ}| voi| giup| ho| gap)?|giai cuu|(dua|keo|cuu) {_SUBJ} ra( khoi)?"
        rf"|muon (thoat|tron|ra khoi)|giup {_SUBJ} (thoat|tron|ra khoi)"
        r"|rescue|save (me|us)|get (me|us) out|help (me|us) (escape|get out|leave)|(want|need) to escape")),
    ("go home", _rx(
        rf"muon (duoc )?(tro )?ve( nha| que| viet nam| nuoc)?|(?<!khong )(?<!chang )(cho|dua|don|giup) {_SUBJ} (duoc )?ve"
        r"|(want|wanna|need) to (go|come|get) (back|home)|take (me|us) (back|home)|send (me|us) (back|home)"
        r"|go back to vietnam|go home")),
    ("find a missing person", _rx(
        r"tim (con|em|chau|chi|anh|vo|chong|nguoi|ban|bo|me|nguoi than)|mat tich|mat lien lac"
        r"|find (my|our)|is missing|are missing|looking for (my|our)")),
    ("report", _rx(r"to cao|bao cao|trinh bao|bao an|bao cong an|report")),
    ("talk to a counselor", _rx(
        r"(noi chuyen|tam su|gap|nhan tin|chat) (voi )?(nguoi that|tu van vien|chuyen vien|ai do|nguoi)"
        r"|tu van vien|nguoi that"
        r"|(talk|speak|chat) (to|with) (a|someone|somebody|a real|a counselor|a person|a human)"
        r"|real person|a human|counselor|counsellor")),
    ("advice", _rx(
        r"(phai|nen) lam (sao|gi|the nao)|lam sao bay gio|loi khuyen|xin y kien"
        r"|advice|what should (i|we) do|what (can|do) (i|we) do")),
    ("information", _rx(
        rf"cho {_SUBJ} hoi|muon (hoi|biet)|thong tin|lam sao de|lam the nao|kiem tra"
        r"|information|want to know|how (do|can) (i|we)|can you tell|check")),
]


def _wants(clauses: list[_Clause]) -> str | None:
    for label, pattern in _WANTS:
        for clause in clauses:
            if pattern.search(clause.folded):
                return f"{label}: {_phrase(clause)}"
    return None


# ------------------------------------------------------------------------------------ age

_UNITS = (r"hours|hour|hrs|days|day|km|minutes|minute|mins|weeks|week|months|month|kg|usd|dollars"
          r"|times|people|of|percent|million|trieu|nghin|ngan|tr|k|ty|nguoi|lan|ngay|thang|gio|phut|km")
_AGE_PATTERNS = [
    _rx(r"(?<!duoi )(?<!tren )(?<!hon )(?<!qua )(?<!tu )(?<!den )(?P<n>\d{1,2}) ?(tuoi|t|tuoi roi)"),
    _rx(r"nam nay (em |toi |minh |con |chau |be |no |tui |e )?(duoc |moi |da )?(?P<n>\d{1,2})(?! (" + _UNITS + ") )"),
    _rx(r"(i am|im|iam|she is|he is|shes|hes) (only |just )?(?P<n>\d{1,2})(?! (" + _UNITS + ") )"),
    _rx(r"(?P<n>\d{1,2}) ?(years old|year old|years|yrs old|yrs|yo|y o)"),
    _rx(r"(age|aged|tuoi) (?P<n>\d{1,2})"),
]
_BIRTH_YEAR = _rx(r"(sinh nam|sinh|born in|born) (?P<y>(19|20)\d\d)")


def _age(clauses: list[_Clause], today: Callable[[], date]) -> int | None:
    for clause in clauses:
        for pattern in _AGE_PATTERNS:
            for m in pattern.finditer(clause.folded):
                n = int(m.group("n"))
                if MIN_AGE <= n <= MAX_AGE:
                    return n
        for m in _BIRTH_YEAR.finditer(clause.folded):
            n = today().year - int(m.group("y"))
            if MIN_AGE <= n <= MAX_AGE:
                return n
    return None


# ------------------------------------------------------------------------------------ public

def extract_facts(texts: Sequence[str], *, today: Callable[[], date] = date.today) -> dict[str, Any]:
    """Facts from a session's user messages (oldest first). Later messages override earlier ones."""
    facts: dict[str, Any] = dict.fromkeys(FACT_KEYS)
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            continue
        clauses = _clauses(text)
        if not clauses:
            continue
        safe = _safe_now(clauses)
        if safe is not None:
            facts["safe_now"] = safe
        found: dict[str, Any] = {
            "where": _where(nfc(text), clauses),
            "with_whom": _with_whom(clauses),
            "wants": _wants(clauses),
            "age": _age(clauses, today),
        }
        for key, value in found.items():
            if value is not None:
                facts[key] = value
    return facts
