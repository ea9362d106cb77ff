"""Answers and safety phrases: ``/api/content/…`` (content editors and admins).

Answers: list and search, preview (checks and diff, nothing saved), save a new version, history
with diffs, revert to an earlier version in one step. The action server and the gateway read the
answers from the database on every message, so a saved answer is in the very next reply.

Safety phrases: the whole list is read and replaced at once (checked by
:func:`bot.safety.parse_phrases`); every replacement is a numbered version in the audit log
(``safety_phrases``: what was added, removed and changed, and the full list before and after), so
the list can be restored to any version. The gateway's cached screen is invalidated at once; the
action server's cache expires within 5 s. The test box (``/safety-check``) runs the screen on a
sentence, with the saved list or with a draft list sent along.
"""
from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy import desc, select

from bot import content
from bot.admin.state import error, json_body
from bot.auth import CONTENT, audit, requires
from bot.db.models import Account, AuditEntry, Response
from bot.keys import gateway_key
from bot.publish import iso_time
from bot.safety import SafetyScreen, as_dict, parse_phrases

logger = logging.getLogger(__name__)

MAX_CHECK_TEXT = 5000
SAFETY_ACTION = "safety_phrases"


def preview(text: str) -> dict[str, str]:
    """What a phone's notification shows of an answer, and its first line."""
    return content.notification_preview(text)


def _seed(request: web.Request) -> dict[str, dict[str, str]]:
    return request.app[gateway_key].content.seed()


async def _known(session: Any, request: web.Request, key: str) -> bool:
    if key in _seed(request):
        return True
    return await session.scalar(select(Response.id).where(Response.key == key).limit(1)) is not None


def _row(row: Response | None) -> dict[str, Any] | None:
    return content.response_json(row) if row is not None else None


async def _current(session: Any, key: str, lang: str) -> Response | None:
    return await session.scalar(select(Response).where(Response.key == key, Response.lang == lang))


# ------------------------------------------------------------------------------------ answers

async def list_responses(request: web.Request) -> web.Response:
    q = request.query.get("q")
    async with request.app[gateway_key].sessions() as session:
        rows = await content.list_responses(session, q)
    return web.json_response({"responses": rows, "total": len(rows)})


async def get_response(request: web.Request) -> web.Response:
    key, lang = request.match_info["key"], request.match_info["lang"]
    async with request.app[gateway_key].sessions() as session:
        if not await _known(session, request, key) or lang not in content.LANGS:
            return error(f"no answer {key}/{lang}", 404)
        row = await _current(session, key, lang)
        allowed = await content.allowed_placeholders(session, key, _seed(request))
    out = _row(row) or {"key": key, "lang": lang, "text": "", "version": 0}
    out["placeholders"] = sorted(allowed)
    out["preview"] = preview(out["text"]) if out["text"] else None
    return web.json_response(out)


async def preview_response(request: web.Request) -> web.Response:
    """Check a text as a save would, show the notification preview and the diff; save nothing."""
    body = await json_body(request)
    key, lang, text = body.get("key"), body.get("lang"), body.get("text")
    if not isinstance(key, str) or not isinstance(lang, str) or not isinstance(text, str):
        return error("send {key, lang, text}")
    async with request.app[gateway_key].sessions() as session:
        if not await _known(session, request, key):
            return error(f"no answer {key}", 404)
        row = await _current(session, key, lang)
        old = row.text if row else ""
        try:
            checked = await content.check_response(session, key, lang, text, seed=_seed(request))
            problem = None
        except content.ContentError as exc:
            checked, problem = text, exc.message
    return web.json_response({"ok": problem is None, "error": problem, "text": checked, "preview": preview(checked),
                              "rendered": checked, "diff": content.diff(old, checked),
                              "version": row.version if row else 0, "length": len(checked),
                              "max_length": content.MAX_TEXT})


async def put_response(request: web.Request) -> web.Response:
    key, lang = request.match_info["key"], request.match_info["lang"]
    body = await json_body(request)
    text, base = body.get("text"), body.get("version")
    if not isinstance(text, str):
        return error("send {text}")
    account: Account = request["account"]
    async with request.app[gateway_key].sessions() as session:
        if not await _known(session, request, key):
            return error(f"no answer {key}", 404)
        row = await _current(session, key, lang)
        old_text, old_version = (row.text, row.version) if row else ("", 0)
        if base is not None and row is not None and base != row.version:
            return error(f"this answer was changed meanwhile (now version {row.version}, by {row.updated_by}); "
                         "reload it and apply your change again", 409, current=_row(row))
        try:
            saved = await content.update_response(session, key, lang, text, account.username, seed=_seed(request))
        except content.ContentError as exc:
            return error(exc.message)
        if saved["version"] != old_version:
            await audit(session, account, "answer_saved", f"{key}/{lang}",
                        {"version": saved["version"], "previous_version": old_version})
            await session.commit()
    saved.update(diff=content.diff(old_text, saved["text"]), previous_version=old_version,
                 preview=preview(saved["text"]))
    return web.json_response(saved)


async def revert_response(request: web.Request) -> web.Response:
    key, lang = request.match_info["key"], request.match_info["lang"]
    body = await json_body(request)
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        return error("send {version} (a number from the history)")
    account: Account = request["account"]
    async with request.app[gateway_key].sessions() as session:
        if not await _known(session, request, key):
            return error(f"no answer {key}", 404)
        row = await _current(session, key, lang)
        old_text, old_version = (row.text, row.version) if row else ("", 0)
        try:
            saved = await content.revert_response(session, key, lang, version, account.username, seed=_seed(request))
        except content.ContentError as exc:
            status = 404 if "has no version" in exc.message else 400
            return error(exc.message, status)
        await audit(session, account, "answer_reverted", f"{key}/{lang}",
                    {"to_version": version, "version": saved["version"], "previous_version": old_version})
        await session.commit()
    saved.update(diff=content.diff(old_text, saved["text"]), previous_version=old_version, reverted_to=version,
                 preview=preview(saved["text"]))
    return web.json_response(saved)


async def response_history(request: web.Request) -> web.Response:
    key, lang = request.match_info["key"], request.match_info["lang"]
    async with request.app[gateway_key].sessions() as session:
        if not await _known(session, request, key):
            return error(f"no answer {key}", 404)
        versions = await content.history(session, key, lang)
        row = await _current(session, key, lang)
    # newest first; each version's diff is against the one before it
    for i, v in enumerate(versions):
        older = versions[i + 1]["text"] if i + 1 < len(versions) else ""
        v["diff"] = content.diff(older, v["text"])
        v["current"] = row is not None and v["version"] == row.version
    return web.json_response({"key": key, "lang": lang, "version": row.version if row else 0, "versions": versions})


# ------------------------------------------------------------------------------------ safety phrases

def _phrase_tuples(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"phrase": r["phrase"], "priority": r["priority"], "reason": r["reason"]} for r in rows]


async def _phrase_versions(session: Any) -> list[AuditEntry]:
    return list((await session.scalars(select(AuditEntry).where(AuditEntry.action == SAFETY_ACTION)
                                       .order_by(desc(AuditEntry.id)))).all())


def _compare(before: list[dict[str, str]], after: list[dict[str, str]]) -> dict[str, list[Any]]:
    old = {p["phrase"]: p for p in before}
    new = {p["phrase"]: p for p in after}
    return {"added": [p for p in after if p["phrase"] not in old],
            "removed": [p for p in before if p["phrase"] not in new],
            "changed": [{"phrase": k, "before": old[k], "after": new[k]} for k in new
                        if k in old and (old[k]["priority"], old[k]["reason"]) != (new[k]["priority"], new[k]["reason"])]}


async def get_phrases(request: web.Request) -> web.Response:
    async with request.app[gateway_key].sessions() as session:
        rows = await content.list_safety_phrases(session)
        versions = await _phrase_versions(session)
    current = (versions[0].detail or {}).get("version", 0) if versions else 0
    return web.json_response({"phrases": rows, "count": len(rows), "version": current,
                              "priorities": ["emergency", "at_risk"]})


async def _save_phrases(request: web.Request, entries: Any, base: Any, note: dict[str, Any]) -> web.Response:
    if not isinstance(entries, list):
        return error("send {phrases: [{phrase, priority, reason}, ...]}")
    if not entries:
        return error("the list is empty: the screen would have no phrases of its own")
    account: Account = request["account"]
    gw = request.app[gateway_key]
    async with gw.sessions() as session:
        versions = await _phrase_versions(session)
        current = (versions[0].detail or {}).get("version", 0) if versions else 0
        if base is not None and base != current:
            return error(f"the phrases were changed meanwhile (now version {current}); reload and apply your "
                         "change again", 409, version=current)
        try:
            phrases = parse_phrases(entries, source="phrases")
        except ValueError as exc:
            return error(str(exc))
        before = _phrase_tuples(await content.list_safety_phrases(session))
        after = [{"phrase": p.phrase, "priority": p.priority, "reason": p.reason} for p in phrases]
        diff = _compare(before, after)
        if before == after:
            return web.json_response({"version": current, "count": len(after), "unchanged": True, **diff})
        try:
            await content.replace_safety_phrases(session, phrases, account.username)
        except ValueError as exc:
            return error(str(exc))
        version = current + 1
        await audit(session, account, SAFETY_ACTION, f"version {version}",
                    {"version": version, **diff, **note, "phrases": after, "previous": before})
        await session.commit()
    gw.content.invalidate_safety_screen()
    logger.info("safety phrases version %d saved: %d added, %d removed, %d changed", version, len(diff["added"]),
                len(diff["removed"]), len(diff["changed"]))
    return web.json_response({"version": version, "count": len(after), **diff})


async def put_phrases(request: web.Request) -> web.Response:
    body = await json_body(request)
    return await _save_phrases(request, body.get("phrases"), body.get("version"), {})


async def phrases_history(request: web.Request) -> web.Response:
    async with request.app[gateway_key].sessions() as session:
        versions = await _phrase_versions(session)
        names = {a.id: a.username for a in (await session.scalars(select(Account))).all()}
    out = []
    for entry in versions:
        d = entry.detail or {}
        out.append({"version": d.get("version"), "at": iso_time(entry.at), "author": names.get(entry.account_id),
                    "added": d.get("added", []), "removed": d.get("removed", []), "changed": d.get("changed", []),
                    "count": len(d.get("phrases") or []), "reverted_to": d.get("reverted_to")})
    return web.json_response({"versions": out})


async def revert_phrases(request: web.Request) -> web.Response:
    """Restore the list of an earlier version (0: the list before the first recorded change)."""
    body = await json_body(request)
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        return error("send {version} (a number from the history)")
    async with request.app[gateway_key].sessions() as session:
        versions = await _phrase_versions(session)
    by_version = {(v.detail or {}).get("version"): v.detail or {} for v in versions}
    if version == 0 and 1 in by_version:
        entries = by_version[1].get("previous")
    elif version in by_version:
        entries = by_version[version].get("phrases")
    else:
        return error(f"no version {version} of the safety phrases", 404)
    return await _save_phrases(request, entries, None, {"reverted_to": version})


async def safety_check(request: web.Request) -> web.Response:
    body = await json_body(request)
    text = body.get("text")
    if not isinstance(text, str):
        return error("send {text}")
    if len(text) > MAX_CHECK_TEXT:
        return error(f"at most {MAX_CHECK_TEXT} characters")
    draft = body.get("phrases")
    if draft is not None:
        if not isinstance(draft, list):
            return error("phrases must be a list of {phrase, priority, reason}")
        try:
            screen = SafetyScreen(parse_phrases(draft, source="phrases"))
        except ValueError as exc:
            return error(str(exc))
        source = "draft"
    else:
        screen = await request.app[gateway_key].content.safety_screen()
        source = "saved"
    return web.json_response({**as_dict(screen.check(text)), "phrases": source})


def setup(app: web.Application) -> None:
    guard = requires(*CONTENT)
    app.router.add_get("/api/content/responses", guard(list_responses), name="admin_responses")
    app.router.add_post("/api/content/preview", guard(preview_response), name="admin_preview")
    app.router.add_get("/api/content/responses/{key}/{lang}", guard(get_response), name="admin_response")
    app.router.add_put("/api/content/responses/{key}/{lang}", guard(put_response), name="admin_response_put")
    app.router.add_post("/api/content/responses/{key}/{lang}/revert", guard(revert_response),
                        name="admin_response_revert")
    app.router.add_get("/api/content/responses/{key}/{lang}/history", guard(response_history),
                       name="admin_response_history")
    app.router.add_get("/api/content/safety-phrases", guard(get_phrases), name="admin_phrases")
    app.router.add_put("/api/content/safety-phrases", guard(put_phrases), name="admin_phrases_put")
    app.router.add_get("/api/content/safety-phrases/history", guard(phrases_history), name="admin_phrases_history")
    app.router.add_post("/api/content/safety-phrases/revert", guard(revert_phrases), name="admin_phrases_revert")
    app.router.add_post("/api/content/safety-check", guard(safety_check), name="admin_safety_check")
