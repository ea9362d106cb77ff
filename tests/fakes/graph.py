"""A local stand-in for the Graph API's Send endpoint (`POST /{version}/me/messages`).

It validates requests the way Graph does where our code could get them wrong (page token,
`messaging_type`, tags, text and quick-reply limits) and answers like Graph:
`{"recipient_id", "message_id"}` or `{"error": {"message", "type", "code", "error_subcode", ...}}`.

    async with FakeGraph() as graph:
        client = MessengerClient(http, graph.url, graph.page_access_token)
        ...
        assert graph.texts_to("psid") == ["hello"]
"""
from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

from tests.fakes.server import TIMEOUT, FakeServer, json_body

MESSAGING_TYPES = {"RESPONSE", "UPDATE", "MESSAGE_TAG"}
TAGS = {"HUMAN_AGENT", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE"}
SENDER_ACTIONS = {"typing_on", "typing_off", "mark_seen"}
OUTSIDE_WINDOW = {"code": 10, "error_subcode": 2018278,
                  "message": "(#10) This message is sent outside of allowed window."}
UNAVAILABLE = {"code": 551, "error_subcode": 1545041, "message": "(#551) This person isn't available right now."}


def graph_error(code: int, message: str, *, subcode: int | None = None, status: int = 400) -> web.Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "fbtrace_id": "AfakeTraceId"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return web.json_response({"error": error}, status=status)


class FakeGraph(FakeServer):
    """Failures for `fail_next(n, status)`: an HTTP status (a plain-text answer, e.g. 500 or 429),
    `"timeout"` (no answer until the client gives up), or a Graph error dict such as
    `{"code": 2}` or `{"code": 10, "error_subcode": 2018278}` (answered with HTTP 400, or the
    dict's `http_status`)."""

    def __init__(self, page_access_token: str = "test-page-token", *, version: str = "v21.0",
                 timeout_delay: float = 30.0) -> None:
        super().__init__(timeout_delay=timeout_delay)
        self.page_access_token = page_access_token
        self.version = version
        self._ids = itertools.count(1)
        self._outside_window: set[str] = set()
        self._unavailable: set[str] = set()
        self.app.router.add_post(f"/{version}/me/messages", self._messages)
        self.app.router.add_post("/me/messages", self._messages)

    def base_url(self, origin: str) -> str:
        return f"{origin}/{self.version}"

    # ------------------------------------------------------------ test helpers

    def set_outside_window(self, psid: str) -> None:
        """RESPONSE / UPDATE to this person fail with (#10) subcode 2018278; HUMAN_AGENT still works."""
        self._outside_window.add(psid)

    def set_unavailable(self, psid: str) -> None:
        """Every send to this person fails with (#551)."""
        self._unavailable.add(psid)

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """Bodies of the requests Graph accepted, in order."""
        return [call["json"] for call in self.calls if call["delivered"]]

    def messages_to(self, psid: str) -> list[dict[str, Any]]:
        return [body["message"] for body in self.delivered
                if body.get("recipient", {}).get("id") == psid and "message" in body]

    def texts_to(self, psid: str) -> list[str]:
        """Texts delivered to this person (failed attempts are not counted)."""
        return [m["text"] for m in self.messages_to(psid) if "text" in m]

    def actions_to(self, psid: str) -> list[str]:
        return [body["sender_action"] for body in self.delivered
                if body.get("recipient", {}).get("id") == psid and "sender_action" in body]

    # ------------------------------------------------------------ the endpoint

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        call = {"path": request.path, "query": dict(request.query), "json": body, "status": None,
                "delivered": False}
        self.calls.append(call)
        # (web.Response is a MutableMapping, empty hence falsy: compare with None, never `or`.)
        # Programmed failures hit messages only: sender actions (typing) are best effort.
        is_action = isinstance(body, dict) and "sender_action" in body
        response = None if is_action else await self._failure()
        if response is None:
            response = self._validate(request, body)
        if response is None:
            response = self._deliver(body, call)
        call["status"] = response.status
        return response

    async def _failure(self) -> web.StreamResponse | None:
        failure = self._next_failure()
        if failure is None:
            return None
        if failure == TIMEOUT:
            return await self._hang()
        if isinstance(failure, dict):
            error = dict(failure)
            status = error.pop("http_status", 400)
            return graph_error(error.pop("code"), error.pop("message", "(#fake) injected error"),
                               subcode=error.pop("error_subcode", None), status=status)
        return web.Response(status=int(failure), text="injected failure")

    def _validate(self, request: web.Request, body: Any) -> web.Response | None:
        if request.query.get("access_token") != self.page_access_token:
            return graph_error(190, "Invalid OAuth access token - Cannot parse access token")
        if not isinstance(body, dict):
            return graph_error(100, "(#100) The parameter recipient is required")
        recipient = body.get("recipient")
        if not isinstance(recipient, dict) or not recipient.get("id"):
            return graph_error(100, "(#100) The parameter recipient is required")
        if "sender_action" in body:
            if "message" in body or body["sender_action"] not in SENDER_ACTIONS:
                return graph_error(100, "(#100) Invalid sender_action")
            return None
        invalid = self._validate_message(body)
        return invalid if invalid is not None else self._validate_reachable(recipient["id"], body)

    def _validate_message(self, body: dict[str, Any]) -> web.Response | None:
        messaging_type = body.get("messaging_type")
        if messaging_type not in MESSAGING_TYPES:
            return graph_error(100, "(#100) param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
        if (messaging_type == "MESSAGE_TAG") != ("tag" in body) or ("tag" in body and body["tag"] not in TAGS):
            return graph_error(100, "(#100) Tag is required for MESSAGE_TAG and only allowed with it")
        message = body.get("message")
        if not isinstance(message, dict) or not ("text" in message or "attachment" in message):
            return graph_error(100, "(#100) param message must be non-empty")
        text = message.get("text")
        if text is not None and (not isinstance(text, str) or not text or len(text) > 2000):
            return graph_error(100, "(#100) Length of param message[text] must be less than or equal to 2000")
        invalid = self._validate_quick_replies(message.get("quick_replies"))
        return invalid if invalid is not None else self._validate_template(message)

    @staticmethod
    def _validate_quick_replies(replies: Any) -> web.Response | None:
        if replies is None:
            return None
        if not isinstance(replies, list) or not 1 <= len(replies) <= 13:
            return graph_error(100, "(#100) param message[quick_replies] must have between 1 and 13 elements")
        for reply in replies:
            if not isinstance(reply, dict) or reply.get("content_type") != "text" or not reply.get("title") \
                    or not reply.get("payload") or len(reply["payload"]) > 1000:
                return graph_error(100, "(#100) Invalid quick reply")
        return None

    @staticmethod
    def _validate_template(message: dict[str, Any]) -> web.Response | None:
        attachment = message.get("attachment")
        if attachment is None:
            return None
        payload = attachment.get("payload", {}) if isinstance(attachment, dict) else {}
        if payload.get("template_type") == "button":
            buttons = payload.get("buttons")
            if not payload.get("text") or len(payload["text"]) > 640 or not isinstance(buttons, list) \
                    or not 1 <= len(buttons) <= 3:
                return graph_error(100, "(#100) Invalid button template")
        return None

    def _validate_reachable(self, psid: str, body: dict[str, Any]) -> web.Response | None:
        if psid in self._unavailable:
            return graph_error(UNAVAILABLE["code"], UNAVAILABLE["message"], subcode=UNAVAILABLE["error_subcode"])
        if psid in self._outside_window and body.get("tag") != "HUMAN_AGENT":
            return graph_error(OUTSIDE_WINDOW["code"], OUTSIDE_WINDOW["message"],
                               subcode=OUTSIDE_WINDOW["error_subcode"])
        return None

    def _deliver(self, body: dict[str, Any], call: dict[str, Any]) -> web.Response:
        call["delivered"] = True
        answer = {"recipient_id": body["recipient"]["id"]}
        if "message" in body:
            answer["message_id"] = f"m_fake{next(self._ids):08d}"
        return web.json_response(answer)
