"""Security headers for the console pages and the JSON API: a strict CSP without inline scripts,
no framing, and no caching of API answers (they carry personal data)."""
from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiohttp import web

from bot.console.pages import MAP_ORIGIN

logger = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
}
API = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def console_csp(request: web.Request) -> str:
    host = request.host
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' ws://{host} wss://{host}; frame-src {MAP_ORIGIN}; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")


def _apply(request: web.Request, response: web.StreamResponse) -> None:
    if response.prepared:  # a WebSocket or a streamed answer: its headers are already sent
        return
    path = request.path
    if path.startswith("/api/"):
        response.headers.update(COMMON)
        response.headers.update(API)
    elif path == "/console" or path.startswith("/console/"):
        response.headers.update(COMMON)
        response.headers["Content-Security-Policy"] = console_csp(request)
        response.headers["Referrer-Policy"] = "strict-origin"
        response.headers.setdefault("Cache-Control", "no-cache")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _apply(request, exc)
        raise
    _apply(request, response)
    return response
