"""The console in a real browser (Chromium driven by Playwright) against the real gateway app.

Two counselors are signed in in two browser contexts; a risk message arrives through a signed
Messenger webhook and shows in both queues live; both try to take it, one wins and the other is
told; the winner's reply reaches the fake Graph server; markup sent by the person shows as text
(no dialog fires); a shared location shows on the map element. Screenshots: tests/artifacts/.
"""
from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from bot import accounts
from bot.app import create_app
from bot.keys import gateway_key
from bot.settings import PROJECT_ROOT, Settings
from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import encode, messenger_location_event, messenger_text_event, sign_messenger
from tests.fakes.rasa import FakeRasa

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium "
                                                     "(apt-get install chromium); browser tests skipped"),
]
playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")

ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
APP_SECRET = "browser-test-app-secret"
PASSWORD = "Correct-Horse-9-battery"
RISK = "cứu em, em bị nhốt ở đây"
XSS = "<script>alert(1)</script> và <img src=x onerror=alert(1)> em ở Móng Cái"
REPLY = "Chào em, chị là tư vấn viên của tổng đài 111. Em có an toàn không?"
MONG_CAI = (21.5300, 107.9700)
TIMEOUT_MS = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def gateway(db_url: str) -> AsyncIterator[SimpleNamespace]:
    """The real app on a free port, with fake Graph and Rasa servers; two counselor accounts."""
    async with FakeGraph(timeout_delay=3) as graph, FakeRasa() as rasa:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = Settings(database_url=db_url, rasa_url=rasa.url, public_base_url=base,
                            messenger_app_secret=APP_SECRET, messenger_verify_token="verify",
                            messenger_page_access_token=graph.page_access_token, messenger_graph_url=graph.url,
                            session_secret="b" * 43, session_secret_generated=False,
                            content_dir=PROJECT_ROOT / "content", auto_migrate=False)
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            gw = app[gateway_key]
            async with gw.sessions() as session:
                for name in ("anna", "binh"):
                    await accounts.create_account(session, name, "counselor", PASSWORD)
                await session.commit()
            yield SimpleNamespace(base=base, graph=graph, gw=gw)
        finally:
            await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                           args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        try:
            yield chromium
        finally:
            await chromium.close()


class Console:
    """One counselor's browser context, with what the page did that a test must see."""

    def __init__(self, page: Any, name: str) -> None:
        self.page, self.name = page, name
        self.dialogs: list[str] = []
        self.csp_errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", lambda msg: self.csp_errors.append(msg.text)
                if "Content Security Policy" in msg.text else None)

    async def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    async def sign_in(self, base: str) -> None:
        await self.page.goto(f"{base}/console")
        await self.page.fill("#login-user", self.name)
        await self.page.fill("#login-password", PASSWORD)
        await self.page.click("#login-form button[type=submit]")
        await self.page.wait_for_selector("#live-state.on", timeout=TIMEOUT_MS)

    async def shot(self, name: str, *, tall: bool = False) -> None:
        """A screenshot; `tall` shows the whole conversation pane (it scrolls inside the page)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        size = self.page.viewport_size
        if tall:
            await self.page.set_viewport_size({"width": size["width"], "height": 2000})
        await self.page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)
        if tall:
            await self.page.set_viewport_size(size)


async def open_console(browser: Any, base: str, name: str, **context_args: Any) -> Console:
    context = await browser.new_context(**context_args)
    # the map iframe must not reach the internet during tests: its element and src are checked instead
    await context.route("https://www.openstreetmap.org/**", lambda route: route.abort())
    console = Console(await context.new_page(), name)
    await console.sign_in(base)
    return console


async def webhook(gateway: SimpleNamespace, payload: dict) -> None:
    import aiohttp

    raw = encode(payload)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.base}/webhooks/messenger", data=raw,
                             headers={"Content-Type": "application/json", **sign_messenger(raw, APP_SECRET)}) as r:
            assert r.status == 200


async def wait_js(page: Any, expression: str, timeout: float = TIMEOUT_MS / 1000) -> None:
    """Poll a JavaScript expression with page.evaluate (wait_for_function would need 'unsafe-eval',
    which the console's CSP rightly refuses)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await page.evaluate(f"() => Boolean({expression})"):
        assert loop.time() < deadline, f"not true within {timeout} s: {expression}"
        await asyncio.sleep(0.05)


async def eventually(check: Any, timeout: float = 10.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value or loop.time() > deadline:
            assert value, "condition not met in time"
            return value
        await asyncio.sleep(0.05)


async def test_two_counselors_take_reply_and_see_text_not_markup(gateway, browser):
    anna = await open_console(browser, gateway.base, "anna")
    binh = await open_console(browser, gateway.base, "binh")

    # a risk message through a signed Messenger webhook appears live in both queues
    await webhook(gateway, messenger_text_event("psid-browser", RISK, "m-browser-1"))
    for console in (anna, binh):
        item = console.page.locator("#queue-waiting li.q-item")
        await item.first.wait_for(timeout=TIMEOUT_MS)
        assert await item.count() == 1
        assert "Khẩn cấp" in await item.first.inner_text()
    await anna.shot("1-queue-live")

    # both open it and press "take" at the same moment: one wins, the other is told
    for console in (anna, binh):
        await console.page.click("#queue-waiting li.q-item button")
        await console.page.wait_for_selector("#conv:not([hidden])", timeout=TIMEOUT_MS)
    await asyncio.gather(*(c.page.evaluate("document.getElementById('btn-take').click()") for c in (anna, binh)))
    errors = {}
    for console in (anna, binh):
        await wait_js(console.page, "document.getElementById('conv-error').textContent !== '' || "
                                    "document.getElementById('conv-holder').textContent.includes('bạn')")
        errors[console.name] = await console.page.text_content("#conv-error")
    losers = [name for name, text in errors.items() if text]
    assert len(losers) == 1, errors
    winner = anna if losers == ["binh"] else binh
    loser = binh if winner is anna else anna
    assert f"{winner.name} đã nhận cuộc trò chuyện này" in errors[loser.name]
    assert "bạn" in await winner.page.text_content("#conv-holder")
    await loser.page.wait_for_selector("#queue-assigned li.q-item", timeout=TIMEOUT_MS)
    await loser.shot("2-take-refused")

    # the winner's reply reaches the person through the fake Graph server
    await winner.page.fill("#reply-text", REPLY)
    await winner.page.click("#btn-send")
    await eventually(lambda: REPLY in gateway.graph.texts_to("psid-browser"))
    await wait_js(winner.page, "[...document.querySelectorAll('#transcript li.counselor .status')]"
                               ".some(s => s.textContent === 'đã gửi')")

    # markup from the person shows as text, live, and runs nothing
    await webhook(gateway, messenger_text_event("psid-browser", XSS, "m-browser-2"))
    last = winner.page.locator("#transcript li.msg.user .text").last
    await wait_js(winner.page, "[...document.querySelectorAll('#transcript li.user .text')]"
                               ".some(p => p.textContent.includes('<script>'))")
    assert await last.text_content() == XSS
    assert await winner.page.locator("#transcript img").count() == 0
    assert await winner.page.locator("#transcript script").count() == 0

    # a shared location shows on the map element, with what it means
    await webhook(gateway, messenger_location_event("psid-browser", *MONG_CAI, "m-browser-3"))
    frame = winner.page.locator("#locations iframe.map")
    await frame.first.wait_for(timeout=TIMEOUT_MS)
    src = await frame.first.get_attribute("src")
    assert src.startswith("https://www.openstreetmap.org/export/embed.html?")
    assert "marker=21.530000%2C107.970000" in src
    link = await winner.page.get_attribute("#locations a", "href")
    assert link.startswith("https://www.openstreetmap.org/?mlat=21.530000&mlon=107.970000")
    facts = await winner.page.text_content("#locations .resolved")
    assert "Quảng Ninh" in facts and "Móng Cái" in facts
    await winner.shot("3-conversation", tall=True)

    assert anna.dialogs == [] and binh.dialogs == []
    assert anna.csp_errors == [] and binh.csp_errors == []


async def test_phone_layout_and_supervisor_view(gateway, browser):
    async with gateway.gw.sessions() as session:
        await accounts.create_account(session, "sofia", "supervisor", PASSWORD)
        await session.commit()
    phone = await open_console(browser, gateway.base, "sofia", viewport={"width": 390, "height": 844},
                               is_mobile=True, has_touch=True)
    await webhook(gateway, messenger_text_event("psid-phone", RISK, "m-phone-1"))
    await phone.page.locator("#queue-waiting li.q-item").first.wait_for(timeout=TIMEOUT_MS)
    await phone.page.click("#queue-waiting li.q-item button")
    await phone.page.wait_for_selector("#conv:not([hidden])", timeout=TIMEOUT_MS)
    assert not await phone.page.is_visible("#queue-pane")  # one pane at a time on a phone
    await phone.shot("4-phone-conversation")
    await phone.page.click("#conv-back")
    assert await phone.page.is_visible("#queue-pane")
    await phone.page.click("#nav-supervisor")
    await phone.page.wait_for_selector("#sup-waiting tr", timeout=TIMEOUT_MS)
    await phone.page.wait_for_selector("#audit tr", timeout=TIMEOUT_MS)
    assert "open_conversation" in await phone.page.text_content("#audit")
    await phone.shot("5-phone-supervisor")
    assert phone.dialogs == [] and phone.csp_errors == []
