"""The content admin: answers, example questions and publishing, safety phrases, the agency
registry — the pages under ``/admin`` and their JSON API under ``/api/content``, ``/api/publish``
and ``/api/agencies``. ``setup(app)`` is called by :func:`bot.app.create_app`; nothing here does
I/O at import or set-up (the publisher is made when the app starts)."""
from __future__ import annotations

import logging
from typing import AsyncIterator

from aiohttp import web

logger = logging.getLogger(__name__)


async def _publisher_ctx(app: web.Application) -> AsyncIterator[None]:
    from bot.admin.state import publish_config_key, publisher_key
    from bot.keys import gateway_key
    from bot.publish import Publisher

    gw = app[gateway_key]
    publisher = Publisher(app[publish_config_key], gw.sessions, gw.http, gw.worker_id)
    await publisher.recover()
    app[publisher_key] = publisher
    try:
        yield
    finally:
        await publisher.close()


def setup(app: web.Application) -> None:
    from bot import auth
    from bot.admin import agencies_api, content_api, examples_api, pages, publish_api
    from bot.admin.state import publish_config_key
    from bot.keys import settings_key
    from bot.publish import PublishConfig

    if "api_login" not in app.router.named_resources():  # the console may have set sign-in up already
        auth.setup(app)
    app[publish_config_key] = PublishConfig.from_settings(app[settings_key])
    app.middlewares.append(pages.admin_headers)
    content_api.setup(app)
    examples_api.setup(app)
    publish_api.setup(app)
    agencies_api.setup(app)
    pages.setup(app)
    app.cleanup_ctx.append(_publisher_ctx)
