"""The content admin page (``/admin``) and its static files (plain HTML, CSS and JavaScript, no
build step, nothing from a CDN), with a strict Content-Security-Policy (no inline scripts)."""
from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiohttp import web

from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)
STATIC = PROJECT_ROOT / "bot" / "static" / "admin"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_PREFIXES = ("/api/content/", "/api/publish", "/api/agencies")

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
}
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")
API_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
               "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}


def _apply(request: web.Request, response: web.StreamResponse) -> None:
    if response.prepared:
        return
    path = request.path
    if path == "/admin" or path.startswith("/admin/"):
        response.headers.update(COMMON)
        response.headers["Content-Security-Policy"] = PAGE_CSP
        response.headers["Referrer-Policy"] = "strict-origin"
        response.headers.setdefault("Cache-Control", "no-cache")
    elif path.startswith(API_PREFIXES):
        response.headers.update(COMMON)
        response.headers.update(API_HEADERS)


@web.middleware
async def admin_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _apply(request, exc)
        raise
    _apply(request, response)
    return response


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html; charset=utf-8",
                                                            "Cache-Control": "no-store"})


async def redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/admin")


def setup(app: web.Application) -> None:
    app.router.add_get("/admin", page, name="admin")
    app.router.add_get("/admin/", redirect, name="admin_slash")
    app.router.add_static("/admin/static/", STATIC, name="admin_static", show_index=False, follow_symlinks=False)
