"""The content store: every answer per key and language, with versions, seeded from the repository.

The live text of an answer is a row of ``content_response``; every version of it is kept in
``content_response_version`` for diffs and revert. ``content/responses.yml`` is the seed:
``{key: {vi: text, en: text}}``. Seeding inserts what the database lacks and never overwrites an
edited answer; ``export_responses`` writes the database back to the seed file for review in git.

Editing goes through :func:`update_response`, which refuses text that would break the bot:
empty or too long, a first line that a notification preview must not show (see
:mod:`bot.discretion`), or placeholders the sending code does not fill.

:class:`ContentStore` is what the action server and the gateway read from. It reads the database
on every call (an edit shows in the very next message) and falls back to the seed file when the
database cannot answer, so the bot keeps answering. No I/O at import or construction.

Write functions commit their own transaction.
"""
from __future__ import annotations

import asyncio
import difflib
import json
import logging
import os
import re
import string
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.db.models import Response, ResponseVersion, SafetyPhrase, utcnow
from bot.discretion import first_line_problems
from bot.safety import PRIORITIES, Phrase, SafetyScreen, validate_phrase
from bot.text import fold, nfc

logger = logging.getLogger(__name__)

LANGS: tuple[str, ...] = ("vi", "en")
DEFAULT_LANG = "vi"
MAX_TEXT = 2000
FALLBACK_KEY = "utter_default"
SEED_AUTHOR = "seed"

Seed = dict[str, dict[str, str]]


class ContentError(ValueError):
    """An edit that cannot be accepted; ``message`` says why, in words for content staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ------------------------------------------------------------------------------------ seed file

def load_seed(path: Path | str) -> Seed:
    """Read ``responses.yml``: ``{key: {lang: text}}``. ContentError names a malformed entry."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ContentError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ContentError(f"{path}: expected a mapping of answer keys to {{vi: text, en: text}}")
    seed: Seed = {}
    for key, texts in data.items():
        if not isinstance(key, str) or not isinstance(texts, dict):
            raise ContentError(f"{path}: {key!r}: expected a mapping of languages to texts")
        seed[key] = {}
        for lang, text in texts.items():
            if not isinstance(lang, str) or not isinstance(text, str):
                raise ContentError(f"{path}: {key}.{lang}: expected text")
            seed[key][lang] = _normalise(text)
    return seed


def _normalise(text: str) -> str:
    return nfc(text).replace("\r\n", "\n").replace("\r", "\n").strip()


_seed_cache: dict[Path, tuple[float, Seed]] = {}


def _default_seed() -> Seed:
    """The configured seed file (CONTENT_DIR/responses.yml), re-read when it changes."""
    from bot.settings import Settings

    path = Settings.from_env().content_dir / "responses.yml"
    try:
        mtime = path.stat().st_mtime
    except OSError:
        logger.warning("no seed file at %s: edits are checked against the database only", path)
        return {}
    cached = _seed_cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    seed = load_seed(path)
    _seed_cache[path] = (mtime, seed)
    return seed


# ------------------------------------------------------------------------------------ helpers

_FORMATTER = string.Formatter()


def placeholders(text: str) -> set[str]:
    """The ``{name}`` placeholders of a text. ContentError on stray braces or fancy fields."""
    names: set[str] = set()
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise ContentError(f"unbalanced braces ({exc}); write {{{{ and }}}} for a literal brace") from exc
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ContentError(f"placeholder {{{field}}} is not a plain {{name}}")
        names.add(field)
    return names


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(text: str, **values: Any) -> str:
    """Fill ``{name}`` placeholders; unknown ones stay visible as ``{name}``.

    Values are inserted in one pass, so braces inside a value are never read as placeholders.
    A text with malformed braces is returned as it is rather than failing the answer.
    """
    out: list[str] = []
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError:
        logger.warning("answer text with malformed braces sent unfilled")
        return text
    for literal, field, spec, conversion in parsed:
        out.append(literal)
        if field is None:
            continue
        if field in values and values[field] is not None:
            out.append(str(values[field]))
        else:
            suffix = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            out.append("{" + field + suffix + "}")
    return "".join(out)


def diff(old: str, new: str) -> str:
    """A unified diff of two versions of an answer, for review before saving."""
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), fromfile="before", tofile="after",
                                 lineterm="")
    return "\n".join(lines)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def _row_dict(row: Response) -> dict[str, Any]:
    return {"key": row.key, "lang": row.lang, "text": row.text, "version": row.version,
            "updated_by": row.updated_by, "updated_at": _iso(row.updated_at)}


def response_json(row: Response) -> dict[str, Any]:
    """The JSON of one answer row: key, lang, text, version, updated_by, updated_at."""
    return _row_dict(row)


def notification_preview(text: str) -> dict[str, str]:
    """What a phone's notification shows of an answer (see :mod:`bot.discretion`), and its first line."""
    from bot.discretion import PREVIEW_CHARS, _preview

    first_line, shown = _preview(text, PREVIEW_CHARS)
    return {"first_line": first_line, "notification": shown}


# ------------------------------------------------------------------------------------ database

async def seed_responses(session: AsyncSession, seed: Mapping[str, Mapping[str, str]]) -> int:
    """Insert the seed's (key, lang) texts the database lacks, as version 1. Returns how many."""
    existing = {(k, lang) for k, lang in (await session.execute(select(Response.key, Response.lang))).all()}
    versions = {(k, lang): v for k, lang, v in (await session.execute(
        select(ResponseVersion.key, ResponseVersion.lang, func.max(ResponseVersion.version))
        .group_by(ResponseVersion.key, ResponseVersion.lang))).all()}
    now = utcnow()
    added = 0
    for key, texts in seed.items():
        for lang, text in texts.items():
            if (key, lang) in existing:
                continue
            version = (versions.get((key, lang)) or 0) + 1
            text = _normalise(text)
            session.add(Response(key=key, lang=lang, text=text, version=version, updated_by=SEED_AUTHOR,
                                 updated_at=now))
            session.add(ResponseVersion(key=key, lang=lang, version=version, text=text, author=SEED_AUTHOR,
                                        created_at=now))
            added += 1
    try:
        await session.commit()
    except IntegrityError:  # another replica seeded at the same moment: its rows stand
        await session.rollback()
        logger.info("answers were seeded concurrently by another process")
        return 0
    if added:
        logger.info("seeded %d answers", added)
    return added


async def get_text(session: AsyncSession, key: str, lang: str) -> str | None:
    return await session.scalar(select(Response.text).where(Response.key == key, Response.lang == lang))


async def list_responses(session: AsyncSession, q: str | None = None) -> list[dict[str, Any]]:
    """Every answer, ordered by key and language; ``q`` filters on the key or the folded text."""
    rows = (await session.scalars(select(Response).order_by(Response.key, Response.lang))).all()
    if q and q.strip():
        needle = fold(q, teencode=False)
        raw = q.strip().lower()
        rows = [r for r in rows if raw in r.key.lower() or (needle and needle in fold(r.text, teencode=False))]
    return [_row_dict(r) for r in rows]


async def history(session: AsyncSession, key: str, lang: str) -> list[dict[str, Any]]:
    """Every version of one answer, newest first."""
    rows = (await session.scalars(
        select(ResponseVersion).where(ResponseVersion.key == key, ResponseVersion.lang == lang)
        .order_by(ResponseVersion.version.desc()))).all()
    return [{"key": r.key, "lang": r.lang, "version": r.version, "text": r.text, "author": r.author,
             "created_at": _iso(r.created_at)} for r in rows]


async def _allowed_placeholders(session: AsyncSession, key: str, seed: Mapping[str, Mapping[str, str]]) -> set[str]:
    texts: Iterable[str]
    if key in seed:
        texts = seed[key].values()
    else:
        texts = (await session.scalars(select(Response.text).where(Response.key == key))).all()
    allowed: set[str] = set()
    for text in texts:
        try:
            allowed |= placeholders(text)
        except ContentError:
            continue
    return allowed


async def allowed_placeholders(session: AsyncSession, key: str,
                               seed: Mapping[str, Mapping[str, str]] | None = None) -> set[str]:
    """The ``{name}`` placeholders answer ``key`` may use (those of its seed texts)."""
    return await _allowed_placeholders(session, key, _default_seed() if seed is None else seed)


async def check_response(session: AsyncSession, key: str, lang: str, text: str,
                         seed: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """The normalised text if it may replace answer (key, lang); ContentError says why not."""
    seed = _default_seed() if seed is None else seed
    if lang not in LANGS:
        raise ContentError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")
    known = key in seed or await session.scalar(select(Response.id).where(Response.key == key).limit(1))
    if not known:
        raise ContentError(f"unknown answer {key!r}")
    if not isinstance(text, str):
        raise ContentError("the answer must be text")
    text = _normalise(text)
    if not text:
        raise ContentError("the answer is empty")
    if len(text) > MAX_TEXT:
        raise ContentError(f"the answer is {len(text)} characters long; the limit is {MAX_TEXT}")
    problems = first_line_problems(text)
    if problems:
        raise ContentError("; ".join(problems))
    used = placeholders(text)
    unknown = used - await _allowed_placeholders(session, key, seed)
    if unknown:
        names = ", ".join("{" + n + "}" for n in sorted(unknown))
        allowed = ", ".join("{" + n + "}" for n in sorted(await _allowed_placeholders(session, key, seed)))
        raise ContentError(f"unknown placeholder(s) {names}: this answer can use {allowed or 'none'}")
    return text


async def update_response(session: AsyncSession, key: str, lang: str, text: str, author: str, *,
                          seed: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Any]:
    """Save a new version of answer (key, lang) and return the new row. ContentError when refused.

    ``seed`` (the parsed seed file) defines the known keys and their placeholders; by default the
    configured ``CONTENT_DIR/responses.yml``. Saving the current text again changes nothing.
    """
    text = await check_response(session, key, lang, text, seed)
    row = await session.scalar(select(Response).where(Response.key == key, Response.lang == lang))
    if row is not None and row.text == text:
        return _row_dict(row)
    last = await session.scalar(select(func.max(ResponseVersion.version))
                                .where(ResponseVersion.key == key, ResponseVersion.lang == lang))
    version = max(row.version if row is not None else 0, last or 0) + 1
    now = utcnow()
    if row is None:
        row = Response(key=key, lang=lang)
        session.add(row)
    row.text, row.version, row.updated_by, row.updated_at = text, version, author, now
    session.add(ResponseVersion(key=key, lang=lang, version=version, text=text, author=author, created_at=now))
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise ContentError("someone else saved this answer at the same moment: reload and try again") from exc
    logger.info("answer %s/%s is now version %d (by %s)", key, lang, version, author)
    return _row_dict(row)


async def revert_response(session: AsyncSession, key: str, lang: str, version: int, author: str, *,
                          seed: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Any]:
    """Save a new version whose text is that of an earlier ``version``."""
    old = await session.scalar(select(ResponseVersion.text).where(
        ResponseVersion.key == key, ResponseVersion.lang == lang, ResponseVersion.version == version))
    if old is None:
        raise ContentError(f"answer {key}/{lang} has no version {version}")
    return await update_response(session, key, lang, old, author, seed=seed)


def _yaml_dumper() -> type[yaml.SafeDumper]:
    class Dumper(yaml.SafeDumper):
        pass

    def block(dumper: yaml.SafeDumper, data: _Block) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")

    Dumper.add_representer(_Block, block)
    return Dumper


class _Block(str):
    """A text written as a YAML literal block (``|-``)."""


_TOP_KEY = re.compile(r"^([^\s#'\"-][^:]*):\s*$")


def _layout(text: str) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """(keys in order, the comment and blank lines before each key, the lines after the last)."""
    order: list[str] = []
    before: dict[str, list[str]] = {}
    pending: list[str] = []
    for line in text.splitlines():
        match = _TOP_KEY.match(line)
        if match:
            key = match.group(1).strip()
            before[key], pending = pending, []
            order.append(key)
        elif line.startswith("#") or not line.strip():
            pending.append(line)
        else:
            pending = []  # a line of an answer: the blank lines before it were inside the text
    return order, before, pending


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dump_entry(key: str, texts: Mapping[str, str]) -> str:
    langs = [lang for lang in LANGS if lang in texts] + sorted(lang for lang in texts if lang not in LANGS)
    data = {key: {lang: _Block(texts[lang]) for lang in langs}}
    return yaml.dump(data, Dumper=_yaml_dumper(), allow_unicode=True, sort_keys=False, width=1_000_000,
                     default_flow_style=False).rstrip("\n")


def dump_seed(seed: Mapping[str, Mapping[str, str]], layout: str = "") -> str:
    """The YAML of a seed: texts as ``|-`` blocks, vi before en.

    ``layout`` is the current file: its key order and its comments (the header, section titles)
    are kept; keys it lacks come last, sorted. Without one, keys are sorted.
    """
    order, before, trailer = _layout(layout)
    out: list[str] = []
    for key in order:
        if key in seed:
            out.extend(before.get(key, []))
            out.append(_dump_entry(key, seed[key]))
    for key in sorted(k for k in seed if k not in set(order)):
        if out:
            out.append("")
        out.append(_dump_entry(key, seed[key]))
    out.extend(trailer)
    return "\n".join(out).rstrip("\n") + "\n"


async def export_responses(session: AsyncSession, path: Path | str) -> int:
    """Write the database's answers to the seed file (UTF-8, the file's order and comments kept).

    Answers only in the file are kept. Returns how many texts the file holds.
    """
    path = Path(path)
    layout, current = "", {}
    if path.exists():
        layout = path.read_text(encoding="utf-8")
        current = load_seed(path)
    merged: Seed = {k: dict(v) for k, v in current.items()}
    rows = (await session.execute(select(Response.key, Response.lang, Response.text))).all()
    for key, lang, text in rows:
        merged.setdefault(key, {})[lang] = text
    _write_atomically(path, dump_seed(merged, layout))
    return sum(len(v) for v in merged.values())


# ------------------------------------------------------------------------------------ safety phrases

async def seed_safety_phrases(session: AsyncSession, phrases: Iterable[Phrase]) -> int:
    """Insert the seed phrases when the table is empty (staff edits are never overwritten)."""
    if await session.scalar(select(SafetyPhrase.id).limit(1)) is not None:
        return 0
    seen: set[str] = set()
    now = utcnow()
    for p in phrases:
        if p.phrase in seen:
            continue
        seen.add(p.phrase)
        session.add(SafetyPhrase(phrase=p.phrase, priority=p.priority, reason=p.reason, updated_by=SEED_AUTHOR,
                                 updated_at=now))
    try:
        await session.commit()
    except IntegrityError:  # another replica seeded at the same moment
        await session.rollback()
        logger.info("safety phrases were seeded concurrently by another process")
        return 0
    if seen:
        logger.info("seeded %d safety phrases", len(seen))
    return len(seen)


async def list_safety_phrases(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.scalars(select(SafetyPhrase).order_by(SafetyPhrase.id))).all()
    return [{"phrase": r.phrase, "priority": r.priority, "reason": r.reason, "updated_by": r.updated_by,
             "updated_at": _iso(r.updated_at)} for r in rows]


async def replace_safety_phrases(session: AsyncSession, phrases: list[Phrase], author: str) -> int:
    """Replace the whole list (already validated with bot.safety.parse_phrases) in one transaction."""
    SafetyScreen(phrases)  # ValueError on anything the screen would refuse
    now = utcnow()
    try:
        await session.execute(delete(SafetyPhrase))
        for p in phrases:
            session.add(SafetyPhrase(phrase=p.phrase, priority=p.priority, reason=p.reason, updated_by=author,
                                     updated_at=now))
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    logger.info("safety phrases replaced: %d (by %s)", len(phrases), author)
    return len(phrases)


def _phrase_line(phrase: str, priority: str, reason: str) -> str:
    return (f"- {{phrase: {json.dumps(phrase, ensure_ascii=False)}, priority: {priority}, "
            f"reason: {json.dumps(reason, ensure_ascii=False)}}}")


def dump_safety_phrases(rows: Iterable[tuple[str, str, str]], layout: str = "") -> str:
    """The phrase file: one flow mapping per line; comments of ``layout`` stay above their phrase."""
    rows = list(rows)
    before: dict[str, list[str]] = {}
    order: list[str] = []
    pending: list[str] = []
    for line in layout.splitlines():
        if line.startswith("- "):
            try:
                entry = yaml.safe_load(line)[0]
                phrase = entry["phrase"]
            except (yaml.YAMLError, TypeError, KeyError, IndexError):
                pending = []
                continue
            before[phrase], pending = pending, []
            order.append(phrase)
        elif line.startswith("#") or not line.strip():
            pending.append(line)
        else:
            pending = []
    by_phrase = {r[0]: r for r in rows}
    out: list[str] = []
    for phrase in order:
        if phrase in by_phrase:
            out.extend(before[phrase])
            out.append(_phrase_line(*by_phrase.pop(phrase)))
    if by_phrase and out:
        out.append("")
    out.extend(_phrase_line(*r) for r in rows if r[0] in by_phrase)
    out.extend(pending)
    if not rows:
        out.append("[]")
    return "\n".join(out).rstrip("\n") + "\n"


async def export_safety_phrases(session: AsyncSession, path: Path | str) -> int:
    """Write the database's safety phrases back to their seed file. Returns how many."""
    path = Path(path)
    rows = (await session.execute(select(SafetyPhrase.phrase, SafetyPhrase.priority, SafetyPhrase.reason)
                                  .order_by(SafetyPhrase.id))).all()
    layout = path.read_text(encoding="utf-8") if path.exists() else ""
    _write_atomically(path, dump_safety_phrases([tuple(r) for r in rows], layout))
    return len(rows)


def _usable_phrases(rows: Iterable[tuple[str, str, str]]) -> list[Phrase]:
    phrases: list[Phrase] = []
    for phrase, priority, reason in rows:
        error = validate_phrase(phrase)
        if error or priority not in PRIORITIES:
            logger.error("safety phrase %r in the database skipped: %s", phrase, error or f"unknown priority {priority!r}")
            continue
        phrases.append(Phrase(phrase, priority, reason))
    return phrases


# ------------------------------------------------------------------------------------ the store

class ContentStore:
    """Answers and safety phrases for the running bot: database first, seed files as fallback.

    Nothing happens until the first call: the engine is created lazily (rasa-sdk imports every
    module of the actions package, and the gateway builds its app without I/O).
    """

    def __init__(self, database_url: str | None, seed_path: Path | str, safety_path: Path | str | None = None,
                 *, db_timeout: float = 3.0, retry_after: float = 2.0, safety_ttl: float = 5.0) -> None:
        self.database_url = database_url
        self.seed_path = Path(seed_path)
        self.safety_path = Path(safety_path) if safety_path else self.seed_path.parent / "safety_phrases.yml"
        self.db_timeout = db_timeout
        self.retry_after = retry_after
        self.safety_ttl = safety_ttl
        self._engine: AsyncEngine | None = None
        self._sessions: sessionmaker | None = None
        self._seed: Seed | None = None
        self._seed_phrases: list[Phrase] | None = None
        self._screen: SafetyScreen | None = None
        self._screen_at = 0.0
        self._screen_rows: list[tuple[str, str, str]] | None = None  # what the cached screen was built from
        self._down_until = 0.0

    # -- database

    def sessions(self) -> sessionmaker:
        """The async session factory (creates the engine on first use)."""
        if self._sessions is None:
            if not self.database_url:
                raise RuntimeError("no DATABASE_URL")
            from bot.db.session import async_engine, session_factory

            self._engine = async_engine(self.database_url)
            self._sessions = session_factory(self._engine)
        return self._sessions

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = self._sessions = None

    def _db_ready(self) -> bool:
        return bool(self.database_url) and time.monotonic() >= self._down_until

    def _db_failed(self, what: str, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self.retry_after
        logger.warning("content database unavailable for %s (%s: %s); answering from the seed files",
                       what, type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")

    async def _query(self, what: str, fn: Any) -> Any:
        """Run ``fn(session)`` with a timeout; None (and a cool-down) when the database fails."""
        if not self._db_ready():
            return None
        try:
            sessions = self.sessions()

            async def run() -> Any:
                async with sessions() as session:
                    return await fn(session)

            return await asyncio.wait_for(run(), timeout=self.db_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the bot must keep answering whatever the database does
            self._db_failed(what, exc)
            return None

    # -- answers

    def seed(self) -> Seed:
        """The seed answers, read once (the file changes only with a deployment)."""
        if self._seed is None:
            try:
                self._seed = load_seed(self.seed_path)
            except (OSError, ContentError) as exc:
                logger.error("cannot read the seed answers %s: %s", self.seed_path, exc)
                self._seed = {}
        return self._seed

    async def _rows(self, key: str, lang: str) -> dict[str, str]:
        async def fetch(session: AsyncSession) -> dict[str, str]:
            result = await session.execute(select(Response.lang, Response.text)
                                           .where(Response.key == key, Response.lang.in_({lang, DEFAULT_LANG})))
            return {row_lang: text for row_lang, text in result.all()}

        return await self._query("answers", fetch) or {}

    async def raw_text(self, key: str, lang: str) -> str | None:
        """The unfilled text of (key, lang): database, seed, then the Vietnamese text of either."""
        rows = await self._rows(key, lang)
        seed = self.seed().get(key, {})
        for candidate in (rows.get(lang), seed.get(lang), rows.get(DEFAULT_LANG), seed.get(DEFAULT_LANG)):
            if candidate:
                return candidate
        return None

    async def text(self, key: str, lang: str, **values: Any) -> str:
        """The answer (key, lang) with placeholders filled. Unknown keys answer ``utter_default``."""
        lang = lang if lang in LANGS else DEFAULT_LANG
        text = await self.raw_text(key, lang)
        if text is None and key != FALLBACK_KEY:
            logger.error("no answer %r in the database or the seed; sending %s", key, FALLBACK_KEY)
            text = await self.raw_text(FALLBACK_KEY, lang)
        if text is None:
            logger.error("no answer %r and no %s: nothing to send", key, FALLBACK_KEY)
            return ""
        return render(text, **values)

    # -- safety screen

    def _file_phrases(self) -> list[Phrase]:
        if self._seed_phrases is None:
            from bot.safety import load_phrases

            try:
                self._seed_phrases = load_phrases(self.safety_path)
            except (OSError, ValueError) as exc:
                logger.error("cannot read the seed safety phrases %s: %s", self.safety_path, exc)
                self._seed_phrases = []
        return self._seed_phrases

    async def safety_screen(self) -> SafetyScreen:
        """The screen over the phrases in the database (cached up to ``safety_ttl`` seconds);
        the seed file's phrases when the database is unavailable or has none."""
        now = time.monotonic()
        if self._screen is not None and now - self._screen_at < self.safety_ttl:
            return self._screen

        async def fetch(session: AsyncSession) -> list[tuple[str, str, str]]:
            result = await session.execute(select(SafetyPhrase.phrase, SafetyPhrase.priority, SafetyPhrase.reason)
                                           .order_by(SafetyPhrase.id))
            return [tuple(r) for r in result.all()]  # type: ignore[misc]

        rows = await self._query("safety phrases", fetch)
        if self._screen is not None and rows and rows == self._screen_rows:
            self._screen_at = time.monotonic()  # unchanged: compiling the screen again would cost ~15 ms
            return self._screen
        phrases = _usable_phrases(rows) if rows else []
        if not phrases:
            phrases = self._file_phrases()
        self._screen, self._screen_at, self._screen_rows = SafetyScreen(phrases), time.monotonic(), rows
        return self._screen

    def invalidate_safety_screen(self) -> None:
        """Forget the cached screen (after the phrases were edited through this process)."""
        self._screen = None
