"""Which language to answer in: Vietnamese ("vi") or English ("en").

People write to the hotline in Vietnamese with or without diacritics, in teencode ("e dang o tq ko
ve dc"), or in English. `langdetect` alone is unreliable on short text and cannot recognise
Vietnamese typed without diacritics (it answers Romanian, Tagalog, Somali...), so a heuristic comes
first:

1. Vietnamese diacritics -> vi (a mark only Vietnamese uses: hook above, dot below, horn, breve,
   đ; or accents shared with other languages, unless one accented loanword sits in English text);
2. the words are scored against a list of common Vietnamese syllables and teencode and a list of
   English words; unknown words that cannot be a Vietnamese syllable count a little towards English;
3. on longer text `langdetect` (seeded, so results are stable) adds a vote when it is confident;
4. text with no signal ("ok", "111", "?", an emoji) keeps the conversation's previous language, or
   Vietnamese. Switching away from the previous language needs clear evidence.

No I/O at import: langdetect loads its profiles on the first detection.
"""
from __future__ import annotations

import logging
import re
import threading
import unicodedata

from bot.text import nfc, strip_diacritics

logger = logging.getLogger(__name__)

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LANGDETECT_VOTE = 2.0  # what langdetect's confident answer adds to that language's score

# Combining marks that only Vietnamese uses among the languages people write to us in.
_VI_ONLY_MARKS = {"\u0309", "\u0323", "\u031b", "\u0306"}  # hook above, dot below, horn, breve
_SHARED_MARKS = {"\u0300", "\u0301", "\u0302", "\u0303"}  # grave, acute, circumflex, tilde
_VOWELS = set("aeiouyAEIOUY")

# Common Vietnamese syllables, folded (no diacritics), plus teencode and chat abbreviations.
_VI_WORDS = frozenset("""
    toi tui e em anh chi ban minh chung ta tao may bon ho nguoi co chu bac ong ba con chau be ban
    khong ko k kh hok hem khum kg khg hong k0 co duoc dc dk dko bi lam sao gi j ji nao the vay z
    o day do dau kia nay nhe nha nhen nhi nho a ah ak oi ui u uh uk um vang da ja jo roi r oy
    di ve den toi tu tai voi vs va hay hoac nhung ma thi la cua cho de boi vi nen neu khi luc
    dang se da vua moi ms van con cung cg nua nx lai ra vao len xuong qua sang o
    cong ty cty viec lam tien luong hop dong giay to phep ho chieu cmnd cccd so dien thoai sdt dt
    cuu giup voi muon can phai nen duoc biet hieu noi chuyen hoi tra loi nhan tin nt goi
    nha gia dinh gd bo me bme bm chong ck vo vk con chau anh chi em trai gai ny nguoi yeu
    viet nam trung quoc tq lao campuchia cam han quoc nhat ban dai loan malaysia thai
    xuat khau lao dong xkld nuoc ngoai bien gioi cua khau bo doi bien phong cong an
    giu nhot khoa danh dap ep ban bat coc lua dao tron thoat so hai lo buon kho met chet
    bay gio bh bjo bj hom nay mai qua truoc trc sau lau nhanh cham som muon
    rat lam qua wa hon nhat nhieu it het tat ca moi tung
    xin chao cam on tks thks ak dung sai that gia tot xau dep
    mat tich tim kiem bao cao to cao trinh bao dia chi vi tri dinh vi
    ngay thang nam tuoi gio phut tuan
    tu van tam ly ho tro dich vu thong tin mien phi phi tong dai
    duoc khong a nhe nha ha hu huhu hix hic huhuhu
    ai gi dau sao nao bao nhieu bn bnh ntn nhu the
    mot hai ba bon nam sau bay tam chin muoi tram nghin trieu ty
    ngu an uong di lam hoc choi song o ve ra vao ngoi dung chay
    lam on giup do nho vui long xem kiem tra check giup minh
    trong ngoai tren duoi giua canh gan xa
    nhung cac nhung nhieu moi
    biet nghi thay nghe noi doc viet hieu
    phong ngu quan karaoke nha hang khach san
    ong chu quan ly moi gioi dua dan
    thoi thui thoy hok hem
    nguoi ta ngta ng mk mik ns nc lm ik bme gd
""".split())

# English words (function words and the vocabulary of messages to a hotline).
_EN_WORDS = frozenset("""
    i im ive id ill me my mine myself you your youre yours he him his she her hers it its we our
    us they them their theyre this that these those there here what who whom whose which why how
    when where is am are was were be been being have has had having do does did doing done dont
    didnt doesnt cant cannot couldnt wont wouldnt shouldnt isnt arent wasnt werent havent hasnt
    a an the and or but if because so than then too very just only also not no yes
    of in on at to from by with without about into onto over under after before between through
    during for against up down out off again once
    can could will would shall should may might must need want wanted wants
    please help helps helped call called phone number talk speak speaking english vietnamese
    someone somebody anyone person people man men woman women boy girl child children kid kids
    family friend boyfriend girlfriend husband wife boss employer agent broker police
    job work working worked works salary money pay paid debt owe passport documents papers id
    promised promise offered offer abroad overseas country go going went come coming came back
    home house room locked lock held hold holding keep keeping kept took take taken taking stolen
    safe unsafe danger dangerous scared afraid fear hurt hit beat beaten beating rape raped kill
    sold sell selling buy bought trafficked trafficking kidnapped missing lost find found looking
    know knew tell told say said ask asked answer think thought feel felt see saw look
    where when why who what how much many long time today tomorrow yesterday now right
    hotline hours open opening closed free cost costs service services support counselor
    counseling counselling chat message text send location address
    company agency licence license licensed check verify real fake legit legal scam
    am pm day days week month year years old age
    get got give gave make made let lets leave left stay staying live living
    good bad okay fine sure thanks thank sorry hello hi hey bye goodbye
    there their about any some every all each other another same different
    in into inside outside near far away
    china taiwan cambodia laos malaysia japan korea thailand
""".split())

# Words that say nothing about the language (Vietnamese people use them as much as English speakers).
_NEUTRAL = frozenset("""
    ok oke okay oki okie hi hello helo alo allo hey yes no yeah yep nope bye sos help thanks thank
    thx tks pls plz zalo facebook fb messenger hotline wifi app online inbox ib add admin
""".split()) - {"help"}  # "help me please" is decided by the words around it

_AMBIGUOUS = _VI_WORDS & _EN_WORDS  # an, to, me, no, so, may, can, the, ...
_SYLLABLE = re.compile(r"^(ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnprstvx])?[aeiouy]{1,3}(ng|nh|ch|[cmnpt])?$")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_APOSTROPHES = re.compile(r"['’`´]")

_init_lock = threading.Lock()
_initialised = False


def _init_langdetect() -> None:
    """Seed langdetect once, on first use (its README: results are random without a seed)."""
    global _initialised
    if _initialised:
        return
    with _init_lock:
        if not _initialised:
            from langdetect import DetectorFactory

            DetectorFactory.seed = 0
            _initialised = True


def load_profiles() -> None:
    """Load langdetect's language profiles (about 90,000 lists; half a second) ahead of use."""
    _init_langdetect()
    from langdetect.detector_factory import init_factory

    init_factory()


def _langdetect_vote(text: str) -> tuple[str | None, float]:
    _init_langdetect()
    from langdetect import detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    try:
        candidates = detect_langs(text)
    except LangDetectException:
        return None, 0.0
    if not candidates:
        return None, 0.0
    best = candidates[0]
    return best.lang, float(best.prob)


def _marks(word: str) -> tuple[bool, bool]:
    """(has a Vietnamese-only mark, has a mark shared with other languages)."""
    vi_only = shared = False
    for ch in word:
        if ch in "đĐ":
            vi_only = True
            continue
        decomposed = unicodedata.normalize("NFD", ch)
        if decomposed[0] not in _VOWELS:
            continue  # ñ, ç and friends are not Vietnamese at all
        marks = set(decomposed[1:])
        if marks & _VI_ONLY_MARKS:
            vi_only = True
        elif marks & _SHARED_MARKS:
            shared = True
    return vi_only, shared


def score(text: str) -> tuple[float, float]:
    """(Vietnamese score, English score) of the words of `text`, before langdetect."""
    words = _WORD.findall(_APOSTROPHES.sub("", nfc(text)).lower())
    vi = en = 0.0
    for word in words:
        vi_only, shared = _marks(word)
        if vi_only:
            vi += 3.0
            continue
        if shared:
            vi += 1.5
            continue
        if word in _NEUTRAL or word in _AMBIGUOUS:
            continue
        if word in _VI_WORDS:
            vi += 1.0
        elif word in _EN_WORDS:
            en += 1.0
        elif len(word) == 1:
            continue
        elif _SYLLABLE.match(word):
            vi += 0.25  # could be a Vietnamese syllable we do not list
        else:
            en += 0.5  # cannot be one Vietnamese syllable: English (or a name, hence the low weight)
    return vi, en


def detect_language(text: str, previous: str | None = None) -> str:
    """The language to answer `text` in: "vi" or "en". `previous` is the conversation's language."""
    prev = previous if previous in LANGUAGES else None
    default = prev or DEFAULT_LANGUAGE
    if not text or not text.strip():
        return default
    text = nfc(text)
    words = _WORD.findall(text)
    marks = [_marks(w) for w in words]
    if any(vi_only for vi_only, _ in marks):
        return "vi"
    accented = sum(1 for _, shared in marks if shared)
    vi, en = score(text)
    if accented >= 2 or (accented == 1 and en < 4):
        return "vi"  # Vietnamese diacritics; one accented loanword ("café") in English text is not
    # langdetect's vote (+2 to one side) is asked for only when it could change the answer: it is
    # the slowest part of a message's handling (a couple of milliseconds)
    if len(words) >= 4 and _decide(vi + LANGDETECT_VOTE, en, prev, default) != \
            _decide(vi, en + LANGDETECT_VOTE, prev, default):
        lang, prob = _langdetect_vote(strip_diacritics(text) if en > vi else text)
        if prob >= 0.9 and lang == "en":
            en += LANGDETECT_VOTE
        elif prob >= 0.5 and lang == "vi":
            vi += LANGDETECT_VOTE
    return _decide(vi, en, prev, default)


def _decide(vi: float, en: float, prev: str | None, default: str) -> str:
    """The language from the two scores, leaning to the conversation's language so far."""
    if vi == 0 and en == 0:
        return default
    if prev == "vi":
        return "en" if en >= 2.0 and en >= vi + 1.5 else "vi"
    if prev == "en":
        return "vi" if vi >= 2.0 and vi >= en + 1.5 else "en"
    return "en" if en > vi else "vi"
