"""Summaries of latency samples and the machine the numbers come from."""
from __future__ import annotations

import math
import platform
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the values; NaN for none."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    """n, p50, p90, p99, max and mean in milliseconds of samples given in seconds."""
    values = [s * 1000 for s in seconds]
    if not values:
        return {"n": 0, "p50": math.nan, "p90": math.nan, "p99": math.nan, "max": math.nan, "mean": math.nan}
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "max": max(values), "mean": sum(values) / len(values)}


def fmt_ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    import aiohttp
    import rasa
    import sqlalchemy

    memory = _run(["free", "-h"]).splitlines()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": _run(["nproc"]),
        "cpu": _cpu_model(),
        "memory": memory[1] if len(memory) > 1 else "unavailable",
        "memory_header": memory[0] if memory else "",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "rasa": rasa.__version__,
        "aiohttp": aiohttp.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "load_before": _run(["cat", "/proc/loadavg"]),
    }
