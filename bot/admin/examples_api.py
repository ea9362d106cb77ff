"""Example questions and new topics: ``/api/content/intents`` and ``/api/content/changes``.

Changes are drafts until a publish trains, tests and loads a model with them (see
:mod:`bot.publish`); the pages show the accepted examples and the pending drafts side by side.
"""
from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import select

from bot.admin import examples
from bot.admin.state import error, json_body, publish_config_key
from bot.admin.training_data import DataError
from bot.auth import CONTENT, requires
from bot.db.models import ExampleChange
from bot.keys import gateway_key

logger = logging.getLogger(__name__)


def _paths(request: web.Request) -> tuple:
    cfg = request.app[publish_config_key]
    return cfg.root, cfg.heldout


async def list_intents(request: web.Request) -> web.Response:
    root, heldout = _paths(request)
    async with request.app[gateway_key].sessions() as session:
        data = await examples.overview(session, root, heldout)
    data["min_examples"] = request.app[publish_config_key].min_examples
    return web.json_response(data)


async def get_intent(request: web.Request) -> web.Response:
    root, heldout = _paths(request)
    async with request.app[gateway_key].sessions() as session:
        data = await examples.intent_detail(session, root, heldout, request.match_info["intent"])
    if data is None:
        return error(f"no intent {request.match_info['intent']!r}", 404)
    data["min_examples"] = request.app[publish_config_key].min_examples
    return web.json_response(data)


async def list_changes(request: web.Request) -> web.Response:
    state = request.query.get("state", "pending")
    async with request.app[gateway_key].sessions() as session:
        rows = (await session.scalars(select(ExampleChange).where(ExampleChange.state == state)
                                      .order_by(ExampleChange.id.desc()).limit(200))).all()
    return web.json_response({"changes": [examples.change_json(r) for r in rows]})


async def add_change(request: web.Request) -> web.Response:
    body = await json_body(request)
    root, heldout = _paths(request)
    async with request.app[gateway_key].sessions() as session:
        try:
            row = await examples.draft(session, root, heldout, request["account"], body.get("op"), body.get("intent"),
                                       body.get("text"), body.get("old_text"))
        except DataError as exc:
            return error(exc.message)
        return web.json_response({"change": examples.change_json(row)}, status=201)


async def add_topic(request: web.Request) -> web.Response:
    body = await json_body(request)
    root, heldout = _paths(request)
    cfg = request.app[publish_config_key]
    async with request.app[gateway_key].sessions() as session:
        try:
            row, warnings = await examples.draft_topic(session, root, heldout, request["account"], body.get("intent"),
                                                       body.get("title"), body.get("answers"), body.get("examples"),
                                                       cfg.min_examples)
        except DataError as exc:
            return error(exc.message)
        return web.json_response({"change": examples.change_json(row), "warnings": warnings}, status=201)


async def discard_change(request: web.Request) -> web.Response:
    try:
        change_id = int(request.match_info["id"])
    except ValueError:
        return error("no such change", 404)
    from bot.admin.state import publisher_key

    publisher = request.app[publisher_key]
    async with request.app[gateway_key].sessions() as session:
        active = await publisher.active_job(session)
        protected = set((active.progress or {}).get("changes") or []) if active is not None else set()
        try:
            row = await examples.discard(session, request["account"], change_id, protected)
        except LookupError as exc:
            return error(str(exc), 404)
        except PermissionError as exc:
            return error(str(exc), 409)
        return web.json_response({"change": examples.change_json(row)})


def setup(app: web.Application) -> None:
    guard = requires(*CONTENT)
    app.router.add_get("/api/content/intents", guard(list_intents), name="admin_intents")
    app.router.add_get("/api/content/intents/{intent}", guard(get_intent), name="admin_intent")
    app.router.add_get("/api/content/changes", guard(list_changes), name="admin_changes")
    app.router.add_post("/api/content/changes", guard(add_change), name="admin_change_add")
    app.router.add_delete("/api/content/changes/{id}", guard(discard_change), name="admin_change_discard")
    app.router.add_post("/api/content/topics", guard(add_topic), name="admin_topic_add")
