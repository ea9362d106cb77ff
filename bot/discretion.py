"""The discretion rule: the start of every answer must be safe to show on a watched phone.

A phone shows the start of an incoming message in its notification, to whoever holds the phone.
So the first line of an answer never names what the conversation is about. When the first line
is short the preview runs on into the next lines, so the rule covers the first line and, beyond
it, the first ``PREVIEW_CHARS`` characters with line breaks joined (as a lock screen shows them).

Words are compared folded (no diacritics, lower case). A few folded words are also ordinary
Vietnamese words ("tu tu" is tự tử and từ từ, "tron" is trốn and tròn): for those, a word
written with diacritics is a problem only in its sensitive spelling; written without
diacritics it is always a problem, since a reader cannot tell which it is.
"""
from __future__ import annotations

import re

from bot.text import nfc, strip_diacritics

PREVIEW_CHARS = 100

# Folded forms. Vietnamese first, then English.
SENSITIVE_WORDS: tuple[str, ...] = (
    # trafficking, selling people
    "buon ban nguoi", "mua ban nguoi", "ban nguoi", "bi ban", "nan nhan", "duong day",
    # police, rescue, reporting
    "cong an", "canh sat", "bien phong", "giai cuu", "cuu ho", "to cao", "bao an",
    # abuse, violence, sex
    "xam hai", "lam dung", "bao luc", "bao hanh", "danh dap", "hiep dam", "cuong hiep",
    "tinh duc", "mai dam", "ban dam", "nha chua", "bat coc", "bi nhot", "giam giu", "cuong ep",
    # suicide, self-harm
    "tu tu", "tu sat", "tu hai",
    # escape, danger
    "tron", "tron thoat", "nguy hiem", "khan cap", "cap cuu",
    # emergency numbers
    "113", "115",
    # English
    "trafficking", "trafficked", "trafficker", "traffickers", "smuggling", "sold", "selling people",
    "police", "policeman", "rescue", "rescued", "report", "abuse", "abused", "abusive", "rape",
    "raped", "sexual", "sex", "violence", "violent", "victim", "victims", "exploitation",
    "exploited", "kidnap", "kidnapped", "kidnapping", "brothel", "prostitution", "suicide",
    "suicidal", "self harm", "kill", "escape", "escaped", "emergency", "danger", "dangerous",
    "border guard",
)

# Folded words that are also ordinary words: with diacritics, only these spellings count.
AMBIGUOUS_SPELLINGS: dict[str, tuple[str, ...]] = {
    "ban nguoi": ("bán người",),
    "bi ban": ("bị bán",),
    "duong day": ("đường dây",),
    "cong an": ("công an",),
    "canh sat": ("cảnh sát",),
    "bien phong": ("biên phòng",),
    "cuu ho": ("cứu hộ",),
    "to cao": ("tố cáo",),
    "bao an": ("báo án",),
    "lam dung": ("lạm dụng",),
    "bao luc": ("bạo lực",),
    "bao hanh": ("bạo hành",),
    "danh dap": ("đánh đập",),
    "mai dam": ("mại dâm",),
    "ban dam": ("bán dâm",),
    "nha chua": ("nhà chứa",),
    "bat coc": ("bắt cóc",),
    "bi nhot": ("bị nhốt",),
    "tu tu": ("tự tử",),
    "tu sat": ("tự sát",),
    "tu hai": ("tự hại",),
    "tron": ("trốn",),
    "khan cap": ("khẩn cấp",),
    "cap cuu": ("cấp cứu",),
}

_WORD = re.compile(r"\w+", re.UNICODE)


def _fold_word(word: str) -> str:
    return strip_diacritics(word)


def _preview(text: str, limit: int) -> tuple[str, str]:
    """(first line, what a notification shows): the longer of the first line and the preview."""
    stripped = nfc(text).strip()
    first_line = stripped.splitlines()[0].strip() if stripped else ""
    joined = " ".join(stripped.split())
    if len(joined) > limit:
        end = joined.find(" ", limit)
        joined = joined if end == -1 else joined[:end]
    return first_line, first_line if len(first_line) >= len(joined) else joined


def _hits(region: str) -> list[tuple[str, str, int]]:
    """(sensitive word, as written, character offset) for every sensitive word in the region."""
    spans = [(m.group(0).lower(), m.start()) for m in _WORD.finditer(region)]
    written = [w for w, _ in spans]
    folded = [_fold_word(w) for w in written]
    found: list[tuple[str, str, int]] = []
    for sensitive in SENSITIVE_WORDS:
        parts = sensitive.split()
        n = len(parts)
        for i in range(len(folded) - n + 1):
            if folded[i:i + n] != parts:
                continue
            original = " ".join(written[i:i + n])
            spellings = AMBIGUOUS_SPELLINGS.get(sensitive)
            if spellings and original != sensitive and original not in spellings:
                continue
            found.append((sensitive, original, spans[i][1]))
    return found


def first_line_problems(text: str, *, preview_chars: int = PREVIEW_CHARS) -> list[str]:
    """Human-readable problems with the start of an answer; an empty list means it is fine."""
    if not text or not text.strip():
        return ["the answer is empty"]
    first_line, region = _preview(text, preview_chars)
    problems: list[str] = []
    reported: set[str] = set()
    for sensitive, original, offset in sorted(_hits(region), key=lambda h: h[2]):
        if original in reported:
            continue
        reported.add(original)
        where = ("in the first line" if offset < len(first_line)
                 else f"in the notification preview (the first {preview_chars} characters)")
        problems.append(
            f"'{original}' {where}: a notification shows it to whoever holds the phone "
            f"(sensitive word '{sensitive}'); start with a neutral sentence"
        )
    return problems
