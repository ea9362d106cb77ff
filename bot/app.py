"""The aiohttp application: `create_app(settings)` builds it without I/O; the database, HTTP
client, channel clients and background loops live in a cleanup context."""
from __future__ import annotations

import html
import logging
import re
from typing import AsyncIterator

import aiohttp
from aiohttp import web

from bot.keys import gateway_key, settings_key
from bot.settings import Settings

logger = logging.getLogger(__name__)
SHUTDOWN_TIMEOUT_S = 15.0  # in-flight requests finish within this after SIGTERM (systemd waits longer)


async def _gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    from bot.bootstrap import prepare_database
    from bot.content import ContentStore
    from bot.db.session import async_engine, session_factory
    from bot.gateway import Gateway
    from bot.rasa_client import RasaClient
    from bot.senders import MessengerSender, ZaloSender
    from channels.messenger import MessengerClient
    from channels.tokens import DbTokenStore, Tokens
    from channels.zalo import ZaloClient

    settings = app[settings_key]
    if settings.auto_migrate:
        logger.info(await prepare_database(settings))
    engine = async_engine(settings.database_url)
    sessions = session_factory(engine)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    content = ContentStore(settings.database_url, settings.content_dir / "responses.yml")
    gw = Gateway(settings=settings, engine=engine, sessions=sessions, http=http,
                 rasa=RasaClient(http, settings.rasa_url, settings.rasa_token), content=content)
    if settings.messenger_enabled:
        gw.senders["messenger"] = MessengerSender(
            MessengerClient(http, settings.messenger_graph_url, settings.messenger_page_access_token))
    if settings.zalo_app_id and settings.zalo_access_token:
        tokens = DbTokenStore(sessions, "zalo", Tokens(settings.zalo_access_token, settings.zalo_refresh_token, None))
        gw.senders["zalo"] = ZaloSender(ZaloClient(http, settings.zalo_api_url, settings.zalo_oauth_url,
                                                   settings.zalo_app_id, settings.zalo_app_secret_key or "", tokens))
    app[gateway_key] = gw
    if settings.redis_url:
        from bot.redis_fanout import RedisFanout

        gw.fanout = RedisFanout(settings.redis_url, gw.live, gw.metrics, prefix=settings.redis_prefix,
                                node=gw.worker_id)
        await gw.fanout.start()
    if settings.session_secret_generated:
        logger.warning("SESSION_SECRET is not set: using a random one (sign-ins end on restart; set it in production)")
    logger.info("gateway ready: channels %s, Rasa at %s", sorted(gw.senders) or "none", settings.rasa_url)
    gw.start()
    try:
        yield
    finally:
        await gw.stop()
        if gw.fanout is not None:
            await gw.fanout.close()
        await http.close()
        await content.close()
        await engine.dispose()


async def _stop_background(app: web.Application) -> None:
    """on_shutdown: stop the inbox, outbox and fan-out loops first. aiohttp (3.9) waits for every
    task started after the app — up to shutdown_timeout — before it runs the cleanup context, so
    loops left running would hold a SIGTERM for a minute. (Messages left pending are taken by
    another replica, or by this one when it starts again.)"""
    gw = app.get(gateway_key)
    if gw is not None:
        await gw.stop()
        if gw.fanout is not None:
            await gw.fanout.close()


async def index(request: web.Request) -> web.Response:
    """A plain landing page; also carries Zalo's domain-verification meta tag when configured."""
    code = request.app[settings_key].zalo_site_verification
    meta = f'<meta name="zalo-platform-site-verification" content="{html.escape(code)}">' if code else ""
    body = (f"<!doctype html><html lang='vi'><head><meta charset='utf-8'>{meta}<title>Tổng đài 111</title></head>"
            "<body><p>Tổng đài 111 · Anti-TIP hotline assistant. Counselors: <a href='/console'>console</a>.</p>"
            "</body></html>")
    return web.Response(text=body, content_type="text/html")


MAX_ROW_ID = 2**31 - 1  # the database's INTEGER primary keys
_NUMERIC_PARAM = re.compile(r"\(\?P<(\w+)>\\d\+\)")


def _out_of_range_id(request: web.Request) -> bool:
    """A row id in the path beyond any row: PostgreSQL refuses the query (integer out of range) and
    SQLite cannot bind it. Row ids are the parameters declared as numbers (`{id:\\d+}`) and, by
    this project's convention, the digit-only values of parameters named `id`, `mid` or `*_id`."""
    resource = getattr(request.match_info.route, "resource", None)
    pattern = getattr(getattr(resource, "_pattern", None), "pattern", "")
    names = set(_NUMERIC_PARAM.findall(pattern))
    names |= {k for k, v in request.match_info.items()
              if (k in ("id", "mid") or k.endswith("_id")) and v.isascii() and v.isdigit()}
    return any(len(request.match_info.get(name, "")) > 10 or int(request.match_info.get(name) or 0) > MAX_ROW_ID
               for name in names)


def _is_trusted(address: str | None, trusted: tuple[str, ...]) -> bool:
    import ipaddress

    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n) for n in trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...]) -> str | None:
    """The client behind trusted reverse proxies: walk X-Forwarded-For from the right (each proxy
    appends the address it saw) past the trusted ones. A peer that is not a trusted proxy is the
    client itself, whatever X-Forwarded-For it sends."""
    import ipaddress

    if not trusted or not _is_trusted(peer, trusted) or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage in the header: keep the proxy's own address
    return hops[0] if hops else peer


@web.middleware
async def behind_proxy(request: web.Request, handler) -> web.StreamResponse:
    """Behind nginx or Caddy (TRUSTED_PROXIES), take the client's address and scheme from
    X-Forwarded-For / X-Forwarded-Proto, so that sign-in throttling counts people, not the proxy,
    and cookies know the connection was HTTPS. Headers from anyone else are ignored."""
    trusted = request.app[settings_key].trusted_proxies
    if trusted and _is_trusted(request.remote, trusted):
        changes: dict[str, str] = {}
        remote = client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)
        if remote and remote != request.remote:
            changes["remote"] = remote
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https") and proto != request.scheme:
            changes["scheme"] = proto
        if changes:
            request = request.clone(**changes)
    return await handler(request)


# Uploads whose handler reads the raw body itself and reports a NUL byte with its row (the agency
# CSV import answers 400 {row, error}, the contract), within its own size limit.
RAW_UPLOADS = frozenset({"/api/agencies/import"})


def _has_nul(request: web.Request) -> bool:
    return "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.query.items())


@web.middleware
async def hostile_input(request: web.Request, handler) -> web.StreamResponse:
    """Inputs no handler expects, answered as client errors rather than 500, for every route:

    - a numeric path parameter too large for a row id: 404;
    - a NUL character in the path or the query, or in the body of an API request: 400
      (PostgreSQL cannot store NUL in text; webhook bodies are exempt — their parsers drop NULs,
      and refusing a platform's delivery would lose the message);
    - JSON nested so deeply that `json.loads` raises RecursionError: 400.
    """
    if _out_of_range_id(request):
        return web.json_response({"error": "not found"}, status=404)
    if _has_nul(request):
        return web.json_response({"error": "NUL characters are not accepted"}, status=400)
    if request.path.startswith("/api/") and request.path not in RAW_UPLOADS and request.can_read_body:
        raw = await request.read()  # bounded by client_max_size; aiohttp keeps it for the handler
        if b"\x00" in raw or b"\\u0000" in raw:
            return web.json_response({"error": "NUL characters are not accepted"}, status=400)
    try:
        return await handler(request)
    except RecursionError:
        logger.warning("refused a request body nested too deeply")
        return web.json_response({"error": "malformed body: nested too deeply"}, status=400)


def create_app(settings: Settings) -> web.Application:
    from bot import health, location_page, webhooks

    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[behind_proxy])
    app[settings_key] = settings
    app.cleanup_ctx.append(_gateway_ctx)
    app.on_shutdown.append(_stop_background)
    app.router.add_get("/", index, name="index")
    webhooks.setup(app)
    health.setup(app)
    location_page.setup(app)
    try:
        from bot.console import setup as console_setup
    except ImportError:  # the console is optional for a bot-only deployment
        console_setup = None
    if console_setup is not None:
        console_setup(app)
    from bot.admin import setup as admin_setup

    admin_setup(app)  # content admin: answers, examples and publishing, safety phrases, agencies
    app.middlewares.append(hostile_input)  # innermost: the pages' security headers still apply
    return app


async def _freeze_startup_objects(_app: web.Application) -> None:
    """After start-up (the gateway's context has loaded langdetect's profiles, the mappers, the
    geography): move every object alive into the garbage collector's permanent generation. A full
    collection then no longer walks them; with ~90,000 profile lists in the old generation each one
    paused the event loop for 20-60 ms under load, the tail of the webhook acknowledgements."""
    import gc

    from sqlalchemy.orm import configure_mappers

    from bot.geo import resolve

    configure_mappers()
    resolve(21.03, 105.85)  # loads and indexes the offline geography
    gc.collect()
    gc.freeze()


def serve(settings: Settings) -> None:
    from bot.logs import AccessLogger

    app = create_app(settings)
    app.on_startup.append(_freeze_startup_objects)  # after the gateway's context has started
    web.run_app(app, host=settings.host, port=settings.port, access_log_class=AccessLogger,
                shutdown_timeout=SHUTDOWN_TIMEOUT_S,
                print=lambda *_: logger.info("listening on http://%s:%s", settings.host, settings.port))
