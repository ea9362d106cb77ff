"""Publishing: ``/api/publish`` (start, follow, list), the models kept for rollback, rollback."""
from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import select

from bot.admin.state import error, json_body, publisher_key
from bot.auth import CONTENT, requires
from bot.db.models import PublishJob
from bot.keys import gateway_key
from bot.publish import NothingToPublish, PublishBusy, StepFailed, job_json

logger = logging.getLogger(__name__)


async def start(request: web.Request) -> web.Response:
    publisher = request.app[publisher_key]
    try:
        job_id = await publisher.start(request["account"])
    except PublishBusy as exc:
        return error(f"a publish is already running (#{exc.job_id}); wait for it to finish", 409, id=exc.job_id)
    except NothingToPublish:
        return error("there are no pending changes to publish")
    return web.json_response({"id": job_id, "state": "queued"}, status=202,
                             headers={"Location": f"/api/publish/{job_id}"})


async def get_job(request: web.Request) -> web.Response:
    try:
        job_id = int(request.match_info["id"])
    except ValueError:
        return error("no such publish", 404)
    async with request.app[gateway_key].sessions() as session:
        row = await session.get(PublishJob, job_id)
        if row is None:
            return error("no such publish", 404)
        return web.json_response(job_json(row))


async def list_jobs(request: web.Request) -> web.Response:
    publisher = request.app[publisher_key]
    async with request.app[gateway_key].sessions() as session:
        rows = (await session.scalars(select(PublishJob).order_by(PublishJob.id.desc()).limit(20))).all()
        active = await publisher.active_job(session)
    return web.json_response({"jobs": [job_json(r) for r in rows], "active": active.id if active else None})


async def models(request: web.Request) -> web.Response:
    return web.json_response(await request.app[publisher_key].models())


async def rollback(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        result = await request.app[publisher_key].rollback(body.get("model"), request["account"])
    except FileNotFoundError as exc:
        return error(str(exc).strip("'\""), 404)
    except PublishBusy as exc:
        return error(f"a publish is running (#{exc.job_id}); roll back when it has finished", 409, id=exc.job_id)
    except StepFailed as exc:
        return error(exc.message, 502)
    return web.json_response(result)


def setup(app: web.Application) -> None:
    guard = requires(*CONTENT)
    app.router.add_post("/api/publish", guard(start), name="admin_publish")
    app.router.add_get("/api/publish", guard(list_jobs), name="admin_publish_list")
    app.router.add_get("/api/publish/models", guard(models), name="admin_publish_models")
    app.router.add_post("/api/publish/rollback", guard(rollback), name="admin_publish_rollback")
    app.router.add_get("/api/publish/{id:\\d+}", guard(get_job), name="admin_publish_job")
