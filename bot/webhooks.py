"""Webhook endpoints: verify on the raw body, parse, store, answer 200 — never waiting on Rasa."""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from aiohttp import web

from bot import inbox
from bot.keys import gateway_key
from channels import messenger, zalo

logger = logging.getLogger(__name__)


async def messenger_verify(request: web.Request) -> web.Response:
    token = request.app[gateway_key].settings.messenger_verify_token
    challenge = messenger.verify_challenge(request.query, token) if token else None
    if challenge is None:
        return web.Response(status=403, text="verification failed")
    return web.Response(text=challenge)


async def _receive(request: web.Request, channel: str, verify: Callable[[bytes], bool],
                   parse: Callable[[Any], list]) -> web.Response:
    gw = request.app[gateway_key]
    started = time.perf_counter()
    raw = await request.read()  # over the size limit: aiohttp answers 413
    if not verify(raw):
        gw.metrics.inc("webhook_rejected_total", channel=channel, why="signature")
        logger.warning("%s webhook with a missing or wrong signature refused", channel)
        return web.json_response({"error": "invalid signature"}, status=403)
    try:
        events = parse(json.loads(raw))
    except (ValueError, UnicodeDecodeError):
        gw.metrics.inc("webhook_rejected_total", channel=channel, why="malformed")
        return web.json_response({"error": "malformed body"}, status=400)
    if events:
        await inbox.store(gw, events)
    gw.metrics.observe("webhook_ack_seconds", time.perf_counter() - started, channel=channel)
    return web.Response(text="EVENT_RECEIVED")


async def messenger_receive(request: web.Request) -> web.Response:
    settings = request.app[gateway_key].settings
    if not settings.messenger_app_secret:
        return web.json_response({"error": "the Messenger channel is not configured"}, status=404)
    return await _receive(request, "messenger",
                          lambda raw: messenger.verify_signature(settings.messenger_app_secret, raw, request.headers),
                          messenger.parse_webhook)


async def zalo_receive(request: web.Request) -> web.Response:
    settings = request.app[gateway_key].settings
    if not (settings.zalo_app_id and settings.zalo_oa_secret_key):
        return web.json_response({"error": "the Zalo channel is not configured"}, status=404)
    return await _receive(request, "zalo",
                          lambda raw: zalo.verify_signature(raw, request.headers.get("X-ZEvent-Signature"),
                                                            settings.zalo_app_id, settings.zalo_oa_secret_key),
                          zalo.parse_webhook)


def setup(app: web.Application) -> None:
    app.router.add_get("/webhooks/messenger", messenger_verify, name="messenger_verify")
    app.router.add_post("/webhooks/messenger", messenger_receive, name="messenger_receive")
    app.router.add_post("/webhooks/zalo", zalo_receive, name="zalo_receive")
