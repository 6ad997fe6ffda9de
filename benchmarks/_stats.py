"""Summaries shared by the benchmark runners; standard library only (``bench_v3_sdk`` runs in a venv without
our package)."""

from __future__ import annotations

import statistics
from typing import Any


def latency_summary(latencies: list[float], left: int, runs: int, grace: float) -> dict[str, Any]:
    """p50/p99 in ms of cancel latencies (seconds), with the processes left and every sample."""
    latencies = sorted(latencies)
    return {"p50_ms": statistics.median(latencies) * 1000, "p99_ms": latencies[max(0, int(len(latencies) * .99) - 1)]
            * 1000, "left_alive": left, "runs": runs, "grace_ms": grace * 1000,
            "samples_ms": [x * 1000 for x in latencies]}
