"""Typed keys of the content admin's state in the aiohttp application, and request helpers."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from bot.publish import Publisher, PublishConfig

publish_config_key: web.AppKey["PublishConfig"] = web.AppKey("publish_config")
publisher_key: web.AppKey["Publisher"] = web.AppKey("publisher")

MAX_JSON_BYTES = 256 * 1024


def error(message: str, status: int = 400, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; HTTPBadRequest (JSON) when it is not one."""
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "send a JSON object"}', content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "send a JSON object"}', content_type="application/json")
    return body
