"""The counselor console: the live queue, the conversation view, the supervisor view, their JSON
API under /api/ and the live WebSocket. `setup(app)` is called by bot.app.create_app."""
from __future__ import annotations

import logging

from aiohttp import web

logger = logging.getLogger(__name__)


def setup(app: web.Application) -> None:
    from bot import auth
    from bot.console import conversation_api, live_ws, pages, queue_api, reply_api, supervisor_api
    from bot.console.security import security_headers
    from bot.console.state import close_all, sockets_key, tasks_key

    app.middlewares.append(security_headers)
    if "api_login" not in app.router.named_resources():  # sign-in may already be set up by the admin
        auth.setup(app)
    queue_api.setup(app)
    conversation_api.setup(app)
    reply_api.setup(app)
    supervisor_api.setup(app)
    live_ws.setup(app)
    pages.setup(app)
    app[sockets_key] = set()
    app[tasks_key] = set()
    app.on_shutdown.append(close_all)
