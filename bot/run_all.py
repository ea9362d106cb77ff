"""`make run`: the action server, the Rasa server and the gateway as one command.

Each process's output is shown with its name in front; Ctrl-C (or one process dying) stops all
three. Rasa listens on 127.0.0.1 only: the gateway is the one public surface.
"""
from __future__ import annotations

import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from bot.settings import PROJECT_ROOT, Settings
from bot.training import newest_model

ACTIONS_PORT = 5055


def _pipe(name: str, proc: subprocess.Popen) -> None:
    for line in iter(proc.stdout.readline, b""):
        sys.stdout.write(f"{name:8} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def commands(settings: Settings, python: str = sys.executable) -> list[tuple[str, list[str]]]:
    rasa = str(Path(python).parent / "rasa")
    port = urlparse(settings.rasa_url).port or 5005
    rasa_cmd = [rasa, "run", "--enable-api", "-i", "127.0.0.1", "-p", str(port), "-m", "models",
                "--endpoints", "endpoints.yml", "--credentials", "credentials.yml"]
    if settings.rasa_token:
        rasa_cmd += ["--auth-token", settings.rasa_token]
    return [("actions", [rasa, "run", "actions", "-p", str(ACTIONS_PORT)]),
            ("rasa", rasa_cmd),
            ("gateway", [python, "-m", "bot", "serve"])]


def run_all(settings: Settings) -> int:
    if newest_model(PROJECT_ROOT / "models") is None:
        print("no trained model under models/: run `make run` (it trains) or `python -m bot train`")
        return 2
    procs: list[tuple[str, subprocess.Popen]] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not settings.rasa_token:  # Rasa's HTTP API (model loading, tracker events) is never open
        env["RASA_TOKEN"] = secrets.token_urlsafe(24)
        settings = dataclasses.replace(settings, rasa_token=env["RASA_TOKEN"])
    for name, cmd in commands(settings):
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        threading.Thread(target=_pipe, args=(name, proc), daemon=True).start()
        procs.append((name, proc))
    print(f"starting: gateway on http://{settings.host}:{settings.port} (console at /console), "
          f"Rasa on {settings.rasa_url}, actions on :{ACTIONS_PORT}. Ctrl-C stops all.", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    code = 0
    while not stop.is_set():
        for name, proc in procs:
            if proc.poll() is not None:
                print(f"{name} exited with status {proc.returncode}; stopping the others", flush=True)
                code = proc.returncode or 1
                stop.set()
        time.sleep(0.5)
    for _, proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + 15
    for _, proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return code
