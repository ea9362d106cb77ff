"""The deterministic safety screen: phrases kept by content staff, matched on the folded text.

It runs before Rasa on every message and decides on its own whether a chat goes to a counselor,
so it must not depend on a model and must work with Rasa down.

Phrase syntax (the same text content staff write in ``content/safety_phrases.yml``):

- words in folded form, as :func:`bot.text.fold` produces them: lower case, no diacritics,
  ``đ`` -> ``d``, teencode already expanded (``khong``, not ``ko``; ``em``, not ``e``);
- ``*`` between two words stands for up to three words (``khong cho * ve nha`` matches
  "không cho về nhà", "ko cho e về nhà", "không cho chúng tôi về nhà");
- a phrase matches whole words only, anywhere in the message.

A single word is accepted only when it cannot be an ordinary word: folded Vietnamese syllables
(``ban`` is bán, bạn, bàn and bản) and common English words are refused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from bot.text import fold

EMERGENCY = "emergency"
AT_RISK = "at_risk"
PRIORITIES: tuple[str, ...] = (EMERGENCY, AT_RISK)
_RANK = {EMERGENCY: 2, AT_RISK: 1}

GAP = "*"
MAX_GAP_WORDS = 3

# A folded Vietnamese syllable: optional initial, one to three vowels, optional final. Every word
# of this shape stands for several words once the diacritics are gone, so it cannot be a phrase alone.
_VIETNAMESE_SYLLABLE = re.compile(
    r"(?:ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnprstvx])?[aeiouy]{1,3}(?:ng|nh|ch|[cmnpt])?"
)

# Common English words that must never escalate on their own.
COMMON_WORDS: frozenset[str] = frozenset("""
    a about abroad afraid after again against agency all am an and any are as at away back bad
    be beat because been before being big border boss boyfriend but by call cambodia can car child
    china come company could country customer danger daughter day dead die do does dont down drug
    drugs family father fight for friend from get girl girlfriend give go going good got had has
    have he help her here him his hit home house how hurt husband i if in into is it job just kid
    kill know laos leave let like live lock locked look lost love make man me mine missing money
    more mother my need no not now of off on one or our out over paid passport pay people person
    phone please police policy price safe said scared see sell selling send sex she sister so sold
    some son stay stop take than that the their them then there they this to today too travel
    trouble up us visa want was we well went were what when where who why wife will with woman
    work worker would you your
""".split())


@dataclass(frozen=True)
class Phrase:
    phrase: str
    priority: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    escalate: bool
    priority: str | None
    reason: str | None
    matched: list[str]


def _words(phrase: str) -> list[str]:
    return phrase.split()


def validate_phrase(phrase: str) -> str | None:
    """Why this phrase cannot be used, or None when it can."""
    if not isinstance(phrase, str):
        return f"a phrase must be text, not {type(phrase).__name__}"
    words = _words(phrase)
    if not words:
        return "the phrase is empty"
    literal = [w for w in words if w != GAP]
    if not literal:
        return "the phrase is only '*': it would match every message"
    if words[0] == GAP or words[-1] == GAP:
        return "a '*' at the start or the end has no effect: put it between two words"
    for w in words:
        if GAP in w and w != GAP:
            return f"'{w}': '*' must stand alone between spaces"
    for w in literal:
        folded = fold(w)
        if folded != w:
            hint = f"; write '{folded}'" if folded else ""
            return f"'{w}' is not in folded form (lower case, no diacritics, no teencode){hint}"
        if not any(c.isalnum() for c in w):
            return f"'{w}' has no letters or digits"
    if len(literal) == 1:
        word = literal[0]
        if word in COMMON_WORDS:
            return f"'{word}' alone is a common word: write the words around it too"
        if _VIETNAMESE_SYLLABLE.fullmatch(word):
            return (f"'{word}' alone is one Vietnamese syllable, which stands for several words "
                    "without diacritics: write the words around it too")
        if len(word) < 3:
            return f"'{word}' alone is too short: write the words around it too"
    return None


def normalise_phrase(phrase: str) -> str:
    return " ".join(_words(phrase))


def load_phrases(path: Path) -> list[Phrase]:
    """Read and validate a phrase file; ValueError names the first bad entry."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        data = []
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of {{phrase, priority, reason}} entries")
    return parse_phrases(data, source=str(path))


def parse_phrases(entries: Iterable[Any], *, source: str = "phrases") -> list[Phrase]:
    """Validate already-parsed entries (from a file or an API body)."""
    phrases: list[Phrase] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        where = f"{source}: entry {number}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping with phrase, priority and reason")
        if isinstance(entry.get("phrase"), str):
            where += f" ({entry['phrase']!r})"
        unknown = set(entry) - {"phrase", "priority", "reason"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        for field in ("phrase", "priority", "reason"):
            if field not in entry:
                raise ValueError(f"{where}: missing '{field}'")
        error = validate_phrase(entry["phrase"])
        if error:
            raise ValueError(f"{where}: {error}")
        if entry["priority"] not in PRIORITIES:
            raise ValueError(f"{where}: priority must be one of {', '.join(PRIORITIES)}, "
                             f"not {entry['priority']!r}")
        reason = entry["reason"]
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"{where}: the reason must be a non-empty text")
        text = normalise_phrase(entry["phrase"])
        if text in seen:
            raise ValueError(f"{where}: duplicate of entry {seen[text]}")
        seen[text] = number
        phrases.append(Phrase(text, entry["priority"], reason.strip()))
    return phrases


@dataclass(frozen=True)
class _Compiled:
    index: int
    phrase: Phrase
    words: frozenset[str]
    pairs: frozenset[tuple[str, str]]
    regex: re.Pattern[str]

    @property
    def rank(self) -> int:
        return _RANK[self.phrase.priority]


def _pairs(words: list[str]) -> list[tuple[str, str]]:
    """Neighbouring words with no ``*`` between them: they must be neighbours in the message too."""
    return [(a, b) for a, b in zip(words, words[1:]) if GAP not in (a, b)]


def _compile(phrase: str) -> re.Pattern[str]:
    """A pattern over the folded text padded with one space on each side."""
    parts: list[str] = []
    gaps = 0
    for word in _words(phrase):
        if word == GAP:
            gaps += 1
            continue
        if parts and gaps:
            parts.append(rf"(?: \S+){{0,{gaps * MAX_GAP_WORDS}}}")
        parts.append(" " + re.escape(word))
        gaps = 0
    return re.compile("".join(parts) + "(?= )")


class SafetyScreen:
    """Compiled once; :meth:`check` is pure and cheap enough to run on every message.

    Each phrase is filed under one anchor: a pair of neighbouring words when it has one (most
    phrases), else its first word. A message only reaches a phrase's pattern when the anchor,
    every word and every neighbouring pair of the phrase occur in it, so a long message costs a
    few set operations and a handful of pattern searches.
    """

    def __init__(self, phrases: Iterable[Phrase]) -> None:
        self._by_pair: dict[tuple[str, str], list[_Compiled]] = {}
        self._by_word: dict[str, list[_Compiled]] = {}
        self._phrases: list[Phrase] = []
        seen: set[str] = set()
        for phrase in phrases:
            error = validate_phrase(phrase.phrase)
            if error:
                raise ValueError(f"safety phrase {phrase.phrase!r}: {error}")
            if phrase.priority not in _RANK:
                raise ValueError(f"safety phrase {phrase.phrase!r}: unknown priority {phrase.priority!r}")
            text = normalise_phrase(phrase.phrase)
            if text in seen:
                continue
            seen.add(text)
            words = _words(text)
            pairs = _pairs(words)
            compiled = _Compiled(len(self._phrases), phrase, frozenset(w for w in words if w != GAP),
                                 frozenset(pairs), _compile(text))
            self._phrases.append(phrase)
            if pairs:
                self._by_pair.setdefault(pairs[0], []).append(compiled)
            else:
                self._by_word.setdefault(words[0], []).append(compiled)
        self._pair_keys = frozenset(self._by_pair)
        self._word_keys = frozenset(self._by_word)

    @property
    def phrases(self) -> list[Phrase]:
        return list(self._phrases)

    def __len__(self) -> int:
        return len(self._phrases)

    def check(self, text: str) -> Verdict:
        folded = fold(text or "")
        if not folded:
            return Verdict(False, None, None, [])
        tokens = folded.split()
        present = set(tokens)
        neighbours = set(zip(tokens, tokens[1:]))
        candidates: list[_Compiled] = []
        for pair in self._pair_keys.intersection(neighbours):
            candidates.extend(self._by_pair[pair])
        for word in self._word_keys.intersection(present):
            candidates.extend(self._by_word[word])
        hits: list[_Compiled] = []
        padded = f" {folded} "
        for compiled in candidates:
            if (compiled.words <= present and compiled.pairs <= neighbours
                    and compiled.regex.search(padded)):
                hits.append(compiled)
        if not hits:
            return Verdict(False, None, None, [])
        hits.sort(key=lambda c: (-c.rank, c.index))
        top = hits[0].phrase
        return Verdict(True, top.priority, top.reason, [c.phrase.phrase for c in hits])


def as_dict(verdict: Verdict) -> dict[str, Any]:
    """The JSON shape of ``POST /api/content/safety-check``."""
    return {
        "escalate": verdict.escalate,
        "priority": verdict.priority,
        "reason": verdict.reason,
        "matched": list(verdict.matched),
    }
