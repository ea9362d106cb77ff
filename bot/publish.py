"""Publishing example-question changes: validate, train, test, load — or refuse and keep serving.

A publish takes the pending drafts (``content_example_change``), applies them to a **copy** of the
training data (``config.yml``, ``domain.yml``, ``nlu_data/``) in a work directory, and then:

1. ``validating`` — our own checks (every intent has at least ``min_examples`` different
   examples; no question under two intents; no held-out message in training; the answers of a
   new topic pass the content rules), then ``rasa data validate --fail-on-warnings`` on the
   copy; any warning Rasa prints refuses the publish (Rasa 3.6 exits 0 on some of them);
2. ``training`` — ``rasa train`` in a subprocess, in the background, with progress parsed from
   its output (components, DIET epochs). The model is named after the hash of its training data
   (:func:`bot.training.data_hash`); a model for the same data is reused, not trained again;
3. ``testing`` — the NLU gate on the held-out set (``tests/nlu/heldout.yml``, in a subprocess:
   the gateway never loads TensorFlow): the candidate's risk recall may not fall below the
   serving model's, nor below ``min_risk_recall`` (0.98);
4. ``loading`` — the model goes into ``models/`` and into the running Rasa server through its
   model API (``PUT {RASA_URL}/model {"model_file": <absolute path>}``, ``?token=`` when set);
   a new topic's answers go into the content store first. Only then is the accepted data
   written back over the repository's files (so git shows it) and the drafts marked published.

Any refusal (``refused``) or error (``failed``) leaves the repository's files, the content store
and the serving model as they were, and says why. Every model stays in ``models/`` for rollback
(:meth:`Publisher.rollback` loads an earlier file). One publish at a time: a second gets
:class:`PublishBusy` (HTTP 409). The job row (``ops_publish_job``) carries the state, the
progress (steps with their seconds, a percentage), the gate's figures and the error.

Command line::

    python -m bot.publish evaluate --heldout tests/nlu/heldout.yml --out result.json MODEL [MODEL ...]
    python -m bot.publish measure [--rasa-url URL]   # time a publish (docs/CONTENT.md)

``evaluate`` is what the gate runs in its subprocess; ``measure`` publishes one added example on
a temporary copy of the repository against a running Rasa server and prints the seconds of each
step (the checkout is not touched; the model Rasa served before is loaded back afterwards).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from bot.dbutil import lock_across_replicas
from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "validating", "training", "testing", "loading")
FINAL_STATES = ("done", "refused", "failed")
STEPS: tuple[tuple[str, str], ...] = (
    ("validating", "Kiểm tra dữ liệu (validate the training data)"),
    ("training", "Huấn luyện mô hình (train the model)"),
    ("testing", "Kiểm thử NLU trên tập giữ lại (NLU gate on the held-out set)"),
    ("loading", "Nạp vào Rasa (load into Rasa)"),
)
# Where each step starts and ends on the percentage bar.
SPAN = {"validating": (0, 10), "training": (10, 75), "testing": (75, 95), "loading": (95, 100)}
GATE_KEYS = ("risk_recall", "risk_support", "false_escalation_rate", "ordinary_support", "macro_f1", "accuracy", "n")
TRAINING_FILES = ("config.yml", "domain.yml")
TRAINING_DIR = "nlu_data"
RULES_SEED = "responses.yml"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EPOCH = re.compile(r"Epochs:\s*(\d+)%\|[^|]*\|\s*(\d+)/(\d+)")
_COMPONENT = re.compile(r"Starting to train component '([^']+)'")
_WARNING = re.compile(r"(?:UserWarning|FutureWarning):\s*(.*)$")
_LOG_LEVEL = re.compile(r"\s(ERROR|CRITICAL)\s+(\S+)\s+-\s+(.*)$")
_EPOCHS_LINE = re.compile(r"^(\s*epochs:\s*)\d+(.*)$", re.MULTILINE)


class PublishBusy(Exception):
    """Another publish is running."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"publish {job_id} is running")
        self.job_id = job_id


class NothingToPublish(Exception):
    pass


class Refused(Exception):
    """The change is not safe to serve; ``message`` says why, for content staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StepFailed(Exception):
    """Something broke (training crashed, Rasa refused the model); ``message`` for staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


ProgressFn = Callable[[float, str], None]


class Steps(Protocol):
    """What a publish does outside this process. :class:`RasaSteps` is the real thing; tests
    replace it (e.g. a stubbed training step) through ``PublishConfig.steps``."""

    async def validate(self, data_dir: Path) -> list[str]:
        """Problems Rasa's validation reports (empty: valid)."""

    async def train(self, data_dir: Path, out_dir: Path, name: str, progress: ProgressFn) -> Path:
        """Train on ``data_dir``; returns the model file (``out_dir/<name>.tar.gz``)."""

    async def evaluate(self, models: Sequence[Path]) -> dict[str, dict[str, Any]]:
        """The gate's figures per model path (keys as :func:`bot.nlu_eval.evaluate`)."""

    async def load(self, model: Path) -> None:
        """Make the Rasa server serve ``model``; StepFailed when it does not."""

    async def serving(self) -> str | None:
        """The file name of the model Rasa serves (None: unknown)."""


@dataclass
class PublishConfig:
    root: Path  # the checkout whose config.yml, domain.yml and nlu_data/ are the accepted data
    models_dir: Path
    work_dir: Path
    heldout: Path
    content_dir: Path
    intents_doc: Path | None
    rasa_url: str
    rasa_token: str | None = None
    rasa_model_urls: tuple[str, ...] = ()  # every Rasa replica the model goes into; () = rasa_url
    min_examples: int = 10
    min_risk_recall: float = 0.98
    epochs: int | None = None  # HOTLINE_PUBLISH_EPOCHS: fewer DIET epochs (tests only)
    train_config: Path | None = None  # HOTLINE_PUBLISH_CONFIG: another config.yml (tests only)
    python: str = sys.executable
    stale_after_s: float = 180.0
    heartbeat_s: float = 10.0
    rasa_timeout_s: float = 300.0
    steps: Steps | None = None

    @classmethod
    def from_settings(cls, settings: Any, env: Mapping[str, str] | None = None) -> "PublishConfig":
        env = os.environ if env is None else env
        epochs = (env.get("HOTLINE_PUBLISH_EPOCHS") or "").strip()
        train_config = (env.get("HOTLINE_PUBLISH_CONFIG") or "").strip()
        root = PROJECT_ROOT
        return cls(root=root, models_dir=root / "models", work_dir=root / "var" / "publish",
                   heldout=root / "tests" / "nlu" / "heldout.yml", content_dir=Path(settings.content_dir),
                   intents_doc=root / "docs" / "INTENTS.md", rasa_url=settings.rasa_url.rstrip("/"),
                   rasa_token=settings.rasa_token, rasa_model_urls=settings.rasa_model_urls,
                   epochs=int(epochs) if epochs else None,
                   train_config=Path(train_config) if train_config else None)


# ------------------------------------------------------------------------------------ helpers

def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def iso_time(value: datetime | None) -> str | None:
    value = _aware(value)
    return value.isoformat() if value else None


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_atomically(src: Path, dst: Path) -> None:
    _write_atomically(dst, src.read_text(encoding="utf-8"))


def summarise(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of an evaluation that the gate and the pages show."""
    out = {k: metrics.get(k) for k in GATE_KEYS}
    missed = metrics.get("missed_risk")
    out["missed_risk"] = len(missed) if isinstance(missed, list) else int(missed or 0)
    return out


def gate_decision(candidate: Mapping[str, Any], serving: Mapping[str, Any] | None, min_risk_recall: float,
                  serving_name: str | None) -> dict[str, Any]:
    """Pass when the candidate's risk recall is at least the serving model's and the floor."""
    floor = float(min_risk_recall)
    base = serving.get("risk_recall") if serving else None
    required = max(floor, float(base)) if base is not None else floor
    recall = candidate.get("risk_recall")
    reasons: list[str] = []
    if recall is None:
        reasons.append("the held-out set has no risk messages: risk recall cannot be measured")
    else:
        if recall + 1e-9 < floor:
            reasons.append(f"risk recall {recall:.3f} is below the floor of {floor:.2f}")
        if base is not None and recall + 1e-9 < float(base):
            reasons.append(f"risk recall {recall:.3f} is below the serving model's {float(base):.3f}")
    return {"candidate": dict(candidate), "serving": dict(serving) if serving else None, "serving_model": serving_name,
            "min_risk_recall": floor, "required_risk_recall": required, "passed": not reasons, "reasons": reasons}


def set_epochs(config_text: str, epochs: int) -> str:
    return _EPOCHS_LINE.sub(lambda m: f"{m.group(1)}{epochs}{m.group(2)}", config_text)


def copy_training_data(root: Path, dest: Path, epochs: int | None = None, config: Path | None = None) -> None:
    """config.yml, domain.yml and nlu_data/ of ``root`` into ``dest`` (the publish's copy);
    ``config`` replaces config.yml and ``epochs`` the DIET epochs (both for tests only)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in TRAINING_FILES:
        shutil.copy2(root / name, dest / name)
    if config is not None:
        shutil.copy2(config, dest / "config.yml")
    shutil.copytree(root / TRAINING_DIR, dest / TRAINING_DIR, dirs_exist_ok=False)
    if epochs:
        path = dest / "config.yml"
        path.write_text(set_epochs(path.read_text(encoding="utf-8"), epochs), encoding="utf-8")


def validation_problems(output: str, returncode: int) -> list[str]:
    """Warnings and errors in ``rasa data validate``'s output (any one refuses)."""
    problems: list[str] = []
    for raw in output.splitlines():
        line = _ANSI.sub("", raw).strip()
        m = _WARNING.search(line)
        if m and m.group(1).strip():
            text = m.group(1).strip()
            if "Deprecat" in text or "pkg_resources" in text:
                continue
            problems.append(text)
            continue
        m = _LOG_LEVEL.search(line)
        if m:
            problems.append(m.group(3).strip())
    if returncode != 0 and not problems:
        tail = [_ANSI.sub("", line).strip() for line in output.splitlines() if line.strip()][-3:]
        problems.append(f"rasa data validate exited with status {returncode}: " + " / ".join(tail))
    seen: set[str] = set()
    return [p for p in problems if not (p in seen or seen.add(p))]


# ------------------------------------------------------------------------------------ subprocesses

def _subprocess_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("RASA_CACHE_DIRECTORY", str(root / ".rasa" / "cache"))
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def run_process(cmd: Sequence[str], cwd: Path, env: Mapping[str, str],
                      on_line: Callable[[str], None] | None = None) -> tuple[int, str]:
    """Run a command, feeding each output line (``\\r`` or ``\\n`` ended) to ``on_line``.

    Cancelling stops the whole process group (SIGTERM, then SIGKILL after 5 s)."""
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=str(cwd), env=dict(env), stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                start_new_session=True)
    lines: list[str] = []
    buffer = ""
    try:
        assert proc.stdout is not None
        while True:
            chunk = await proc.stdout.read(8192)
            if not chunk:
                break
            buffer += chunk.decode("utf-8", errors="replace")
            parts = re.split(r"[\r\n]", buffer)
            buffer = parts.pop()
            for part in parts:
                if part.strip():
                    lines.append(part)
                    if on_line:
                        on_line(part)
            if len(lines) > 4000:
                del lines[:2000]
        if buffer.strip():
            lines.append(buffer)
            if on_line:
                on_line(buffer)
        code = await proc.wait()
    except BaseException:
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except asyncio.TimeoutError:
                    os.killpg(proc.pid, signal.SIGKILL)
                    await proc.wait()
            except ProcessLookupError:
                pass
        raise
    return code, "\n".join(lines)


class TrainingProgress:
    """Turns ``rasa train`` output into a fraction of the training step and a short label."""

    def __init__(self, report: ProgressFn) -> None:
        self.report = report
        self.components = 0
        self.fraction = 0.0

    def __call__(self, line: str) -> None:
        line = _ANSI.sub("", line)
        m = _EPOCH.search(line)
        if m:
            done, total = int(m.group(2)), max(1, int(m.group(3)))
            self._set(0.30 + 0.60 * done / total, f"DIETClassifier: epoch {done}/{total}")
            return
        m = _COMPONENT.search(line)
        if m:
            self.components += 1
            name = m.group(1)
            if name == "DIETClassifier":
                self._set(0.30, "DIETClassifier")
            elif name == "RulePolicy":
                self._set(0.92, "RulePolicy")
            else:
                self._set(min(0.28, 0.04 + 0.05 * self.components), name)
            return
        if "Your Rasa model is trained" in line:
            self._set(1.0, "saved")

    def _set(self, fraction: float, label: str) -> None:
        self.fraction = max(self.fraction, min(1.0, fraction))
        self.report(self.fraction, label)


class RasaSteps:
    """The real steps: Rasa's CLI in subprocesses and the Rasa server's HTTP API."""

    def __init__(self, config: PublishConfig, http: Any) -> None:
        self.config = config
        self.http = http

    def _bin(self, name: str) -> str:
        return str(Path(self.config.python).parent / name)

    async def validate(self, data_dir: Path) -> list[str]:
        cmd = [self._bin("rasa"), "data", "validate", "--data", TRAINING_DIR, "--domain", "domain.yml",
               "--config", "config.yml", "--fail-on-warnings"]
        code, output = await run_process(cmd, data_dir, _subprocess_env(self.config.root))
        return validation_problems(output, code)

    async def train(self, data_dir: Path, out_dir: Path, name: str, progress: ProgressFn) -> Path:
        cmd = [self._bin("rasa"), "train", "--data", TRAINING_DIR, "--config", "config.yml", "--domain", "domain.yml",
               "--out", str(out_dir), "--fixed-model-name", name, "--skip-validation"]
        code, output = await run_process(cmd, data_dir, _subprocess_env(self.config.root), TrainingProgress(progress))
        target = out_dir / f"{name}.tar.gz"
        if code != 0 or not target.exists():
            errors = [m.group(3) for m in map(_LOG_LEVEL.search, output.splitlines()) if m]
            tail = errors[-2:] or [line.strip() for line in output.splitlines() if line.strip()][-2:]
            raise StepFailed(f"training failed (exit status {code}): " + " / ".join(_ANSI.sub("", t) for t in tail))
        return target

    async def evaluate(self, models: Sequence[Path]) -> dict[str, dict[str, Any]]:
        with tempfile.TemporaryDirectory(prefix="gate-", dir=self.config.work_dir) as tmp:
            out = Path(tmp) / "gate.json"
            cmd = [self.config.python, "-m", "bot.publish", "evaluate", "--heldout", str(self.config.heldout),
                   "--out", str(out), *[str(m) for m in models]]
            code, output = await run_process(cmd, PROJECT_ROOT, _subprocess_env(self.config.root))
            if code != 0 or not out.exists():
                tail = [line.strip() for line in output.splitlines() if line.strip()][-2:]
                raise StepFailed(f"the NLU test failed (exit status {code}): " + " / ".join(tail))
            return json.loads(out.read_text(encoding="utf-8"))

    def _params(self) -> dict[str, str] | None:
        return {"token": self.config.rasa_token} if self.config.rasa_token else None

    async def load(self, model: Path) -> None:
        """Into every Rasa replica (RASA_MODEL_URLS, else RASA_URL). When one refuses, those that
        took the model already go back to the one they served, so all keep serving the same."""
        urls = self.config.rasa_model_urls or (self.config.rasa_url,)
        before = await self.serving()
        previous = self.config.models_dir / before if before else None
        done: list[str] = []
        for url in urls:
            try:
                await self._load_into(url, model)
            except StepFailed as exc:
                if len(urls) == 1:
                    raise
                went_back = bool(done) and previous is not None and previous.exists()
                for loaded in done if went_back else ():
                    try:
                        await self._load_into(loaded, previous)
                    except StepFailed as back:
                        logger.error("could not load %s back into %s: %s", previous.name, loaded, back)
                raise StepFailed(f"{exc} ({url}; {len(done)} of {len(urls)} replicas had loaded it"
                                 f"{' and went back' if went_back else ''})") from exc
            done.append(url)

    async def _load_into(self, url: str, model: Path) -> None:
        import aiohttp

        try:
            async with self.http.put(f"{url}/model", json={"model_file": str(model.resolve())},
                                     params=self._params(),
                                     timeout=aiohttp.ClientTimeout(total=self.config.rasa_timeout_s)) as r:
                if r.status >= 300:
                    body = (await r.text())[:300]
                    raise StepFailed(f"Rasa refused the model (HTTP {r.status}): {body}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise StepFailed(f"Rasa could not be reached at {url} ({type(exc).__name__}); "
                             "is it running with --enable-api?") from exc

    async def serving(self) -> str | None:
        import aiohttp

        try:
            async with self.http.get(f"{self.config.rasa_url}/status", params=self._params(),
                                     timeout=aiohttp.ClientTimeout(total=5)) as r:
                if r.status != 200:
                    return None
                body = await r.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return None
        name = body.get("model_file") if isinstance(body, dict) else None
        return Path(name).name if isinstance(name, str) and name else None


# ------------------------------------------------------------------------------------ the publisher

@dataclass
class _Job:
    id: int
    started: float = field(default_factory=time.monotonic)
    progress: dict[str, Any] = field(default_factory=dict)
    last_write: float = 0.0
    gate: dict[str, Any] | None = None
    flush: asyncio.Task | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    step_started: float = 0.0


class Publisher:
    """Runs publishes in the background of the gateway process (one at a time)."""

    def __init__(self, config: PublishConfig, sessions: Any, http: Any, owner: str) -> None:
        self.config = config
        self.sessions = sessions
        self.http = http
        self.owner = owner
        self.steps: Steps = config.steps or RasaSteps(config, http)
        self._lock = asyncio.Lock()
        self._runs: dict[asyncio.Task, _Job] = {}
        self._tasks: set[asyncio.Task] = set()

    # -- jobs

    async def active_job(self, session: Any) -> Any | None:
        """The running publish, if any (one whose heartbeat stopped counts as dead)."""
        from sqlalchemy import select

        from bot.db.models import PublishJob

        rows = (await session.scalars(select(PublishJob).where(PublishJob.state.in_(ACTIVE_STATES))
                                      .order_by(PublishJob.id))).all()
        now = utcnow()
        for row in rows:
            beat = _parse_time((row.progress or {}).get("heartbeat")) if isinstance(row.progress, dict) else None
            beat = beat or _aware(row.created_at)
            if beat and (now - beat).total_seconds() <= self.config.stale_after_s:
                return row
        return None

    async def recover(self) -> int:
        """Mark publishes whose process died (no heartbeat) as failed. Returns how many."""
        from sqlalchemy import select

        from bot.db.models import PublishJob

        async with self.sessions() as session:
            rows = (await session.scalars(select(PublishJob).where(PublishJob.state.in_(ACTIVE_STATES)))).all()
            alive = await self.active_job(session)
            n = 0
            for row in rows:
                if alive is not None and row.id == alive.id:
                    continue
                row.state, row.error, row.finished_at = "failed", "interrupted: the gateway stopped during the publish", utcnow()
                n += 1
            await session.commit()
        if n:
            logger.warning("%d interrupted publish job(s) marked failed", n)
        return n

    async def start(self, account: Any) -> int:
        """Queue a publish of the pending drafts and start it; PublishBusy / NothingToPublish."""
        from sqlalchemy import select

        from bot.db.models import ExampleChange, PublishJob

        async with self._lock:
            async with self.sessions() as session:
                await lock_across_replicas(session, "publish")  # until the commit: one check-and-queue at a time
                active = await self.active_job(session)
                if active is not None:
                    raise PublishBusy(active.id)
                pending = (await session.scalars(select(ExampleChange.id).where(ExampleChange.state == "pending")
                                                 .order_by(ExampleChange.id))).all()
                if not pending:
                    raise NothingToPublish()
                progress = self._initial_progress(list(pending))
                job = PublishJob(state="queued", progress=progress, created_by=account.username, created_at=utcnow())
                session.add(job)
                await session.flush()
                other = await self.active_job(session)  # another replica may have queued one just now
                if other is not None and other.id != job.id:
                    await session.rollback()
                    raise PublishBusy(other.id)
                from bot.auth import audit

                await audit(session, account, "publish_started", str(job.id), {"changes": list(pending)})
                await session.commit()
                job_id = job.id
        job = _Job(job_id, progress=self._initial_progress(list(pending)))
        task = asyncio.create_task(self._run(job, list(pending)), name=f"publish-{job_id}")
        self._runs[task] = job
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda t: self._runs.pop(t, None))
        return job_id

    def _initial_progress(self, changes: list[int]) -> dict[str, Any]:
        return {"percent": 0, "step": "queued", "detail": "", "changes": changes, "owner": self.owner,
                "heartbeat": utcnow().isoformat(),
                "steps": [{"name": name, "label": label, "state": "waiting", "seconds": None} for name, label in STEPS]}

    async def wait(self) -> None:
        """Wait for the running publish (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop a running publish (recorded as failed, its subprocess stopped); one that is
        already recording its outcome is let finish, so no database write is cut off."""
        for task, job in list(self._runs.items()):
            if not job.finished.is_set():
                task.cancel()
        await self.wait()

    # -- progress

    async def _save(self, job: _Job, *, force: bool = True, **fields: Any) -> None:
        from bot.db.models import PublishJob

        now = time.monotonic()
        if not force and now - job.last_write < 1.0:
            return
        job.last_write = now
        job.progress["heartbeat"] = utcnow().isoformat()
        async with self.sessions() as session:
            row = await session.get(PublishJob, job.id)
            if row is None:
                return
            row.progress = json.loads(json.dumps(job.progress))
            for key, value in fields.items():
                setattr(row, key, value)
            await session.commit()

    def _step(self, job: _Job, name: str) -> dict[str, Any]:
        return next(s for s in job.progress["steps"] if s["name"] == name)

    async def _begin(self, job: _Job, name: str, detail: str = "") -> float:
        step = self._step(job, name)
        step["state"] = "running"
        job.progress.update(step=name, detail=detail, percent=SPAN[name][0])
        job.step_started = time.monotonic()
        await self._save(job, state=name)
        return job.step_started

    async def _end(self, job: _Job, name: str, started: float, state: str = "done", detail: str | None = None) -> None:
        step = self._step(job, name)
        step["state"], step["seconds"] = state, round(time.monotonic() - started, 1)
        if detail is not None:
            step["detail"] = detail
        if state == "done":
            job.progress["percent"] = SPAN[name][1]
        await self._save(job)

    def _fraction(self, job: _Job, name: str, fraction: float, label: str) -> None:
        """Progress within a step: written at most once a second, the latest state last."""
        low, high = SPAN[name]
        job.progress["percent"] = round(low + (high - low) * max(0.0, min(1.0, fraction)))
        job.progress["detail"] = label
        if job.flush is None or job.flush.done():
            job.flush = asyncio.get_running_loop().create_task(self._flush(job))
            self._tasks.add(job.flush)
            job.flush.add_done_callback(self._tasks.discard)

    async def _flush(self, job: _Job) -> None:
        await asyncio.sleep(max(0.0, job.last_write + 1.0 - time.monotonic()))
        if not job.finished.is_set():
            await self._save(job)

    async def _heartbeat(self, job: _Job) -> None:
        """Show the publish is alive while a long step runs. Stopped through ``job.finished``, never
        cancelled, so no database write is ever cut off half-way."""
        while not job.finished.is_set():
            try:
                await asyncio.wait_for(job.finished.wait(), self.config.heartbeat_s)
            except asyncio.TimeoutError:
                await self._save(job, force=False)

    # -- the run

    async def _run(self, job: _Job, change_ids: list[int]) -> None:
        job_id = job.id
        work = self.config.work_dir / f"job-{job_id}"
        beat = asyncio.create_task(self._heartbeat(job))
        state, error, model_path = "failed", None, None
        try:
            model_path = await self._pipeline(job, work, change_ids)
            state = "done"
            job.progress.update(percent=100, step="done", detail="")
        except Refused as exc:
            state, error = "refused", exc.message
        except StepFailed as exc:
            state, error = "failed", exc.message
        except asyncio.CancelledError:
            state, error = "failed", "stopped: the gateway shut down during the publish; nothing was changed"
            raise
        except Exception as exc:  # report, never crash the gateway
            logger.exception("publish %d failed", job_id)
            state, error = "failed", f"unexpected error ({type(exc).__name__}); nothing was changed"
        finally:
            job.finished.set()
            await asyncio.gather(beat, *([job.flush] if job.flush is not None else []), return_exceptions=True)
            for step in job.progress["steps"]:
                if step["state"] == "running":
                    step["state"] = "refused" if state == "refused" else "failed"
                    step["seconds"] = round(time.monotonic() - job.step_started, 1)
            job.progress["step"] = state
            fields: dict[str, Any] = {"state": state, "error": error, "finished_at": utcnow()}
            if job.gate is not None:
                fields["gate"] = job.gate
            if model_path is not None:
                fields["model_path"] = str(model_path)
            await asyncio.to_thread(shutil.rmtree, work, True)
            try:
                await self._finish(job, fields)
            except Exception:
                logger.exception("publish %d: could not record the outcome", job_id)
            logger.info("publish %d: %s", job_id, state)

    async def _finish(self, job: _Job, fields: dict[str, Any]) -> None:
        """The outcome and its audit entry, in one transaction (a client that sees the final
        state sees the audit entry too)."""
        from bot.auth import audit
        from bot.db.models import PublishJob

        job.progress["heartbeat"] = utcnow().isoformat()
        async with self.sessions() as session:
            row = await session.get(PublishJob, job.id)
            if row is not None:
                row.progress = json.loads(json.dumps(job.progress))
                for key, value in fields.items():
                    setattr(row, key, value)
            await audit(session, None, f"publish_{fields['state']}", str(job.id),
                        {"error": fields.get("error"), "model": Path(fields["model_path"]).name
                         if fields.get("model_path") else None})
            await session.commit()

    async def _changes(self, change_ids: list[int]) -> list[Any]:
        from sqlalchemy import select

        from bot.admin.training_data import Change
        from bot.db.models import ExampleChange

        async with self.sessions() as session:
            rows = (await session.scalars(select(ExampleChange).where(ExampleChange.id.in_(change_ids))
                                          .order_by(ExampleChange.id))).all()
        return [Change(r.op, r.intent, r.text, r.old_text, r.detail, r.id) for r in rows if r.state == "pending"]

    async def _pipeline(self, job: _Job, work: Path, change_ids: list[int]) -> Path:
        from bot.admin.training_data import DataError, TrainingFiles, data_problems, load_heldout
        from bot.training import data_hash

        cfg = self.config
        # ---------------------------------------------------------------- validating
        started = await self._begin(job, "validating", "applying the changes to a copy of the training data")
        changes = await self._changes(change_ids)
        if not changes:
            raise Refused("the pending changes were discarded before the publish started")
        shutil.rmtree(work, ignore_errors=True)
        data_dir = work / "data"
        repo_hash = await asyncio.to_thread(data_hash, cfg.root)
        await asyncio.to_thread(copy_training_data, cfg.root, data_dir, cfg.epochs, cfg.train_config)
        files = await asyncio.to_thread(TrainingFiles.load, cfg.root)
        try:
            for change in changes:
                files.apply(change)
        except DataError as exc:
            raise Refused(exc.message) from exc
        await asyncio.to_thread(files.write, data_dir)
        written = await asyncio.to_thread(TrainingFiles.load, data_dir)
        problems = data_problems(written, await asyncio.to_thread(load_heldout, cfg.heldout), cfg.min_examples)
        topics = [c for c in changes if c.op == "add_topic"]
        problems += await self._answer_problems(topics)
        if problems:
            raise Refused("; ".join(problems[:8]) + (f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""))
        job.progress["detail"] = "rasa data validate"
        await self._save(job)
        problems = await self.steps.validate(data_dir)
        if problems:
            raise Refused("rasa data validate: " + "; ".join(problems[:8]))
        await self._end(job, "validating", started)

        # ---------------------------------------------------------------- training
        started = await self._begin(job, "training")
        name = f"hotline-{await asyncio.to_thread(data_hash, data_dir)}"
        existing = self._existing_model(name)
        if existing is not None:
            candidate = existing
            await self._end(job, "training", started, detail="a model for exactly this data exists: not trained again")
        else:
            out_dir = work / "out"
            out_dir.mkdir(parents=True, exist_ok=True)
            candidate = await self.steps.train(data_dir, out_dir, name,
                                               lambda f, label: self._fraction(job, "training", f, label))
            await self._end(job, "training", started)

        # ---------------------------------------------------------------- testing
        started = await self._begin(job, "testing", "held-out set")
        serving_name = await self.steps.serving()
        baseline = self._baseline(serving_name)
        figures = await self._evaluate([candidate] + ([baseline] if baseline is not None else []))
        gate = gate_decision(figures[str(candidate)], figures.get(str(baseline)) if baseline else None,
                             cfg.min_risk_recall, baseline.name if baseline else None)
        gate["candidate_model"] = candidate.name
        job.gate = gate
        await self._save(job, gate=gate)
        if not gate["passed"]:
            raise Refused("NLU gate: " + "; ".join(gate["reasons"]) + ". The serving model stays.")
        await self._end(job, "testing", started)

        # ---------------------------------------------------------------- loading
        started = await self._begin(job, "loading", "Rasa model API")
        if await asyncio.to_thread(data_hash, cfg.root) != repo_hash:
            raise StepFailed("the repository's training data changed during the publish (someone edited the files); "
                             "publish again")
        target = cfg.models_dir / candidate.name
        placed = not target.exists()
        cfg.models_dir.mkdir(parents=True, exist_ok=True)
        if placed and candidate.is_relative_to(work):
            await asyncio.to_thread(shutil.move, str(candidate), str(target))
        elif placed:  # from the model cache: copied, the cache keeps its file
            await asyncio.to_thread(shutil.copy2, candidate, target)
        created = await self._create_answers(topics, job)
        try:
            await self.steps.load(target)
            now_serving = await self.steps.serving()
            if now_serving is not None and now_serving != target.name:
                raise StepFailed(f"Rasa reports it serves {now_serving}, not {target.name}")
        except BaseException:
            await self._undo_answers(created)
            if placed:
                target.unlink(missing_ok=True)
            raise
        os.utime(target)  # newest: `rasa run -m models` loads it after a restart too
        try:
            await asyncio.to_thread(self._write_back, data_dir, files.changed, topics)
        except Exception as exc:
            logger.exception("publish %d: writing the data back failed", job.id)
            if baseline is not None:
                try:
                    await self.steps.load(baseline)
                    os.utime(baseline)
                except StepFailed:
                    logger.error("publish %d: could not reload %s", job.id, baseline.name)
            raise StepFailed(f"the model was loaded but the training data could not be written back "
                             f"({type(exc).__name__}); the previous model was loaded again") from exc
        await self._mark_published(job.id, [c.id for c in changes if c.id is not None])
        await self._end(job, "loading", started)
        return target

    def _existing_model(self, name: str) -> Path | None:
        from bot.training import cache_dir

        for candidate in (self.config.models_dir / f"{name}.tar.gz", cache_dir() / f"{name}.tar.gz"):
            if candidate.exists():
                return candidate
        return None

    def _baseline(self, serving_name: str | None) -> Path | None:
        """The serving model's file (or, if Rasa cannot say, the newest in models/)."""
        if serving_name:
            path = self.config.models_dir / serving_name
            if path.exists():
                return path
        models = sorted(self.config.models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
        return models[-1] if models else None

    # -- the gate's figures, cached per model file

    def _metrics_path(self, model: Path) -> Path:
        return self.config.work_dir / "metrics" / f"{model.name}.json"

    def cached_metrics(self, model: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(self._metrics_path(model).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        try:
            if data.get("size") != model.stat().st_size or data.get("heldout") != _file_stamp(self.config.heldout):
                return None
        except OSError:
            return None
        return data.get("metrics")

    async def _evaluate(self, models: list[Path]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        todo = []
        for model in models:
            cached = self.cached_metrics(model)
            if cached is not None:
                out[str(model)] = cached
            else:
                todo.append(model)
        if todo:
            results = await self.steps.evaluate(todo)
            for model in todo:
                metrics = results.get(str(model))
                if metrics is None:
                    raise StepFailed(f"the NLU test gave no figures for {model.name}")
                summary = summarise(metrics)
                out[str(model)] = summary
                path = self._metrics_path(model)
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_atomically(path, json.dumps({"size": model.stat().st_size, "metrics": summary,
                                                    "heldout": _file_stamp(self.config.heldout)}))
        return out

    # -- a new topic's answers

    async def _answer_problems(self, topics: list[Any]) -> list[str]:
        from bot import content

        problems: list[str] = []
        async with self.sessions() as session:
            for change in topics:
                key = f"utter_{change.intent}"
                answers = (change.detail or {}).get("answers") or {}
                for lang in content.LANGS:
                    try:
                        await content.check_response(session, key, lang, answers.get(lang, ""), seed={key: {}})
                    except content.ContentError as exc:
                        problems.append(f"answer {key}/{lang}: {exc.message}")
        return problems

    async def _create_answers(self, topics: list[Any], job: _Job) -> list[tuple[str, str]]:
        from sqlalchemy import select

        from bot import content
        from bot.db.models import Response

        created: list[tuple[str, str]] = []
        for change in topics:
            key = f"utter_{change.intent}"
            answers = (change.detail or {}).get("answers") or {}
            for lang in content.LANGS:
                async with self.sessions() as session:
                    exists = await session.scalar(select(Response.id).where(Response.key == key, Response.lang == lang))
                    await content.update_response(session, key, lang, answers[lang], f"publish {job.id}",
                                                  seed={key: {}})
                if not exists:
                    created.append((key, lang))
        return created

    async def _undo_answers(self, created: list[tuple[str, str]]) -> None:
        from sqlalchemy import delete

        from bot.db.models import Response, ResponseVersion

        if not created:
            return
        async with self.sessions() as session:
            for key, lang in created:
                await session.execute(delete(Response).where(Response.key == key, Response.lang == lang))
                await session.execute(delete(ResponseVersion).where(ResponseVersion.key == key,
                                                                    ResponseVersion.lang == lang))
            await session.commit()

    async def _mark_published(self, job_id: int, ids: list[int]) -> None:
        from sqlalchemy import update

        from bot.db.models import ExampleChange

        async with self.sessions() as session:
            await session.execute(update(ExampleChange).where(ExampleChange.id.in_(ids))
                                  .values(state="published", publish_job_id=job_id, decided_at=utcnow(),
                                          decided_by=f"publish {job_id}"))
            await session.commit()

    # -- writing the accepted data back to the repository

    def _write_back(self, data_dir: Path, changed: set[str], topics: list[Any]) -> None:
        root = self.config.root
        for rel in sorted(changed):
            _copy_atomically(data_dir / rel, root / rel)
        if topics:
            self._write_topic_answers(topics)
            self._write_intents_doc(topics)

    def _write_topic_answers(self, topics: list[Any]) -> None:
        from bot import content

        path = self.config.content_dir / RULES_SEED
        layout = path.read_text(encoding="utf-8") if path.exists() else ""
        seed = content.load_seed(path) if path.exists() else {}
        for change in topics:
            answers = (change.detail or {}).get("answers") or {}
            seed[f"utter_{change.intent}"] = {lang: answers[lang] for lang in content.LANGS}
        _write_atomically(path, content.dump_seed(seed, layout))

    def _write_intents_doc(self, topics: list[Any]) -> None:
        path = self.config.intents_doc
        if path is None or not path.exists():
            return
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        rows = [i for i, line in enumerate(lines) if line.startswith("| `faq_")]
        if not rows:
            return
        at = rows[-1] + 1
        for change in topics:
            title = " ".join(str((change.detail or {}).get("title") or "").split()).replace("|", "/")
            lines.insert(at, f"| `{change.intent}` | {title} | `utter_{change.intent}` |\n")
            at += 1
        _write_atomically(path, "".join(lines))

    # -- models and rollback

    async def models(self) -> dict[str, Any]:
        serving = await self.steps.serving()
        out = []
        for path in sorted(self.config.models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True):
            stat = path.stat()
            out.append({"name": path.name, "size_bytes": stat.st_size,
                        "modified_at": datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat(),
                        "serving": path.name == serving, "gate": self.cached_metrics(path)})
        return {"models": out, "serving": serving}

    async def rollback(self, name: str, account: Any) -> dict[str, Any]:
        """Load an earlier model of ``models/`` (StepFailed / PublishBusy / FileNotFoundError)."""
        if not isinstance(name, str) or Path(name).name != name or not name.endswith(".tar.gz"):
            raise FileNotFoundError("give the file name of a model in models/ (e.g. hotline-….tar.gz)")
        path = self.config.models_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"no model {name} in models/")
        async with self._lock:
            async with self.sessions() as session:
                await lock_across_replicas(session, "publish")  # no publish may be queued while this checks
                active = await self.active_job(session)
                if active is not None:
                    raise PublishBusy(active.id)
            previous = await self.steps.serving()
            await self.steps.load(path)
            os.utime(path)
            from bot.auth import audit

            async with self.sessions() as session:
                await audit(session, account, "model_rollback", name, {"previous": previous})
                await session.commit()
        logger.info("model %s loaded by rollback (was %s)", name, previous)
        return {"model": name, "previous": previous, "serving": name}


def _file_stamp(path: Path) -> str | None:
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return f"{stat.st_size}:{int(stat.st_mtime)}"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def job_json(row: Any) -> dict[str, Any]:
    """The JSON of ``GET /api/publish/{id}``."""
    progress = row.progress if isinstance(row.progress, dict) else {"steps": [], "percent": 0}
    return {"id": row.id, "state": row.state, "progress": progress, "gate": row.gate, "error": row.error,
            "model": Path(row.model_path).name if row.model_path else None, "created_by": row.created_by,
            "created_at": iso_time(row.created_at), "finished_at": iso_time(row.finished_at)}


# ------------------------------------------------------------------------------------ command line

def _evaluate_main(args: argparse.Namespace) -> int:
    from bot.nlu_eval import evaluate

    results: dict[str, Any] = {}
    for model in args.models:
        metrics = evaluate(model, args.heldout)
        results[model] = summarise(metrics)
        print(f"{Path(model).name}: risk recall {metrics['risk_recall']}, macro F1 {metrics['macro_f1']:.3f}",
              flush=True)
    _write_atomically(Path(args.out), json.dumps(results))
    return 0


MEASURE_EXAMPLE = "trung tâm Đà Nẵng làm việc đến mấy giờ tối"
MEASURE_COPY = ("config.yml", "domain.yml", "nlu_data", "content", "docs/INTENTS.md", "tests/nlu/heldout.yml")


async def measure(rasa_url: str, rasa_token: str | None, epochs: int | None = None, intent: str = "faq_hours",
                  example: str = MEASURE_EXAMPLE) -> dict[str, Any]:
    """Time a whole publish of one added example on a copy of the repository (the checkout is not
    touched) against a running Rasa server; the model Rasa served before is loaded back after."""
    from types import SimpleNamespace

    import aiohttp

    from bot.bootstrap import prepare_database
    from bot.db.models import ExampleChange, PublishJob
    from bot.db.session import async_engine, session_factory
    from bot.settings import Settings
    from bot.training import newest_model

    serving_model = newest_model(PROJECT_ROOT / "models")
    if serving_model is None:
        raise SystemExit("no trained model in models/: run `python -m bot train` first")
    with tempfile.TemporaryDirectory(prefix="publish-measure-") as tmp:
        root = Path(tmp)
        for rel in MEASURE_COPY:
            src, dst = PROJECT_ROOT / rel, root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
        (root / "models").mkdir()
        (root / "models" / serving_model.name).symlink_to(serving_model)
        url = f"sqlite:///{root / 'measure.db'}"
        await prepare_database(Settings(database_url=url, content_dir=root / "content"))
        engine = async_engine(url)
        sessions = session_factory(engine)
        os.environ.setdefault("RASA_CACHE_DIRECTORY", str(PROJECT_ROOT / ".rasa" / "cache"))
        config = PublishConfig(root=root, models_dir=root / "models", work_dir=root / "var" / "publish",
                               heldout=root / "tests" / "nlu" / "heldout.yml", content_dir=root / "content",
                               intents_doc=root / "docs" / "INTENTS.md", rasa_url=rasa_url.rstrip("/"),
                               rasa_token=rasa_token, epochs=epochs)
        async with aiohttp.ClientSession() as http:
            publisher = Publisher(config, sessions, http, "measure")
            before = await publisher.steps.serving()
            async with sessions() as session:
                session.add(ExampleChange(op="add", intent=intent, text=example, state="pending",
                                          created_by="measure", created_at=utcnow()))
                await session.commit()
            started = time.monotonic()
            job_id = await publisher.start(SimpleNamespace(id=None, username="measure"))
            await publisher.wait()
            total = time.monotonic() - started
            async with sessions() as session:
                job = job_json(await session.get(PublishJob, job_id))
            if job["state"] == "done" and before:
                original = PROJECT_ROOT / "models" / before
                if original.exists():
                    await publisher.steps.load(original)
        await engine.dispose()
    return {"state": job["state"], "error": job["error"], "total_seconds": round(total, 1),
            "steps": {s["name"]: s["seconds"] for s in job["progress"]["steps"]},
            "candidate_risk_recall": ((job["gate"] or {}).get("candidate") or {}).get("risk_recall"),
            "serving_risk_recall": ((job["gate"] or {}).get("serving") or {}).get("risk_recall"),
            "rasa_served_before": before}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.publish")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="the NLU gate's figures of one or more models, as JSON")
    ev.add_argument("--heldout", required=True)
    ev.add_argument("--out", required=True)
    ev.add_argument("models", nargs="+")
    me = sub.add_parser("measure", help="time a publish of one added example on a copy of the repository, "
                                        "against a running Rasa server (--enable-api)")
    me.add_argument("--rasa-url", default=None, help="default: RASA_URL or http://127.0.0.1:5005")
    me.add_argument("--epochs", type=int, default=None, help="fewer DIET epochs (smoke test only)")
    me.add_argument("--intent", default="faq_hours", help="the intent the example is added to")
    me.add_argument("--example", default=MEASURE_EXAMPLE, help="the example question added")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.command == "measure":
        from bot.settings import Settings

        settings = Settings.from_env()
        result = asyncio.run(measure(args.rasa_url or settings.rasa_url, settings.rasa_token, args.epochs,
                                     args.intent, args.example))
        print(json.dumps(result, indent=2))
        return 0 if result["state"] == "done" else 1
    return _evaluate_main(args)


if __name__ == "__main__":
    sys.exit(main())
