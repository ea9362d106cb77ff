"""Drafts of example-question changes: stored as rows, checked against the training data.

A draft is checked when it is written, against the repository's files with every earlier pending
draft applied: the example must be a new, well-formed question, not already taught to another
intent and not a message of the held-out test set. The minimum number of examples per intent is
checked at publish time (a topic is drafted one question at a time).
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import content
from bot.admin.training_data import (
    Change,
    DataError,
    TrainingFiles,
    check_topic_name,
    clean_example,
    clean_title,
    distinct_count,
    example_problems,
    hand_written,
    load_heldout,
    twin,
)
from bot.db.models import Account, ExampleChange, utcnow
from bot.publish import iso_time
from bot.text import has_diacritics

logger = logging.getLogger(__name__)

MAX_TOPIC_EXAMPLES = 200


def change_json(row: ExampleChange, error: str | None = None) -> dict[str, Any]:
    return {"id": row.id, "op": row.op, "intent": row.intent, "text": row.text, "old_text": row.old_text,
            "detail": row.detail, "state": row.state, "publish_job_id": row.publish_job_id,
            "created_by": row.created_by, "created_at": iso_time(row.created_at), "error": error}


def to_change(row: ExampleChange) -> Change:
    return Change(row.op, row.intent, row.text, row.old_text, row.detail, row.id)


async def pending_rows(session: AsyncSession) -> list[ExampleChange]:
    return list((await session.scalars(select(ExampleChange).where(ExampleChange.state == "pending")
                                       .order_by(ExampleChange.id))).all())


def effective(files: TrainingFiles, rows: list[ExampleChange]) -> dict[int, str]:
    """Apply the pending drafts in order (in memory); the ones that no longer apply are skipped
    and returned with the reason (the publish will refuse them until they are discarded)."""
    errors: dict[int, str] = {}
    for row in rows:
        try:
            files.apply(to_change(row))
        except DataError as exc:
            errors[row.id] = exc.message
    return errors


async def _load(root: Path, heldout: Path) -> tuple[TrainingFiles, set[str]]:
    files = await asyncio.to_thread(TrainingFiles.load, root)
    held = await asyncio.to_thread(load_heldout, heldout)
    return files, held


async def overview(session: AsyncSession, root: Path, heldout: Path) -> dict[str, Any]:
    """Every intent with its number of examples (accepted, and with the pending drafts)."""
    accepted = await asyncio.to_thread(TrainingFiles.load, root)
    rows = await pending_rows(session)
    drafted = accepted.copy()
    errors = effective(drafted, rows)
    now = drafted.examples()
    before = accepted.examples()
    domain = accepted.domain_intents()
    new = [r.intent for r in rows if r.op == "add_topic" and r.id not in errors]
    intents = []
    for name in domain + [n for n in new if n not in domain]:
        intents.append({"name": name, "topic": name.startswith("faq_"), "answer_key": f"utter_{name}",
                        "examples": distinct_count(before.get(name, [])),
                        "examples_after": distinct_count(now.get(name, [])),
                        "pending": sum(1 for r in rows if r.intent == name), "new": name not in domain})
    return {"intents": intents, "pending": [change_json(r, errors.get(r.id)) for r in rows]}


async def intent_detail(session: AsyncSession, root: Path, heldout: Path, intent: str) -> dict[str, Any] | None:
    """The hand-written examples of one intent (the twins are implied) and its pending drafts."""
    accepted = await asyncio.to_thread(TrainingFiles.load, root)
    rows = await pending_rows(session)
    drafted = accepted.copy()
    errors = effective(drafted, rows)
    before = accepted.examples().get(intent)
    after = drafted.examples().get(intent)
    if before is None and after is None:
        return None
    texts = hand_written(before or [])
    twins = {twin(t) for t in texts if has_diacritics(t)}
    present = set(before or [])
    return {"intent": intent, "new": before is None, "answer_key": f"utter_{intent}",
            "examples": [{"text": t, "twin": twin(t) if twin(t) in present else None} for t in texts],
            "count": distinct_count(before or []), "count_after": distinct_count(after or []),
            "twins": len([t for t in before or [] if t in twins]),
            "drafted": hand_written(after or []),
            "pending": [change_json(r, errors.get(r.id)) for r in rows if r.intent == intent]}


async def draft(session: AsyncSession, root: Path, heldout: Path, account: Account, op: str, intent: Any,
                text: Any = None, old_text: Any = None) -> ExampleChange:
    """Store one add / edit / remove draft; DataError says why it cannot be."""
    if op not in ("add", "edit", "remove"):
        raise DataError("op must be add, edit or remove")
    if not isinstance(intent, str) or not intent:
        raise DataError("name the intent")
    new_text = clean_example(text) if op in ("add", "edit") else None
    old = clean_example(old_text) if op in ("edit", "remove") else None
    files, held = await _load(root, heldout)
    rows = await pending_rows(session)
    effective(files, rows)
    change = Change(op, intent, new_text, old)
    probe = files.copy()
    probe.apply(change)
    if new_text is not None:
        problems = example_problems(files, intent, new_text, held, ignore=old)
        if problems:
            raise DataError("; ".join(problems))
    row = ExampleChange(op=op, intent=intent, text=new_text, old_text=old, state="pending",
                        created_by=account.username, created_at=utcnow())
    session.add(row)
    await session.flush()
    from bot.auth import audit

    await audit(session, account, "example_drafted", intent, {"change": row.id, "op": op})
    await session.commit()
    return row


async def draft_topic(session: AsyncSession, root: Path, heldout: Path, account: Account, intent: Any,
                      title: Any, answers: Any, examples: Any,
                      min_examples: int = 10) -> tuple[ExampleChange, list[str]]:
    """Store a new FAQ topic (examples and answers); returns the row and warnings."""
    intent = check_topic_name(intent)
    title = clean_title(title)
    if not isinstance(examples, list) or not examples:
        raise DataError("give the new topic's example questions (one per line)")
    if len(examples) > MAX_TOPIC_EXAMPLES:
        raise DataError(f"at most {MAX_TOPIC_EXAMPLES} examples at once")
    texts = [clean_example(t) for t in examples if not (isinstance(t, str) and not t.strip())]
    if not isinstance(answers, dict):
        raise DataError("give the answer in Vietnamese (vi) and English (en)")
    key = f"utter_{intent}"
    checked: dict[str, str] = {}
    for lang in content.LANGS:
        try:
            checked[lang] = await content.check_response(session, key, lang, answers.get(lang, ""), seed={key: {}})
        except content.ContentError as exc:
            raise DataError(f"answer ({lang}): {exc.message}") from exc
    if await session.scalar(select(ExampleChange.id).where(ExampleChange.state == "pending",
                                                           ExampleChange.op == "add_topic",
                                                           ExampleChange.intent == intent)):
        raise DataError(f"a new topic {intent} is already waiting to be published")
    files, held = await _load(root, heldout)
    rows = await pending_rows(session)
    effective(files, rows)
    change = Change("add_topic", intent, detail={"title": title, "examples": texts, "answers": checked})
    probe = files.copy()
    probe.apply(change)
    problems = [p for t in texts for p in example_problems(files, intent, t, held)]
    if problems:
        raise DataError("; ".join(problems[:5]))
    row = ExampleChange(op="add_topic", intent=intent, detail=dict(change.detail or {}), state="pending",
                        created_by=account.username, created_at=utcnow())
    session.add(row)
    await session.flush()
    from bot.auth import audit

    await audit(session, account, "topic_drafted", intent, {"change": row.id, "examples": len(texts)})
    await session.commit()
    n = distinct_count(probe.examples().get(intent, []))
    warnings = [f"{intent} has {n} different example questions; a publish needs at least {min_examples}"] \
        if n < min_examples else []
    return row, warnings


async def discard(session: AsyncSession, account: Account, change_id: int, protected: set[int]) -> ExampleChange:
    """Discard a pending draft (not one that a running publish is using)."""
    row = await session.get(ExampleChange, change_id)
    if row is None or row.state != "pending":
        raise LookupError(f"no pending change {change_id}")
    if change_id in protected:
        raise PermissionError("this change is part of the publish that is running")
    row.state, row.decided_by, row.decided_at = "discarded", account.username, utcnow()
    from bot.auth import audit

    await audit(session, account, "example_discarded", row.intent, {"change": row.id, "op": row.op})
    await session.commit()
    return row
