"""Train the Rasa model only when the training data changed.

The model is named after a hash of everything training reads (config, domain, nlu_data and the
Rasa version), so `models/<hash>.tar.gz` existing means it is current. A copy is kept in a cache
outside the checkout (`HOTLINE_MODEL_CACHE`, default ~/.cache/hotline-assistant/models) so that a
fresh clone on the same machine — CI — does not train again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

TRAINING_INPUTS = ("config.yml", "domain.yml", "nlu_data")


def data_hash(root: Path = PROJECT_ROOT, data_dir: str = "nlu_data") -> str:
    import rasa

    digest = hashlib.sha256(f"rasa={rasa.__version__}\n".encode())
    inputs = [root / "config.yml", root / "domain.yml"]
    inputs += sorted(p for p in (root / data_dir).rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))
    for path in inputs:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("HOTLINE_MODEL_CACHE", Path.home() / ".cache" / "hotline-assistant" / "models"))


def newest_model(models_dir: Path) -> Path | None:
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


def train(root: Path = PROJECT_ROOT, *, data_dir: str = "nlu_data", out: Path | None = None,
          force: bool = False) -> Path:
    """Returns the path of a model trained on the current data, training only if needed."""
    out = out or root / "models"
    out.mkdir(parents=True, exist_ok=True)
    name = f"hotline-{data_hash(root, data_dir)}"
    target = out / f"{name}.tar.gz"
    cached = cache_dir() / target.name
    if target.exists() and not force:
        print(f"model is current: {target.relative_to(root) if target.is_relative_to(root) else target}")
        target.touch()
        return target
    if cached.exists() and not force:
        shutil.copy2(cached, target)
        target.touch()
        report = cached.parent / f"{name}.json"
        if report.exists():
            (root / "var").mkdir(exist_ok=True)
            shutil.copy2(report, root / "var" / "train-report.json")
        print(f"model for this training data taken from the cache: {cached}")
        return target
    print(f"training {name} (data changed or no model yet) ...", flush=True)
    started = time.monotonic()
    cmd = [str(Path(sys.executable).parent / "rasa"), "train", "--data", data_dir, "--config", "config.yml",
           "--domain", "domain.yml", "--out", str(out), "--fixed-model-name", name]
    subprocess.run(cmd, cwd=root, check=True)
    seconds = time.monotonic() - started
    report = {"model": target.name, "train_seconds": round(seconds, 1), "size_bytes": target.stat().st_size}
    (root / "var").mkdir(exist_ok=True)
    (root / "var" / "train-report.json").write_text(json.dumps(report))
    print(f"trained in {seconds:.0f} s: {target} ({target.stat().st_size / 1e6:.1f} MB)")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target, cached)
        (cached.parent / f"{name}.json").write_text(json.dumps(report))
    except OSError as exc:  # the cache is an optimisation only
        logger.warning("could not cache the model: %s", exc)
    return target
