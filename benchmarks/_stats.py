"""Summaries shared by the benchmark runners; standard library only (``bench_v3_sdk`` runs in a venv without
our package)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any


def latency_summary(latencies: list[float], left: int, runs: int, grace: float) -> dict[str, Any]:
    """p50/p99 in ms of cancel latencies (seconds), with the processes left and every sample."""
    latencies = sorted(latencies)
    return {"p50_ms": statistics.median(latencies) * 1000, "p99_ms": latencies[max(0, int(len(latencies) * .99) - 1)]
            * 1000, "left_alive": left, "runs": runs, "grace_ms": grace * 1000,
            "samples_ms": [x * 1000 for x in latencies]}


async def per_query(run_one: Callable[[], Awaitable[object]], runs: int) -> dict[str, Any]:
    """Median wall time and this process's own CPU time (the CLI's is not in it) of ``runs`` queries, in ms:
    the CPU figure is the host side's work, steadier than wall time on a machine shared with others."""
    found = (await paired_per_query({"one": run_one}, runs))["one"]
    return {"ms_per_query": found["ms_per_query"], "host_cpu_ms_per_query": found["host_cpu_ms_per_query"],
            "runs": runs}


async def paired_per_query(runners: dict[str, Callable[[], Awaitable[object]]], runs: int) -> dict[str, Any]:
    """``runs`` rounds, each running every runner once in turn, in one interpreter: per runner, its median
    wall time and this process's CPU per query (ms), and every sample, so that a runner can be compared
    with another round by round (``paired_difference``): both queries of a round met the same minute of a
    shared machine, which a comparison of two separate runs' medians cannot say."""
    samples: dict[str, dict[str, list[float]]] = {name: {"wall_ms": [], "cpu_ms": []} for name in runners}
    for _ in range(runs):
        for name, run_one in runners.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            await run_one()
            samples[name]["wall_ms"].append((time.perf_counter() - started) * 1000)
            samples[name]["cpu_ms"].append((time.process_time() - started_cpu) * 1000)
    return {name: {"ms_per_query": statistics.median(s["wall_ms"]),
                   "host_cpu_ms_per_query": statistics.median(s["cpu_ms"]), **s}
            for name, s in samples.items()}


def paired_difference(found: dict[str, Any], name: str, base: str, field: str) -> float:
    """Median over the rounds of ``name``'s sample minus ``base``'s in the same round (``field``: wall_ms or
    cpu_ms), from ``paired_per_query``'s result."""
    return statistics.median(a - b for a, b in zip(found[name][field], found[base][field], strict=True))
