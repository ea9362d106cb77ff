"""The console page (`/console`) and its static files (plain JavaScript and CSS, no build step)."""
from __future__ import annotations

import logging

from aiohttp import web

from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)
STATIC = PROJECT_ROOT / "bot" / "static" / "console"
MAP_ORIGIN = "https://www.openstreetmap.org"


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html; charset=utf-8",
                                                            "Cache-Control": "no-store"})


async def redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console")


def setup(app: web.Application) -> None:
    app.router.add_get("/console", page, name="console")
    app.router.add_get("/console/", redirect, name="console_slash")
    app.router.add_static("/console/static/", STATIC, name="console_static", show_index=False,
                          follow_symlinks=False)
