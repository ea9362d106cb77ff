"""The content admin in a real browser (Chromium driven by Playwright) against the real gateway.

A content editor signs in, searches an answer, edits it with a preview, sees the diff, saves,
and reverts it from the history; markup typed into an answer shows as text; then adds an example
question and publishes, watching the progress. The Rasa model API is a fake server and the
training step is stubbed (a real training takes minutes); everything else is the real code.
Screenshots: tests/artifacts/admin-*.png.
"""
from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any, AsyncIterator

import pytest
from aiohttp import web
from sqlalchemy import select

from bot import accounts
from bot.admin.state import publisher_key
from bot.app import create_app
from bot.db.models import Response
from bot.keys import gateway_key
from bot.settings import PROJECT_ROOT, Settings
from tests.admin.conftest import SERVING, copy_repository, publish_config
from tests.admin.fakes import FakeRasaServer, StubSteps

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium "
                                                     "(apt-get install chromium); browser tests skipped"),
]
playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")

ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
PASSWORD = "Correct-Horse-9-battery"
KEY = "utter_faq_cost"
EXAMPLE = "trung tâm Đà Nẵng làm việc đến mấy giờ tối"
TIMEOUT_MS = 15_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def gateway(db_url: str, tmp_path: Path) -> AsyncIterator[SimpleNamespace]:
    """The real app on a free port, on a copy of the repository's data, with a fake Rasa server
    (model API included) and a training step that takes a few seconds and trains nothing."""
    repo = copy_repository(tmp_path / "repo")
    async with FakeRasaServer(serving=SERVING) as rasa:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = Settings(database_url=db_url, rasa_url=rasa.url, public_base_url=base, session_secret="a" * 43,
                            session_secret_generated=False, content_dir=repo / "content", auto_migrate=False)
        app = create_app(settings)
        publish_config(app, repo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            gw = app[gateway_key]
            publisher = app[publisher_key]
            steps = StubSteps(publisher.config, publisher.http)
            steps.train_delay = 4.0
            publisher.steps = steps
            async with gw.sessions() as session:
                await accounts.create_account(session, "lan", "content_editor", PASSWORD)
                await session.commit()
            yield SimpleNamespace(base=base, gw=gw, rasa=rasa, repo=repo, steps=steps)
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


class Admin:
    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.csp_errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", lambda msg: self.csp_errors.append(msg.text)
                if "Content Security Policy" in msg.text else None)

    async def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    async def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)


async def wait_js(page: Any, expression: str, timeout: float = TIMEOUT_MS / 1000) -> None:
    """Poll a JavaScript expression (wait_for_function would need 'unsafe-eval', which the CSP refuses)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await page.evaluate(f"() => Boolean({expression})"):
        assert loop.time() < deadline, f"not true within {timeout} s: {expression}"
        await asyncio.sleep(0.05)


async def answer(gw: Any, key: str, lang: str) -> Response:
    async with gw.sessions() as session:
        return await session.scalar(select(Response).where(Response.key == key, Response.lang == lang))


async def test_edit_preview_diff_revert_then_add_an_example_and_publish(gateway, browser) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    admin = Admin(await context.new_page())
    page = admin.page
    await page.goto(f"{gateway.base}/admin")
    await page.fill("#login-user", "lan")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#view-answers:not([hidden])", timeout=TIMEOUT_MS)

    # search (without diacritics) and open the answer
    original = await answer(gateway.gw, KEY, "vi")
    await page.fill("#answer-search", "mien phi")
    await page.click("#answer-search-form button")
    item = page.locator(f"#answer-list li[data-key='{KEY}'][data-lang='vi']")
    await item.wait_for(timeout=TIMEOUT_MS)
    await item.click()
    await page.wait_for_selector("#answer-editor:not([hidden])", timeout=TIMEOUT_MS)
    assert await page.input_value("#answer-text") == original.text

    # a first line a notification must not show: the preview says why
    await page.fill("#answer-text", "Công an sẽ gọi lại cho bạn.\n" + original.text)
    await page.click("#answer-preview-btn")
    await wait_js(page, "document.getElementById('answer-error').textContent.includes('notification')")

    # markup in an answer is shown as text
    await page.fill("#answer-text", "Mình đây <img src=x onerror=alert(1)> nhé.\n" + original.text)
    await page.click("#answer-preview-btn")
    await wait_js(page, "document.getElementById('answer-rendered').textContent.includes('<img')")
    assert await page.locator("#answer-preview-box img").count() == 0

    # the edit: preview, save, diff
    edited = original.text + "\n\nMARK-browser: gọi từ điện thoại bàn cũng miễn phí."
    await page.fill("#answer-text", edited)
    await page.click("#answer-preview-btn")
    await wait_js(page, "document.getElementById('answer-rendered').textContent.includes('MARK-browser')")
    assert (await page.text_content("#answer-preview")).startswith(original.text.split("\n")[0])
    assert await page.text_content("#answer-error") == ""
    await wait_js(page, "[...document.querySelectorAll('#answer-diff .add')]"
                        ".some(line => line.textContent.includes('MARK-browser'))")
    await admin.shot("1-answer-preview")
    await page.click("#answer-save")
    await wait_js(page, "document.getElementById('answer-version').textContent.includes('phiên bản 2')")
    saved = await answer(gateway.gw, KEY, "vi")
    assert saved.version == 2 and saved.text == edited and saved.updated_by == "lan"
    await wait_js(page, "document.querySelectorAll('#answer-history li').length === 2")
    await admin.shot("2-answer-history")

    # revert in one step from the history
    await page.click("#answer-history li[data-version='1'] button.revert")
    await wait_js(page, "document.getElementById('answer-version').textContent.includes('phiên bản 3')")
    reverted = await answer(gateway.gw, KEY, "vi")
    assert reverted.text == original.text and reverted.version == 3
    assert await page.input_value("#answer-text") == original.text
    await wait_js(page, "[...document.querySelectorAll('#answer-diff .del')]"
                        ".some(line => line.textContent.includes('MARK-browser'))")

    # an example question for faq_hours, then publish and watch
    await page.click("#tab-examples")
    intent = page.locator("#intent-list li[data-intent='faq_hours']")
    await intent.wait_for(timeout=TIMEOUT_MS)
    await intent.click()
    await page.wait_for_selector("#intent-detail:not([hidden])", timeout=TIMEOUT_MS)
    await page.fill("#example-new", EXAMPLE)
    await page.click("#example-add")
    await wait_js(page, f"document.getElementById('pending-list').textContent.includes({EXAMPLE!r})")
    await page.click("#publish-btn")
    await wait_js(page, "document.getElementById('publish-state').textContent.includes('training')")
    await wait_js(page, "document.getElementById('publish-progress').value > 10 && "
                        "document.getElementById('publish-progress').value < 100")
    assert "xong" in await page.text_content("#publish-steps li[data-step='validating']")
    await page.locator("#publish-status").scroll_into_view_if_needed()
    await admin.shot("3-publish-progress")
    await wait_js(page, "document.getElementById('publish-state').textContent.includes('done')", timeout=60)
    assert await page.text_content("#publish-percent") == "100 %"
    assert await page.locator("#publish-steps li.done").count() == 4
    await wait_js(page, "document.querySelectorAll('#model-list li').length === 2")
    assert "đang phục vụ" in await page.text_content("#model-list li:first-child")
    await wait_js(page, "document.getElementById('pending-empty').hidden === false")
    await page.locator("#publish-status").scroll_into_view_if_needed()
    await admin.shot("4-published")

    assert len(gateway.rasa.loads) == 1 and gateway.rasa.serving != SERVING
    hotline = (gateway.repo / "nlu_data" / "nlu" / "faq_hotline.yml").read_text(encoding="utf-8")
    assert f"- {EXAMPLE}\n" in hotline
    assert admin.dialogs == [] and admin.csp_errors == []
    await context.close()
