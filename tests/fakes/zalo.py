"""A local stand-in for Zalo's OA API (`POST /v3.0/oa/message/cs`) and OAuth token endpoint
(`POST /v4/oa/access_token`), serving both on one base URL.

Tokens behave like Zalo's: only the newest access token is accepted (`{"error": -216}` otherwise)
and each refresh token works exactly once; a reused one answers `{"error": -14020}` and is counted
in `reused_refresh_count`, so a test can prove that concurrent senders refreshed only once.

    async with FakeZalo(refresh_delay=0.05) as zalo:
        store = MemoryTokenStore(Tokens(zalo.access_token, zalo.refresh_token))
        client = ZaloClient(http, zalo.url, zalo.url, zalo.app_id, zalo.app_secret_key, store)
"""
from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from aiohttp import web

from tests.fakes.payloads import ZALO_APP_ID
from tests.fakes.server import TIMEOUT, FakeServer, json_body

ERROR_MESSAGES = {
    -32: "Your application/OA reached limit call api",
    -201: "Parameters are invalid",
    -216: "Access token is invalid",
    -220: "access_token is expired or removed",
    -227: "User is banned or has been inactive for more than 45 days",
    -230: "User has not interacted with the OA in the past 7 days",
    -232: "User has not interacted with the OA recently",
}
REUSED_REFRESH = -14020  # UNCONFIRMED code (PLATFORMS §2.8); what this fake answers for a reused token
UNKNOWN_REFRESH = -14019
BAD_APP = -14002


def zalo_error(code: int, message: str | None = None) -> web.Response:
    """Zalo reports errors with HTTP 200."""
    return web.json_response({"error": code, "message": message or ERROR_MESSAGES.get(code, "Error")})


class FakeZalo(FakeServer):
    """Failures for `fail_next(n, status)` (message endpoint) and `fail_next_refresh(n, status)`:
    a positive HTTP status (plain-text answer), a negative Zalo error code (HTTP 200 with
    `{"error": code}`), a whole answer dict (HTTP 200), or `"timeout"`."""

    def __init__(self, *, app_id: str = ZALO_APP_ID, app_secret_key: str = "zalo-app-secret-key",
                 access_token: str = "zalo-access-0", refresh_token: str = "zalo-refresh-0",
                 expires_in: str = "90000", refresh_delay: float = 0.0, timeout_delay: float = 30.0) -> None:
        super().__init__(timeout_delay=timeout_delay)
        self.app_id = app_id
        self.app_secret_key = app_secret_key
        self.access_token: str | None = access_token
        self.refresh_token = refresh_token
        self.expires_in = expires_in
        self.refresh_delay = refresh_delay
        self.refresh_count = 0  # successful refreshes
        self.refresh_attempts = 0
        self.reused_refresh_count = 0
        self.refresh_calls: list[dict[str, Any]] = []
        self._used_refresh: set[str] = set()
        self._refresh_failures: list[Any] = []
        self._unreachable: dict[str, int] = {}
        self._generation = itertools.count(1)
        self._msg_ids = itertools.count(1)
        self.app.router.add_post("/v3.0/oa/message/cs", self._send_cs)
        self.app.router.add_post("/v4/oa/access_token", self._refresh)

    # ------------------------------------------------------------ test helpers

    def expire_token(self) -> None:
        """The current access token stops working (as after 25 h); the refresh token still works."""
        self.access_token = None

    def set_unreachable(self, user_id: str, code: int = -230) -> None:
        """Every send to this user fails with `code` (-230, -232 or -227)."""
        self._unreachable[user_id] = code

    def fail_next_refresh(self, n: int = 1, status: Any = 500) -> None:
        self._refresh_failures.extend([status] * n)

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [call["json"] for call in self.calls if call["delivered"]]

    def texts_to(self, user_id: str) -> list[str]:
        """Texts delivered to this user (rejected attempts are not counted)."""
        return [body["message"]["text"] for body in self.delivered if body["recipient"]["user_id"] == user_id]

    # ------------------------------------------------------------ the endpoints

    async def _send_cs(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        call = {"path": request.path, "access_token": request.headers.get("access_token"), "json": body,
                "status": None, "error": None, "delivered": False}
        self.calls.append(call)
        # (web.Response is a MutableMapping, empty hence falsy: compare with None, never `or`.)
        response = await self._failure(self._next_failure())
        if response is None:
            response = self._check_send(call, body)
        if response is None:
            response = self._deliver(call, body)
        call["status"] = response.status
        return response

    async def _failure(self, failure: Any) -> web.StreamResponse | None:
        if failure is None:
            return None
        if failure == TIMEOUT:
            return await self._hang()
        if isinstance(failure, dict):
            return web.json_response(failure)
        if int(failure) < 0:
            return zalo_error(int(failure))
        return web.Response(status=int(failure), text="injected failure")

    def _check_send(self, call: dict[str, Any], body: Any) -> web.Response | None:
        code = self._send_error(call["access_token"], body)
        if code is None:
            return None
        call["error"] = code
        return zalo_error(code)

    def _send_error(self, token: str | None, body: Any) -> int | None:
        if not token or token != self.access_token:
            return -216
        if not isinstance(body, dict) or not isinstance(body.get("recipient"), dict) \
                or not body["recipient"].get("user_id") or not isinstance(body.get("message"), dict):
            return -201
        text = body["message"].get("text")
        if not isinstance(text, str) or not text or len(text) > 2000:
            return -201
        return self._unreachable.get(body["recipient"]["user_id"])

    def _deliver(self, call: dict[str, Any], body: dict[str, Any]) -> web.Response:
        call["delivered"] = True
        data = {"message_id": f"{next(self._msg_ids):020x}", "user_id": body["recipient"]["user_id"],
                "sent_time": str(int(time.time() * 1000)),
                "quota": {"quota_type": "reply", "remain": "8", "total": "8"}}
        return web.json_response({"data": data, "error": 0, "message": "Success"})

    async def _refresh(self, request: web.Request) -> web.StreamResponse:
        self.refresh_attempts += 1
        form = await request.post()
        call = {"form": dict(form), "secret_key": request.headers.get("secret_key"), "status": None}
        self.refresh_calls.append(call)
        failure = self._refresh_failures.pop(0) if self._refresh_failures else None
        response = await self._refresh_failure(failure)
        if response is None:
            response = self._rotate(form, call["secret_key"])
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)  # widen the window in which a second refresh could race
        call["status"] = response.status
        return response

    async def _refresh_failure(self, failure: Any) -> web.StreamResponse | None:
        if isinstance(failure, int) and failure < 0:
            return web.json_response({"error": failure, "error_name": "Injected", "error_description": "injected"})
        return await self._failure(failure)

    def _rotate(self, form: Any, secret_key: str | None) -> web.Response:
        """Check and consume the refresh token synchronously (no await in between), as a real
        single-use token would be consumed at once."""
        if secret_key != self.app_secret_key or form.get("app_id") != self.app_id \
                or form.get("grant_type") != "refresh_token":
            return web.json_response({"error": BAD_APP, "error_name": "Invalid app",
                                      "error_description": "app_id or secret_key is invalid"})
        token = form.get("refresh_token")
        if token != self.refresh_token:
            reused = token in self._used_refresh
            self.reused_refresh_count += reused
            code = REUSED_REFRESH if reused else UNKNOWN_REFRESH
            return web.json_response({"error": code, "error_name": "Invalid refresh token",
                                      "error_description": "Refresh token is invalid or has been used"})
        self._used_refresh.add(token)
        generation = next(self._generation)
        self.access_token = f"zalo-access-{generation}"
        self.refresh_token = f"zalo-refresh-{generation}"
        self.refresh_count += 1
        return web.json_response({"access_token": self.access_token, "refresh_token": self.refresh_token,
                                  "expires_in": self.expires_in})
