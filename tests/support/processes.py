"""Real processes for end-to-end tests and benchmarks: the action server, Rasa servers and gateways
as subprocesses on free ports of 127.0.0.1.

Each process runs in its own process group (``start_new_session``); stopping it signals the whole
group and waits until the group is empty, so nothing it spawned outlives it. A process started
from the main thread also gets SIGKILL when its starter dies (``PR_SET_PDEATHSIG``): a test run
killed by a timeout does not leave servers behind. Output goes to
``var/test-logs/<stack label>/<name>.log`` (appended across restarts, with a header line per
start). Rasa reads its action server's address from an endpoints file, so each Rasa process gets
its own endpoints file (next to its log) pointing at the action server chosen for it. The
gateway's settings (DATABASE_URL, REDIS_URL, MESSENGER_*, ...) are never inherited from the
caller's environment: only what a Stack is given is set.

    with Stack("e2e", base_env={"DATABASE_URL": url}) as stack:
        actions = stack.add_action_server()
        rasa = stack.add_rasa(actions=actions)
        gw = stack.add_gateway(env={"RASA_URL": rasa.url, ...})
        stack.start_all()          # all start at once; returns when every one answers its health check
        rasa.kill()                # kill -9 of the process group
        rasa.restart()             # same port, same command, same environment

    From asyncio code: `stack.launch()` in the loop's (main) thread, then
    `await asyncio.to_thread(stack.wait_ready, launched)`.
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOG_ROOT = PROJECT_ROOT / "var" / "test-logs"

# The gateway's configuration contract: never inherited from the caller's shell, only set explicitly.
CONFIG_VARIABLES = (
    "HOST", "PORT", "DATABASE_URL", "REDIS_URL", "RASA_URL", "RASA_TOKEN", "PUBLIC_BASE_URL", "SESSION_SECRET",
    "AUTO_MIGRATE", "CONTENT_DIR", "LOG_LEVEL", "HOTLINE_ENV_FILE", "ZALO_SITE_VERIFICATION",
)
CONFIG_PREFIXES = ("MESSENGER_", "ZALO_")
QUIET_ENV = {
    "PYTHONUNBUFFERED": "1",
    "RASA_TELEMETRY_ENABLED": "false",  # no attempt to reach the internet
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
}

PR_SET_PDEATHSIG = 1
_handed_out: set[int] = set()
_running: set["ManagedProcess"] = set()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the thread that started it ends (Linux prctl), so a
    test or benchmark killed by a timeout or a signal does not leave its processes running."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class ProcessError(RuntimeError):
    """A process did not start or did not become healthy in time; the message ends with its log."""


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on, never the same one twice in this process."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise ProcessError("no free port found")


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET url, or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, *, expect: int = 200,
              interval: float = 0.25) -> float:
    """Poll until GET url answers `expect`; returns the seconds it took. Raises ProcessError when
    the time is up or the process exited first."""
    started = time.monotonic()
    while True:
        if proc is not None and proc.poll() is not None:
            raise ProcessError(f"exited with status {proc.returncode} before {url} answered")
        if http_status(url) == expect:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise ProcessError(f"{url} did not answer {expect} within {timeout:.0f} s")
        time.sleep(interval)


def ensure_model(models_dir: Path = PROJECT_ROOT / "models") -> Path:
    """The newest trained model; trains one (`python -m bot train`, cached by data hash) if none."""
    from bot.training import newest_model

    model = newest_model(models_dir)
    if model is None:
        subprocess.run([sys.executable, "-m", "bot", "train"], cwd=PROJECT_ROOT, check=True)
        model = newest_model(models_dir)
    if model is None:
        raise ProcessError(f"no model under {models_dir} after training")
    return model


def clean_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any of the gateway's settings, plus QUIET_ENV."""
    env = {k: v for k, v in (base if base is not None else os.environ).items()
           if k not in CONFIG_VARIABLES and not k.startswith(CONFIG_PREFIXES)}
    env.update(QUIET_ENV)
    return env


@dataclass(eq=False)
class ManagedProcess:
    """One subprocess in its own process group, with a port and a health URL path."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    health_path: str
    log_path: Path
    ready_timeout: float = 120.0
    cwd: Path = PROJECT_ROOT
    proc: subprocess.Popen | None = field(default=None, repr=False)
    starts: int = 0
    last_ready_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "ManagedProcess":
        """Start without waiting (see wait_ready)."""
        if self.running:
            raise ProcessError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            log.write(f"\n===== start {self.starts} of {self.name} at {stamp}: {' '.join(self.cmd)}\n".encode())
            log.flush()
            # The death signal follows the *thread* that forks: only tie the child to the main thread.
            tie = _die_with_parent if threading.current_thread() is threading.main_thread() else None
            self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=tie)
        _running.add(self)
        return self

    def wait_ready(self, timeout: float | None = None) -> float:
        """Block until the health URL answers 200; returns the seconds waited."""
        try:
            self.last_ready_s = wait_http(self.url + self.health_path, timeout or self.ready_timeout, self.proc)
        except ProcessError as exc:
            raise ProcessError(f"{self.name}: {exc}\n--- last lines of {self.log_path}:\n{self.log_tail()}") from None
        return self.last_ready_s

    def start_and_wait(self, timeout: float | None = None) -> "ManagedProcess":
        self.start()
        self.wait_ready(timeout)
        return self

    def signal_group(self, sig: int) -> bool:
        """Send `sig` to the process group; False when it no longer exists."""
        if self.proc is None:
            return False
        try:
            os.killpg(self.proc.pid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to the group, SIGKILL after `timeout`; returns the exit status."""
        if self.proc is None:
            return None
        self.signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.proc.wait(5)
        self.signal_group(signal.SIGKILL)  # children that ignored SIGTERM after their leader exited
        self._wait_group_gone()
        _running.discard(self)
        return self.proc.returncode

    def kill(self) -> int | None:
        """`kill -9` of the whole group, as a crash would end it."""
        if self.proc is None:
            return None
        self.signal_group(signal.SIGKILL)
        self.proc.wait(10)
        self._wait_group_gone()
        _running.discard(self)
        return self.proc.returncode

    def _wait_group_gone(self, timeout: float = 5.0) -> None:
        """Until no member of the group is left (killed children linger until they are reaped)."""
        deadline = time.monotonic() + timeout
        while self.signal_group(0) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self, *, wait: bool = True, timeout: float | None = None) -> "ManagedProcess":
        """Stop if running, start again with the same command, environment and port."""
        if self.running:
            self.stop()
        self.start()
        if wait:
            self.wait_ready(timeout)
        return self

    def rss_kb(self) -> int:
        """Resident memory of the group leader (VmRSS of /proc/<pid>/status), in kB."""
        if not self.running:
            raise ProcessError(f"{self.name} is not running")
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise ProcessError(f"no VmRSS for pid {self.pid}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Stack:
    """A set of processes started and stopped together. Names are unique; add_* choose free ports.

    Processes are started in the order they were added, all without waiting, then each is waited
    for: Rasa, the action server and the gateway load at the same time."""

    def __init__(self, label: str = "stack", *, base_env: Mapping[str, str] | None = None,
                 log_dir: Path | None = None, python: str = sys.executable) -> None:
        self.label = label
        self.log_dir = log_dir or LOG_ROOT / label
        self.base_env = {**clean_environment(), **dict(base_env or {})}
        self.python = python
        self.rasa_bin = str(Path(python).parent / "rasa")
        self.processes: dict[str, ManagedProcess] = {}

    def __getitem__(self, name: str) -> ManagedProcess:
        return self.processes[name]

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def _add(self, name: str, cmd: list[str], env: Mapping[str, str] | None, port: int, health_path: str,
             ready_timeout: float) -> ManagedProcess:
        if name in self.processes:
            raise ValueError(f"a process named {name!r} exists already")
        proc = ManagedProcess(name=name, cmd=cmd, env={**self.base_env, **dict(env or {})}, port=port,
                              health_path=health_path, log_path=self.log_dir / f"{name}.log",
                              ready_timeout=ready_timeout)
        self.processes[name] = proc
        return proc

    def add_action_server(self, name: str = "actions", *, env: Mapping[str, str] | None = None,
                          ready_timeout: float = 120.0) -> ManagedProcess:
        """`rasa run actions`; it reads DATABASE_URL (the content store) from its environment."""
        port = free_port()
        cmd = [self.rasa_bin, "run", "actions", "--actions", "actions", "-p", str(port)]
        return self._add(name, cmd, env, port, "/health", ready_timeout)

    def add_rasa(self, name: str = "rasa", *, actions: ManagedProcess | str, model: Path | None = None,
                 token: str | None = None, env: Mapping[str, str] | None = None,
                 ready_timeout: float = 240.0) -> ManagedProcess:
        """`rasa run --enable-api` on `model` (default: the newest), REST channel only, talking to
        `actions` (a ManagedProcess or a base URL) through its own endpoints file."""
        port = free_port()
        action_base = actions.url if isinstance(actions, ManagedProcess) else actions.rstrip("/")
        endpoints = self.log_dir / f"{name}-endpoints.yml"
        endpoints.parent.mkdir(parents=True, exist_ok=True)
        endpoints.write_text("# written by tests/support/processes.py\n"
                             f"action_endpoint:\n  url: {json.dumps(action_base + '/webhook')}\n")
        cmd = [self.rasa_bin, "run", "--enable-api", "-i", "127.0.0.1", "-p", str(port),
               "-m", str(model or ensure_model()), "--endpoints", str(endpoints),
               "--credentials", str(PROJECT_ROOT / "credentials.yml")]
        health = "/status"
        if token:
            cmd += ["--auth-token", token]
            health += f"?token={token}"
        return self._add(name, cmd, env, port, health, ready_timeout)

    def add_gateway(self, name: str = "gateway", *, env: Mapping[str, str] | None = None,
                    cmd: list[str] | None = None, ready_timeout: float = 90.0) -> ManagedProcess:
        """`python -m bot serve` (or `cmd`, e.g. under a profiler) on a free port; HOST, PORT and
        PUBLIC_BASE_URL are set unless given."""
        port = int((env or {}).get("PORT") or free_port())
        own = {"HOST": "127.0.0.1", "PORT": str(port), "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
        return self._add(name, cmd or [self.python, "-m", "bot", "serve"], {**own, **dict(env or {})}, port,
                         "/healthz", ready_timeout)

    def add_process(self, name: str, cmd: list[str], *, port: int, health_path: str,
                    env: Mapping[str, str] | None = None, ready_timeout: float = 60.0) -> ManagedProcess:
        """Any other process with an HTTP health check (a second tool, a fake in its own process)."""
        return self._add(name, cmd, env, port, health_path, ready_timeout)

    def launch(self, names: Iterable[str] | None = None) -> list[ManagedProcess]:
        """Start the named processes (default: all not running) without waiting. Call it from the
        main thread: processes started there are killed with the caller if it dies."""
        chosen = [self.processes[n] for n in names] if names is not None else \
            [p for p in self.processes.values() if not p.running]
        try:
            for proc in chosen:
                proc.start()
        except BaseException:
            self.stop_all()
            raise
        return chosen

    def wait_ready(self, processes: Iterable[ManagedProcess] | None = None) -> dict[str, float]:
        """Wait until each is healthy (may run in a worker thread); on failure stop everything."""
        try:
            return {proc.name: proc.wait_ready() for proc in (processes or self.processes.values())}
        except BaseException:
            self.stop_all()
            raise

    def start_all(self, names: Iterable[str] | None = None) -> dict[str, float]:
        """launch() then wait_ready(): all load at once. Returns the seconds each took to become
        healthy. On failure everything is stopped."""
        return self.wait_ready(self.launch(names))

    def stop_all(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()


def command(cmd: list[str], env: Mapping[str, str], *, stdin: str | None = None,
            timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run a one-shot command of the project (`python -m bot migrate`, `users add`) with a clean
    environment plus `env`; raises ProcessError with its output when it fails."""
    full = {**clean_environment(), **dict(env)}
    result = subprocess.run(cmd, cwd=PROJECT_ROOT, env=full, input=stdin, text=True, capture_output=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise ProcessError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@atexit.register
def _kill_leftovers() -> None:
    """A test run that ends abruptly still takes its processes with it."""
    for proc in list(_running):
        proc.signal_group(signal.SIGKILL)
