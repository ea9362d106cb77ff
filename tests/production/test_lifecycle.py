"""Gateway processes starting and stopping as an operator's process manager runs them: several
replicas migrating one empty PostgreSQL database at the same moment, and SIGTERM (systemd's stop,
a rolling restart) ending a replica at once rather than after aiohttp's 60 s wait."""
from __future__ import annotations

import os
import signal
import sys
import time

import pytest
from sqlalchemy import create_engine, func, select, text

from bot.db.models import Response, SafetyPhrase
from tests.production.conftest import create_database, drop_database, pg_server_url, redis_server_url
from tests.fakes.payloads import messenger_text_event
from tests.support.hotline import gateway_env, post, signed_messenger
from tests.support.processes import Stack

pytestmark = pytest.mark.slow


def test_replicas_starting_together_migrate_an_empty_database_once():
    server = pg_server_url()
    if server is None:
        pytest.skip("set TEST_DATABASE_URL to a PostgreSQL server to run this")
    url = create_database(server, "lifecycle")
    try:
        with Stack("production-lifecycle-migrate", base_env={"DATABASE_URL": url}) as stack:
            for n in range(3):
                stack.add_gateway(f"gateway{n}", env=gateway_env(database_url=url, rasa_url="http://127.0.0.1:9",
                                                                 AUTO_MIGRATE="1"))
            stack.start_all()
            engine = create_engine(url)
            try:
                with engine.connect() as conn:
                    assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
                    answers = conn.execute(select(func.count()).select_from(Response)).scalar()
                    distinct = conn.execute(select(func.count(func.distinct(Response.key + ":" + Response.lang)))).scalar()
                    phrases = conn.execute(select(func.count()).select_from(SafetyPhrase)).scalar()
                assert answers == distinct > 50 and phrases > 50
            finally:
                engine.dispose()
            for proc in stack.processes.values():
                assert proc.running, proc.log_tail()
    finally:
        drop_database(server, url)


@pytest.mark.parametrize("with_redis", [False, True], ids=["without-redis", "with-redis"])
def test_sigterm_stops_a_busy_gateway_within_seconds(tmp_path, with_redis):
    redis = redis_server_url()
    if with_redis and redis is None:
        pytest.skip("set TEST_REDIS_URL to run this with the Redis fan-out")
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    extra = {"REDIS_URL": redis, "REDIS_PREFIX": f"lifecycle{os.getpid()}"} if with_redis else {}
    with Stack(f"production-lifecycle-{'redis' if with_redis else 'plain'}", base_env={"DATABASE_URL": url}) as stack:
        gw = stack.add_gateway("gateway", env=gateway_env(database_url=url, rasa_url="http://127.0.0.1:9",
                                                          graph_url="http://127.0.0.1:9/v21.0", page_token="t",
                                                          AUTO_MIGRATE="1", **extra))
        stack.start_all()
        # give the inbox and outbox something to chew on (Rasa and Graph are unreachable: retries pending)
        for i in range(5):
            raw, headers = signed_messenger(messenger_text_event(f"term-{i}", "xin chao", f"term-{i}"))
            assert post(gw.url + "/webhooks/messenger", raw, headers)[0] == 200
        time.sleep(1.0)
        started = time.monotonic()
        gw.signal_group(signal.SIGTERM)
        gw.proc.wait(30)
        took = time.monotonic() - started
        assert gw.proc.returncode == 0, gw.log_tail()
        assert took < 5.0, f"SIGTERM took {took:.1f} s"
