"""Test doubles for the content admin: a Rasa server with the model API, and publish steps whose
training and NLU test are stubbed (the real `rasa train` takes minutes)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Sequence

from aiohttp import web

from bot.publish import PublishConfig, RasaSteps


class FakeRasaServer:
    """Rasa's REST channel (echo), `GET /status` and `PUT /model`, recording the model loads."""

    def __init__(self, serving: str | None = "hotline-serving.tar.gz", token: str | None = None) -> None:
        self.serving = serving
        self.token = token
        self.loads: list[dict[str, Any]] = []
        self.load_status = 204
        self.received: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    def _authorised(self, request: web.Request) -> bool:
        return self.token is None or request.query.get("token") == self.token

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(body)
        return web.json_response([{"recipient_id": body["sender"], "text": f"bot: {body['message']}"}])

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Hello from Rasa: 3.6.21")

    async def _status(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"status": "failure"}, status=401)
        return web.json_response({"model_file": self.serving, "model_id": "x", "num_active_training_jobs": 0})

    async def _load(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"status": "failure"}, status=401)
        body = await request.json()
        self.loads.append({"body": body, "query": dict(request.query)})
        if self.load_status >= 300:
            return web.json_response({"status": "failure", "message": "LoadingError"}, status=self.load_status)
        self.serving = Path(body["model_file"]).name
        return web.Response(status=204)

    async def _events(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def __aenter__(self) -> "FakeRasaServer":
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", self._webhook)
        app.router.add_get("/", self._root)
        app.router.add_get("/status", self._status)
        app.router.add_put("/model", self._load)
        app.router.add_post("/conversations/{sender}/tracker/events", self._events)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class StubSteps:
    """Validation and training stubbed, the NLU gate's figures injected; loading and the serving
    model go through the real :class:`RasaSteps` to the (fake) Rasa server over HTTP."""

    def __init__(self, config: PublishConfig, http: Any = None) -> None:
        self.config = config
        self.http = http
        self.validation_problems: list[str] = []
        self.validated: list[Path] = []
        self.trained: list[Path] = []
        self.evaluated: list[list[str]] = []
        self.metrics: dict[str, dict[str, Any]] = {}  # model file name -> figures
        self.default = {"risk_recall": 1.0, "risk_support": 147, "false_escalation_rate": 0.01,
                        "ordinary_support": 357, "macro_f1": 0.95, "accuracy": 0.95, "n": 516, "missed_risk": []}
        self.hold: asyncio.Event | None = None  # training waits for it when set
        self.train_delay = 0.0
        self.data_seen: dict[str, str] = {}

    def _rasa(self) -> RasaSteps:
        return RasaSteps(self.config, self.http)

    async def validate(self, data_dir: Path) -> list[str]:
        self.validated.append(data_dir)
        return list(self.validation_problems)

    async def train(self, data_dir: Path, out_dir: Path, name: str, progress: Any) -> Path:
        self.trained.append(data_dir)
        for rel in ("domain.yml", "nlu_data/rules/faq.yml"):
            self.data_seen[rel] = (data_dir / rel).read_text(encoding="utf-8")
        for i in range(1, 6):
            progress(i / 5, f"DIETClassifier: epoch {i}/5")
            await asyncio.sleep(self.train_delay / 5)
        if self.hold is not None:
            await self.hold.wait()
        target = out_dir / f"{name}.tar.gz"
        target.write_bytes(b"stub model " + name.encode())
        return target

    async def evaluate(self, models: Sequence[Path]) -> dict[str, dict[str, Any]]:
        self.evaluated.append([Path(m).name for m in models])
        return {str(m): dict(self.metrics.get(Path(m).name, self.default)) for m in models}

    async def load(self, model: Path) -> None:
        await self._rasa().load(model)

    async def serving(self) -> str | None:
        return await self._rasa().serving()
