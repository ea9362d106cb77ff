"""One publish at a time across gateway replicas: two replicas sharing PostgreSQL, both asked to
publish at the same moment, start one job between them (the other answers 409 with its id).
Needs TEST_DATABASE_URL."""
from __future__ import annotations

import asyncio

from bot import accounts
from bot.admin.state import publisher_key
from bot.app import create_app
from bot.keys import gateway_key
from tests.admin.conftest import PASSWORD, SERVING, Staff, copy_repository, publish_config, wait_for_job
from tests.admin.fakes import FakeRasaServer, StubSteps
from tests.production.inproc import gateway_settings


async def test_two_replicas_asked_at_once_start_one_publish(aiohttp_client, pg_url, fakes, tmp_path):
    repo = copy_repository(tmp_path / "repo")
    async with FakeRasaServer(serving=SERVING) as rasa_api:
        settings = gateway_settings(pg_url, fakes, rasa_url=rasa_api.url, content_dir=repo / "content")
        editors, steps = [], []
        for n in (1, 2):
            app = create_app(settings)
            publish_config(app, repo)  # before the start: the publisher is built with it
            app_replica = await aiohttp_client(app)
            app_replica.gw = app[gateway_key]
            app_replica.gw.worker_id = f"publish-{n}"
            publisher = app_replica.app[publisher_key]
            publisher.steps = StubSteps(publisher.config, publisher.http)
            publisher.steps.hold = asyncio.Event()  # training waits: the first job stays active
            steps.append(publisher.steps)
            if n == 1:
                async with app_replica.gw.sessions() as session:
                    await accounts.create_account(session, "pub-editor", "content_editor", PASSWORD)
                    await session.commit()
            member = Staff(client=app_replica, name="pub-editor", role="content_editor")
            async with app_replica.post("/api/login", json={"username": "pub-editor", "password": PASSWORD}) as r:
                assert r.status == 200, await r.text()
                member.csrf = (await r.json())["csrf_token"]
            editors.append(member)

        status, out = await editors[0].call("POST", "/api/content/changes", {
            "op": "add", "intent": "faq_hours", "text": "tổng đài Đà Nẵng nghỉ trưa lúc mấy giờ"})
        assert status == 201, out

        answers = await asyncio.gather(*(e.call("POST", "/api/publish") for e in editors))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [202, 409], answers
        started = next(out["id"] for status, out in answers if status == 202)
        assert next(out["id"] for status, out in answers if status == 409) == started

        for s in steps:
            s.hold.set()
        winner = editors[[status for status, _ in answers].index(202)]
        job = await wait_for_job(winner, started)
        assert job["state"] == "done"
        assert (repo / "models").is_dir() and any((repo / "models").iterdir())  # the copy's models, not ours
        for e in editors:
            await e.client.app[publisher_key].close()
