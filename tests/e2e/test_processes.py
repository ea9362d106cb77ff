"""The process harness itself (tests/support/processes.py): free ports, endpoints files, process
groups, kill -9 and restart, and a start that fails with its log in the error."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from tests.support.hotline import migrate, sqlite_url
from tests.support.processes import ProcessError, Stack, free_port, http_status

pytestmark = pytest.mark.slow


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_free_ports_are_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50


def test_rasa_gets_an_endpoints_file_naming_its_own_action_server(tmp_path: Path) -> None:
    stack = Stack("harness-endpoints", log_dir=tmp_path)
    actions = stack.add_action_server()
    rasa = stack.add_rasa(actions=actions, model=tmp_path / "model.tar.gz", token="t0k")
    endpoints = Path(rasa.cmd[rasa.cmd.index("--endpoints") + 1])
    assert endpoints.read_text().endswith(f'url: "http://127.0.0.1:{actions.port}/webhook"\n')
    assert rasa.cmd[rasa.cmd.index("-p") + 1] == str(rasa.port) != str(actions.port)
    assert rasa.health_path == "/status?token=t0k" and "--auth-token" in rasa.cmd


def test_gateway_survives_kill_9_and_restarts_on_the_same_port(tmp_path: Path) -> None:
    database_url = sqlite_url(tmp_path / "hotline.db")
    migrate(database_url)
    with Stack("harness-gateway", log_dir=tmp_path / "logs",
               base_env={"DATABASE_URL": database_url, "AUTO_MIGRATE": "0"}) as stack:
        gateway = stack.add_gateway(env={"RASA_URL": f"http://127.0.0.1:{free_port()}"})
        stack.start_all()
        first_pid = gateway.pid
        assert http_status(gateway.url + "/healthz") == 200
        assert gateway.rss_kb() > 10_000

        assert gateway.kill() == -signal.SIGKILL
        assert http_status(gateway.url + "/healthz", timeout=1) is None
        gateway.restart()
        assert gateway.pid != first_pid and http_status(gateway.url + "/healthz") == 200
        assert gateway.log_path.read_text().count("===== start") == 2
    assert not gateway.running and not group_alive(gateway.pid)


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    port = free_port()
    script = f"import subprocess, http.server, socketserver; subprocess.Popen(['sleep', '300']); " \
             f"http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port={port}, bind='127.0.0.1')"
    with Stack("harness-group", log_dir=tmp_path) as stack:
        proc = stack.add_process("server", [sys.executable, "-c", script], port=port, health_path="/")
        stack.start_all()
        pgid = proc.pid
        assert group_alive(pgid)
        proc.stop(timeout=5)
        assert not group_alive(pgid)  # the `sleep` child went with its parent


def test_a_process_that_dies_at_start_fails_with_its_log(tmp_path: Path) -> None:
    stack = Stack("harness-fail", log_dir=tmp_path)
    proc = stack.add_process("broken", [sys.executable, "-c", "print('boom: no config'); raise SystemExit(3)"],
                             port=free_port(), health_path="/", ready_timeout=20)
    with pytest.raises(ProcessError) as failure:
        stack.start_all()
    assert "exited with status 3" in str(failure.value) and "boom: no config" in str(failure.value)
    assert not proc.running
