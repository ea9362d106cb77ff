"""Typed keys of the aiohttp application's state."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bot.gateway import Gateway
    from bot.settings import Settings

settings_key: web.AppKey["Settings"] = web.AppKey("settings")
gateway_key: web.AppKey["Gateway"] = web.AppKey("gateway")
