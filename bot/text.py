"""Text normalisation shared by the safety screen, the registry look-up and training data.

Vietnamese arrives in NFC or NFD, with or without diacritics, often in teencode. `fold` turns all
of these into one comparable form: lower case, no diacritics, đ -> d, teencode expanded, single
spaces, punctuation removed.
"""
from __future__ import annotations

import re
import unicodedata

# Keys are already folded (no diacritics). Single letters that are also English words ("a", "u")
# are left alone so that English text folds to itself.
_TEENCODE = {
    "ko": "khong", "k": "khong", "kh": "khong", "hok": "khong", "hem": "khong", "khum": "khong",
    "kg": "khong", "khg": "khong", "hong": "khong", "k0": "khong", "dc": "duoc", "dk": "duoc",
    "z": "vay", "j": "gi", "ji": "gi", "bn": "bao nhieu", "bnh": "bao nhieu", "e": "em",
    "tq": "trung quoc", "xkld": "xuat khau lao dong", "ng": "nguoi", "ngta": "nguoi ta",
    "mk": "minh", "mik": "minh", "vs": "voi", "ns": "noi", "nt": "nhan tin", "ntn": "nhu the nao",
    "r": "roi", "oy": "roi", "uk": "u", "uh": "u", "wa": "qua", "trc": "truoc", "bh": "bay gio",
    "bjo": "bay gio", "bj": "bay gio", "cty": "cong ty", "sdt": "so dien thoai",
    "dt": "dien thoai", "pls": "please", "plz": "please", "tks": "cam on", "thks": "cam on",
    "oki": "ok", "lm": "lam", "ms": "moi", "nc": "nuoc", "nx": "nua", "ik": "di", "cg": "cung",
    "vk": "vo", "ck": "chong", "bme": "bo me", "bm": "bo me", "gd": "gia dinh",
}
_MARKS = re.compile("[\u0300-\u036f]+")
_PUNCT = re.compile(r"[^\w\s/.-]+", re.UNICODE)
_SPACES = re.compile(r"\s+")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def strip_diacritics(text: str) -> str:
    """NFD, drop combining marks, đ -> d. Keeps case. Vietnamese marks are all in U+0300-036F, so
    a regex removes them; other scripts' marks (rare here) take the slower per-character path."""
    stripped = _MARKS.sub("", unicodedata.normalize("NFD", text).replace("đ", "d").replace("Đ", "D"))
    if not stripped.isascii():
        stripped = "".join(c for c in stripped if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", stripped)


def has_diacritics(text: str) -> bool:
    return strip_diacritics(text) != nfc(text)


def expand_teencode(words: list[str]) -> list[str]:
    out: list[str] = []
    for w in words:
        out.extend(_TEENCODE.get(w, w).split())
    return out


def fold(text: str, *, teencode: bool = True) -> str:
    """The comparable form of a message: lower case, no diacritics, teencode expanded."""
    text = strip_diacritics(nfc(text).lower())
    text = _PUNCT.sub(" ", text).replace("_", " ")
    words = [w.strip(".-/") or w for w in _SPACES.split(text.strip()) if w]
    words = [w for w in words if w]
    if teencode:
        words = expand_teencode(words)
    return " ".join(words)


def tokens(text: str) -> list[str]:
    return fold(text).split()
