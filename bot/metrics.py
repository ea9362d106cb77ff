"""Prometheus metrics in the text exposition format, without a client library."""
from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Callable

BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in sorted(labels.items()))
    return "{" + inner + "}"


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
        self.histograms: dict[str, dict[tuple, list]] = defaultdict(dict)
        self.gauges: dict[str, Callable[[], float]] = {}

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        self.counters[name][tuple(sorted(labels.items()))] += amount

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        h = self.histograms[name].setdefault(key, [[0] * (len(BUCKETS) + 1), 0.0, 0])
        h[0][bisect.bisect_left(BUCKETS, seconds)] += 1
        h[1] += seconds
        h[2] += 1

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        self.gauges[name] = read

    def render(self, extra_gauges: dict[str, float] | None = None) -> str:
        lines: list[str] = []
        for name, series in sorted(self.counters.items()):
            lines.append(f"# TYPE hotline_{name} counter")
            lines += [f"hotline_{name}{_labels(dict(k))} {v:g}" for k, v in series.items()]
        for name, series in sorted(self.histograms.items()):
            lines.append(f"# TYPE hotline_{name} histogram")
            for key, (counts, total, n) in series.items():
                running = 0
                for bound, c in zip(BUCKETS + (float("inf"),), counts):
                    running += c
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    lines.append(f"hotline_{name}_bucket{_labels({**dict(key), 'le': le})} {running}")
                lines.append(f"hotline_{name}_sum{_labels(dict(key))} {total:.6f}")
                lines.append(f"hotline_{name}_count{_labels(dict(key))} {n}")
        gauges = {name: read() for name, read in self.gauges.items()}
        gauges.update(extra_gauges or {})
        typed: set[str] = set()
        for name, value in sorted(gauges.items()):
            base = name.split("{", 1)[0]
            if base not in typed:
                typed.add(base)
                lines.append(f"# TYPE hotline_{base} gauge")
            lines.append(f"hotline_{name} {value:g}")
        return "\n".join(lines) + "\n"
