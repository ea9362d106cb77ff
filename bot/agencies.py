"""The recruitment-agency registry: the official list of licensed labour-export enterprises.

Import: the list arrives as CSV (``name,licence_number,status,licensed_on,status_changed_on,
address,source``; UTF-8 with or without BOM; ``,`` or ``;``; Vietnamese status words accepted).
:func:`parse_csv` checks the whole file first and names the line of the first problem;
:func:`plan_import` says what would change (the dry run); :func:`apply_import` makes the change
in one transaction.

Look-up: people type a company's name without diacritics, with typos, in part, or only its
licence number. :func:`lookup` finds a licence number in the text first (exact), otherwise
compares names on their folded form with the generic words removed ("công ty", "TNHH", "xuất
khẩu lao động"...), over word windows of the message. It answers ``match`` only for a strong,
unambiguous score; anything weaker is ``near`` with candidates for the person to confirm. The
bot never calls an agency safe: the registry only says what the official list says.
"""
from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.db.models import Agency, utcnow
from bot.text import fold, nfc, strip_diacritics

logger = logging.getLogger(__name__)

STATUSES = ("active", "suspended", "revoked")
MAX_ROWS = 20_000
REQUIRED_COLUMNS = ("name", "licence_number", "status")
COLUMNS = ("name", "licence_number", "status", "licensed_on", "status_changed_on", "address", "source")
_MAX_LENGTH = {"name": 255, "licence_number": 64, "address": 512, "source": 255}

MATCH_SCORE = 0.90  # at or above: a match (when unambiguous and nothing else is glued to the name)
NEAR_SCORE = 0.60  # at or above: offered as a candidate to confirm
NAME_AGREES = 0.75  # a licence number found in the text, and a name that fits it at least this well
TIE_MARGIN = 0.03
MAX_CANDIDATES = 3


# ------------------------------------------------------------------------------------ records

@dataclass(frozen=True)
class AgencyRecord:
    name: str
    licence_number: str
    status: str
    licensed_on: date | None = None
    status_changed_on: date | None = None
    address: str | None = None
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "licence_number": self.licence_number, "status": self.status,
                "licensed_on": _iso(self.licensed_on), "status_changed_on": _iso(self.status_changed_on),
                "address": self.address, "source": self.source}

    def short(self) -> dict[str, Any]:
        return {"licence_number": self.licence_number, "name": self.name, "status": self.status}

    @classmethod
    def from_row(cls, row: Agency) -> "AgencyRecord":
        return cls(row.name, row.licence_number, row.status, row.licensed_on, row.status_changed_on, row.address,
                   row.source)


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


class CsvError(ValueError):
    """A problem in an imported file: ``row`` is the 1-based line number, ``error`` what is wrong."""

    def __init__(self, row: int, error: str) -> None:
        super().__init__(f"row {row}: {error}")
        self.row = row
        self.error = error


# ------------------------------------------------------------------------------------ CSV

_STATUS_WORDS = {
    "active": "active", "licensed": "active", "valid": "active", "dang hoat dong": "active",
    "hoat dong": "active", "con hieu luc": "active", "hieu luc": "active", "dang hieu luc": "active",
    "suspended": "suspended", "dinh chi": "suspended", "tam dinh chi": "suspended", "bi dinh chi": "suspended",
    "bi tam dinh chi": "suspended", "dang bi dinh chi": "suspended", "tam ngung": "suspended",
    "revoked": "revoked", "thu hoi": "revoked", "bi thu hoi": "revoked", "da thu hoi": "revoked",
    "da bi thu hoi": "revoked",
}
_HEADER_ALIASES = {
    "name": "name", "ten": "name", "ten doanh nghiep": "name", "doanh nghiep": "name", "ten cong ty": "name",
    "licence_number": "licence_number", "license_number": "licence_number", "licence": "licence_number",
    "license": "licence_number", "licence_no": "licence_number", "license_no": "licence_number",
    "so giay phep": "licence_number", "giay phep": "licence_number",
    "status": "status", "trang thai": "status",
    "licensed_on": "licensed_on", "ngay cap": "licensed_on", "ngay cap phep": "licensed_on",
    "status_changed_on": "status_changed_on", "ngay thay doi": "status_changed_on",
    "address": "address", "dia chi": "address", "source": "source", "nguon": "source",
}
_HEADER_ALIASES = {k.replace("_", " "): v for k, v in _HEADER_ALIASES.items()}
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d")
_BOM = b"\xef\xbb\xbf"


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        raise CsvError(_line_of(data, data.index(b"\x00")),
                       "NUL byte: this is not a text CSV file (save it as CSV UTF-8)")
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CsvError(_line_of(data, start + exc.start), "not UTF-8 text (save the file as CSV UTF-8)") from exc


def _header_key(cell: str) -> str:
    return fold(cell, teencode=False).replace("_", " ")


def _parse_status(value: str) -> str | None:
    return _STATUS_WORDS.get(fold(value, teencode=False))


def _parse_date(value: str) -> date:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(value)


def _clean(value: str | None) -> str:
    return " ".join(nfc(value or "").split())


def licence_key(licence: str) -> str:
    """The comparable form of a licence number: no diacritics, upper case, no spaces, one dash."""
    text = strip_diacritics(nfc(licence)).upper()
    text = re.sub(r"[‐‑‒–—―]", "-", text)
    return re.sub(r"\s+", "", text)


def parse_csv(data: bytes) -> list[AgencyRecord]:
    """Every record of an official-list CSV, or CsvError for the first problem (nothing partial)."""
    text = _decode(data)
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), None)
    if header_line is None:
        raise CsvError(1, "the file is empty: expected a header line " + ",".join(COLUMNS))
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    columns: list[str | None] | None = None
    records: list[AgencyRecord] = []
    seen: dict[str, int] = {}
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if columns is None:
                columns = [_HEADER_ALIASES.get(_header_key(c)) for c in cells]
                missing = [c for c in REQUIRED_COLUMNS if c not in columns]
                if missing:
                    raise CsvError(line, f"missing column(s) {', '.join(missing)}: the header must have "
                                         + ",".join(COLUMNS))
                continue
            if len(records) >= MAX_ROWS:
                raise CsvError(line, f"more than {MAX_ROWS} rows: split the file")
            records.append(_record(line, cells, columns, seen))
    except csv.Error as exc:  # raised while reading the record that starts on line `start`
        message = str(exc)
        if "end of data" in message or "EOF" in message:
            raise CsvError(start, "a quote (\") is opened and never closed") from exc
        raise CsvError(max(start, reader.line_num), f"malformed CSV: {message}") from exc
    if columns is None:
        raise CsvError(1, "no header line")
    return records


def _record(line: int, cells: list[str], columns: list[str | None], seen: dict[str, int]) -> AgencyRecord:
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns):]):
        raise CsvError(line, f"{len(cells)} fields but the header has {len(columns)} "
                             "(a name with a comma must be in quotes)")
    values: dict[str, str] = {}
    for column, cell in zip(columns, cells):
        if column and column not in values:
            values[column] = _clean(cell)
    for column, limit in _MAX_LENGTH.items():
        if len(values.get(column, "")) > limit:
            raise CsvError(line, f"{column} is longer than {limit} characters")
    name, licence = values.get("name", ""), values.get("licence_number", "")
    if not name:
        raise CsvError(line, "empty name")
    if not licence:
        raise CsvError(line, "empty licence_number")
    key = licence_key(licence)
    if key in seen:
        raise CsvError(line, f"licence number {licence} is already on row {seen[key]}")
    seen[key] = line
    status = _parse_status(values.get("status", ""))
    if status is None:
        raise CsvError(line, f"unknown status {values.get('status', '')!r}: use active, suspended or revoked "
                             "(hoạt động, đình chỉ, thu hồi)")
    dates: dict[str, date | None] = {}
    for column in ("licensed_on", "status_changed_on"):
        raw = values.get(column, "")
        try:
            dates[column] = _parse_date(raw) if raw else None
        except ValueError:
            raise CsvError(line, f"bad date in {column}: {raw!r} (use YYYY-MM-DD or DD/MM/YYYY)") from None
    return AgencyRecord(name, licence, status, dates["licensed_on"], dates["status_changed_on"],
                        values.get("address") or None, values.get("source") or None)


# ------------------------------------------------------------------------------------ import

@dataclass
class ImportPlan:
    added: list[AgencyRecord] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    removed: list[AgencyRecord] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {"added": [r.short() for r in self.added],
                "changed": [dict(c) for c in self.changed],
                "removed": [r.short() for r in self.removed]}


_COMPARED = ("licence_number", "name", "status", "licensed_on", "status_changed_on", "address", "source")


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


async def _existing(session: AsyncSession) -> dict[str, Agency]:
    rows = (await session.scalars(select(Agency))).all()
    return {licence_key(r.licence_number): r for r in rows}


def _plan(existing: dict[str, Agency], records: Sequence[AgencyRecord]) -> ImportPlan:
    plan = ImportPlan()
    keys: set[str] = set()
    for record in records:
        key = licence_key(record.licence_number)
        keys.add(key)
        row = existing.get(key)
        if row is None:
            plan.added.append(record)
            continue
        changes = {f: [_jsonable(getattr(row, f)), _jsonable(getattr(record, f))]
                   for f in _COMPARED if getattr(row, f) != getattr(record, f)}
        if changes:
            plan.changed.append({"licence_number": record.licence_number, "name": record.name, "changes": changes})
    plan.removed = [AgencyRecord.from_row(row) for key, row in existing.items() if key not in keys]
    return plan


async def plan_import(session: AsyncSession, records: Sequence[AgencyRecord]) -> ImportPlan:
    """What importing ``records`` would change (nothing is written)."""
    return _plan(await _existing(session), records)


async def apply_import(session: AsyncSession, records: Sequence[AgencyRecord]) -> ImportPlan:
    """Make the registry equal to ``records`` in one transaction; returns what changed."""
    try:
        existing = await _existing(session)
        plan = _plan(existing, records)
        by_key = {licence_key(r.licence_number): r for r in records}
        gone = [existing[licence_key(r.licence_number)].id for r in plan.removed]
        if gone:
            await session.execute(delete(Agency).where(Agency.id.in_(gone)))
        now = utcnow()
        for change in plan.changed:
            row = existing[licence_key(change["licence_number"])]
            record = by_key[licence_key(change["licence_number"])]
            for f in change["changes"]:
                setattr(row, f, getattr(record, f))
            row.name_folded = fold_name(record.name)
            row.updated_at = now
        await session.flush()
        for record in plan.added:
            session.add(Agency(name=record.name, name_folded=fold_name(record.name),
                               licence_number=record.licence_number, status=record.status,
                               licensed_on=record.licensed_on, status_changed_on=record.status_changed_on,
                               address=record.address, source=record.source, updated_at=now))
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    logger.info("registry import: %d added, %d changed, %d removed", len(plan.added), len(plan.changed),
                len(plan.removed))
    return plan


async def import_file(sessions: sessionmaker, path: Path | str, dry_run: bool) -> ImportPlan:
    """Parse a CSV file and plan (``dry_run``) or apply it. CsvError: nothing was changed."""
    records = parse_csv(Path(path).read_bytes())
    async with sessions() as session:
        if dry_run:
            return await plan_import(session, records)
        return await apply_import(session, records)


# ------------------------------------------------------------------------------------ matching

# Generic words of enterprise names, folded. Legal forms go first; when a name is made only of
# descriptive words ("Công ty CP Đầu tư và Phát triển Nhân lực Việt Nam"), those are kept.
# ("Demo" / "Sample" mark the fictitious names of content/agencies.sample.csv.)
_LEGAL = """
    cong ty|cty|ct|cong ty co phan|co phan|cp|ctcp|tnhh|trach nhiem huu han|mtv|mot thanh vien
    |hai thanh vien|jsc|joint stock|joint stock company|co ltd|co|ltd|limited|company|corporation|corp
    |inc|llc|group|tap doan|tong cong ty|chi nhanh|doanh nghiep|dn|trung tam
"""
_DESCRIPTIVE = """
    xuat khau lao dong|xkld|xuat khau|xuat nhap khau|xnk|nhan luc|cung ung nhan luc|cung ung
    |quoc te|thuong mai|dich vu|tmdv|dau tu|phat trien|hop tac|lao dong|viet nam|vietnam|vn|va|and
    |international|intl|manpower|human resources|human resource|hr|trading|service|services
    |investment|development|cooperation|viec lam|viec lam ngoai nuoc|ngoai nuoc|nuoc ngoai|nguon nhan luc
    |nguon luc|dao tao|toan cau|lao dong ngoai nuoc
    |demo|sample
"""
# Words of a chat message around a name: never part of the comparison's "extras".
_CHAT_WORDS = frozenset("""
    kiem tra tra cuu giay phep gp so hieu khong ko k hong co phai la that gia uy tin lua dao hop phap
    check giup em toi minh anh chi ban oi voi nhe nha a ah ak cho hoi xem duoc dc nay do kia ten cua
    cong ty cty licence license licensed number no is the a an this that legit real fake scam please
    can you i my agency recruitment about of for how what ve thong tin muon biet dang tuyen dung di
    sang lam viec o tai ok oke vang u da yes nao ai gi sao vay day hay chua roi ha hem khum
    giup do tim search find look up lookup verify if whether are was does do which where who should
    could would tell me we they it its there any list official registered registry legal lawful safe trust
    trustworthy real company companies agencies firm broker labour labor export work job jobs abroad
""".split())
# Chat words that are also syllables of company names ("Minh Anh", "Tài Đức"): a short message of
# only these is still searched.
_NAME_LIKE = frozenset("minh anh chi ban viec sang tim dang thong tuyen dung lam tai ha da that gia hop phap ai tin"
                       .split())
_LICENCE_IN_TEXT = re.compile(r"(?<![\w/])(\d{1,5})\s*/\s*([^\W\d_]\w*(?:\s*[-‐‑–—]\s*\w+)*)", re.UNICODE)
_NUMBER_IN_TEXT = re.compile(r"(?<![\w/.,])(\d{1,5})(?!\w|[/.,]\d)")
_LICENCE_WORDS = re.compile(r"(?:^| )(so|gp|giay phep|licence|license|number|no|so hieu|ma so)$")
_SPLIT = re.compile(r"[\s\-/.&+,]+")
_SEGMENT = re.compile(r"[,;:!?()\[\]\n]+|\.(?=\s|$)")


def _phrases(spec: str) -> list[list[str]]:
    items = {" ".join(p.split()) for p in spec.replace("\n", " ").split("|") if p.strip()}
    return sorted((p.split() for p in items), key=len, reverse=True)


def _index(phrases: list[list[str]]) -> dict[str, list[list[str]]]:
    """Phrases by their first word, longest first."""
    index: dict[str, list[list[str]]] = {}
    for phrase in phrases:
        index.setdefault(phrase[0], []).append(phrase)
    return index


_LEGAL_PHRASES = _index(_phrases(_LEGAL))
_ALL_PHRASES = _index(sorted(_phrases(_LEGAL) + _phrases(_DESCRIPTIVE), key=len, reverse=True))
MAX_QUERY_WORDS = 40


def fold_name(name: str) -> str:
    """The stored comparable form of a name (``Agency.name_folded``): folded, no teencode."""
    return " ".join(t for t in _SPLIT.split(fold(name, teencode=False)) if t)


def _tokens(text: str) -> list[str]:
    return [t for t in _SPLIT.split(fold(text, teencode=False)) if t]


def _strip_phrases(tokens: list[str], phrases: dict[str, list[list[str]]]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for phrase in phrases.get(tokens[i], ()):
            if tokens[i:i + len(phrase)] == phrase:
                i += len(phrase)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _core(tokens: list[str]) -> tuple[list[str], bool]:
    """(distinctive tokens of a name, whether the descriptive words had to be kept)."""
    core = _strip_phrases(tokens, _ALL_PHRASES)
    if core:
        return core, False
    light = _strip_phrases(tokens, _LEGAL_PHRASES)
    return (light or tokens), True


@lru_cache(maxsize=1 << 16)
def _ratio(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b).ratio()


def _similar(a: str, b: str, threshold: float, min_len: int) -> bool:
    if a == b:
        return True
    shorter, total = min(len(a), len(b)), len(a) + len(b)
    if shorter < min_len or 2 * shorter / total < threshold:
        return False  # the ratio cannot reach the threshold
    return _ratio(a, b) >= threshold


def _token_close(a: str, b: str) -> bool:
    """The same word, or one typo in a word of four letters or more."""
    return _similar(a, b, 0.8, 4)


def _token_like(a: str, b: str) -> bool:
    """Looser than _token_close: a short word with one typo ("lon" for "long") still counts."""
    return _similar(a, b, 0.75, 3)


@dataclass(frozen=True)
class _Scored:
    score: float
    extras: int  # distinctive words glued to the matched window
    record: AgencyRecord
    core: tuple[str, ...]


@dataclass(frozen=True)
class _Window:
    score: float = 0.0  # 0.6 x string similarity + 0.4 x share of the name's words found
    precision: float = 0.0  # share of the window's words that belong to the name
    extras: int = 0

    @property
    def plausible(self) -> bool:
        """Worth offering: similar enough, and the window is mostly the name's words (or typos of
        them), so "Trường Thịnh Phát" does not offer "Minh Phát"."""
        return self.score >= NEAR_SCORE and self.precision >= 0.67


def _score(name_core: list[str], query: list[str], anchors: set[int] | None = None) -> _Window:
    """The window of ``query`` most like ``name_core`` (windows of the name's length +- 1).

    ``anchors``: the positions of the message's words that are like a word of the name; windows
    start at or just before one (the others cannot score better). None: every position."""
    target = " ".join(name_core)
    target_joined = "".join(name_core)
    best = _Window()
    n = len(name_core)
    if anchors is None:
        starts = range(len(query))
    else:
        starts = sorted({s for a in anchors for s in (a - 1, a) if s >= 0})
    for size in range(max(1, n - 1), n + 2):
        for start in starts:
            if start > max(0, len(query) - size):
                continue
            window = query[start:start + size]
            if not window:
                continue
            joined = "".join(window)
            sim = max(_ratio(" ".join(window), target), _ratio(joined, target_joined))
            covered = sum(1 for t in name_core if t in joined or any(_token_close(t, w) for w in window))
            score = 0.6 * sim + 0.4 * covered / n
            if score > best.score:
                own = sum(1 for w in window if w in target_joined or any(_token_like(w, t) for t in name_core))
                neighbours = query[max(0, start - 1):start] + query[start + size:start + size + 1]
                extras = sum(1 for t in neighbours if t not in _CHAT_WORDS and not t.isdigit())
                best = _Window(score, own / len(window), extras)
    return best


def searchable_tokens(text: str) -> list[str]:
    """The words of a message that could be part of a company name: words that are not chat
    words, or a short message made only of syllables that names use too ("Minh Anh")."""
    core = [t for t in _strip_phrases(_tokens(text), _ALL_PHRASES) if len(t) >= 2 or t.isdigit()]
    words = [t for t in core if t not in _CHAT_WORDS]
    if not words and 0 < len(core) <= 3 and all(t in _NAME_LIKE for t in core):
        words = core
    return words


def is_searchable(text: str | None) -> bool:
    """Whether a message holds something to look up: a licence number or a word of a name."""
    if not text or not text.strip():
        return False
    if _LICENCE_IN_TEXT.search(nfc(text)) or _NUMBER_IN_TEXT.search(text):
        return True
    return bool(searchable_tokens(text))


@dataclass(frozen=True)
class LookupResult:
    kind: str  # match | near | not_found | empty
    query: str
    agency: AgencyRecord | None = None
    candidates: list[AgencyRecord] = field(default_factory=list)
    score: float = 0.0
    by: str | None = None  # licence | name

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "query": self.query, "agency": self.agency.as_dict() if self.agency else None,
                "candidates": [c.as_dict() for c in self.candidates], "score": round(self.score, 3), "by": self.by}


@dataclass
class _Entry:
    record: AgencyRecord
    key: str
    number: int | None
    core: list[str]
    light: bool


def _entries(rows: Iterable[Agency]) -> list[_Entry]:
    entries = []
    for row in rows:
        record = AgencyRecord.from_row(row)
        tokens = (row.name_folded or fold_name(row.name)).split()
        core, light = _core(tokens)
        number = re.match(r"\s*0*(\d+)", row.licence_number)
        entries.append(_Entry(record, licence_key(row.licence_number), int(number.group(1)) if number else None,
                              core, light))
    return entries


def _segments(text: str) -> list[list[str]]:
    """The message cut at punctuation: a name does not run across "," or "?"."""
    return [t for t in (_tokens(part) for part in _SEGMENT.split(nfc(text))) if t]


def _rank(entries: list[_Entry], query: str) -> list[_Scored]:
    segments = [(_strip_phrases(t, _ALL_PHRASES), _strip_phrases(t, _LEGAL_PHRASES))
                for t in _segments(query)]
    segments = [(full[:MAX_QUERY_WORDS], light[:MAX_QUERY_WORDS]) for full, light in segments if full or light]
    if not segments:
        return []
    words = {t for full, light in segments for t in full + light}
    vocabulary = {t for entry in entries for t in entry.core}
    # which words of the names each word of the message is like (the same, one typo, or inside it:
    # "hoanglong" holds "hoang"); a name none of whose words is like one in the message is skipped
    like = {w: {v for v in vocabulary if v == w or (len(v) >= 3 and v in w) or _token_like(v, w)} for w in words}
    liked = set().union(*like.values()) if like else set()
    scored: list[_Scored] = []
    for entry in entries:
        core = set(entry.core)
        if not liked & core:
            continue
        best = _Window()
        for full, light in segments:
            tokens = light if entry.light else full
            anchors = {i for i, t in enumerate(tokens) if like[t] & core}
            if anchors:
                window = _score(entry.core, tokens, anchors)
                if window.score > best.score:
                    best = window
        if best.plausible:
            scored.append(_Scored(best.score, best.extras, entry.record, tuple(entry.core)))
    scored.sort(key=lambda s: (-s.score, s.extras, s.record.name))
    return scored


def _decide(query: str, ranked: list[_Scored]) -> LookupResult:
    """A match only when the best name is strong, alone, and not part of a longer name that is
    also on the list ("Hoa Sen" when "Hoa Sen Việt" exists too): otherwise names to confirm."""
    if not ranked:
        return LookupResult("not_found", query)
    best = ranked[0]
    rivals = [s for s in ranked[1:]
              if (s.score >= best.score - TIE_MARGIN and s.extras <= best.extras)
              or set(best.core) < set(s.core)]
    if best.score >= MATCH_SCORE and best.extras == 0 and not rivals:
        return LookupResult("match", query, best.record, [], best.score, "name")
    candidates = [best.record] + [s.record for s in rivals] + [s.record for s in ranked[1:] if s not in rivals]
    return LookupResult("near", query, best.record, candidates[:MAX_CANDIDATES], best.score, "name")


def _licence_hits(entries: list[_Entry], query: str) -> tuple[list[_Entry], bool, str]:
    """(entries the licence number in the text points to, whether it was exact, the text without it)."""
    text = nfc(query)
    for m in _LICENCE_IN_TEXT.finditer(text):
        key = licence_key(m.group(0))
        rest = (text[:m.start()] + " " + text[m.end():]).strip()
        exact = [e for e in entries if e.key == key]
        if exact:
            return exact, True, rest
        number = int(m.group(1))
        by_number = [e for e in entries if e.number == number]
        if by_number:
            return by_number, False, rest
    folded = fold(text, teencode=False)
    names = searchable_tokens(_LICENCE_IN_TEXT.sub(" ", text))
    for m in _NUMBER_IN_TEXT.finditer(folded):
        before = folded[:m.start()].strip()
        others = [t for t in names if t != m.group(1)]
        if not _LICENCE_WORDS.search(before) and others:
            continue  # a number inside a sentence about something else ("em 19 tuổi")
        number = int(m.group(1))
        by_number = [e for e in entries if e.number == number]
        if by_number:
            rest = (folded[:m.start()] + " " + folded[m.end():]).strip()
            return by_number, len(by_number) == 1, rest
    return [], False, text


async def lookup(session: AsyncSession, query: str) -> LookupResult:
    """Look a company name or licence number up in the registry (see the module's docstring)."""
    query = _clean(query)
    rows = (await session.scalars(select(Agency))).all()
    if not rows:
        return LookupResult("empty", query)
    entries = _entries(rows)
    hits, exact, rest = _licence_hits(entries, query)
    if hits:
        ranked_by_name = _rank(entries, rest) if searchable_tokens(rest) else []
        if len(hits) == 1 and exact:
            hit = hits[0]
            if not ranked_by_name:
                return LookupResult("match", query, hit.record, [], 1.0, "licence")
            own = max((_score(hit.core, _strip_phrases(t, _LEGAL_PHRASES if hit.light else _ALL_PHRASES)).score
                       for t in _segments(rest)), default=0.0)
            if own >= NAME_AGREES:
                return LookupResult("match", query, hit.record, [], 1.0, "licence")
            # the name in the message belongs to another company than the licence number: confirm
            others = [s.record for s in ranked_by_name if s.record != hit.record]
            return LookupResult("near", query, hit.record, [hit.record] + others[:MAX_CANDIDATES - 1], own, "licence")
        candidates = [h.record for h in hits][:MAX_CANDIDATES]
        return LookupResult("near", query, candidates[0], candidates, 0.0, "licence")
    return _decide(query, _rank(entries, query))
