"""Pipeline-level measurements: memory over a 1,000,000-message phase, and orchestrator overhead per phase.

Run through ``benchmarks.bench_wrapper --one CONTESTANT MEASUREMENT N`` (a fresh interpreter each), as
the evidence report does.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import anyio
import psutil
from claude_code_sdk import ClaudeCodeOptions

from orchestrator import Orchestrator, Phase, Pipeline
from sdk_wrapper import QueryLimits, run_query
from sdk_wrapper.testing import scenario_env

from ._contestants import code_options, consume


async def million(contestant: str, work: Path, cli: Path, n: int) -> dict[str, Any]:
    """Peak RSS of this process while one phase streams ``n`` messages (the ``burst`` step, count n).

    ``orchestrator``: one phase, every message streamed to the journal's JSONL file; others: consumed.
    """
    me = psutil.Process()
    scenario = {"steps": [{"burst": {"count": n}}]}
    base = me.memory_info().rss
    peak = base
    stop = anyio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, me.memory_info().rss)
            await anyio.sleep(0.05)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sample)
        if contestant == "orchestrator":
            phase = Phase("long", "stream", options=ClaudeCodeOptions(cwd=str(work), env=scenario_env(scenario)),
                          timeout_s=3600)
            with Orchestrator(work / "journal.db", project_dir=work, cli_path=cli) as orch:
                report = await orch.run(Pipeline([phase]))
            if not report.ok:
                raise RuntimeError(f"phase failed: {report.phases['long']}")
        else:
            await consume(contestant, scenario, work, cli, QueryLimits(timeout_s=3600))
        stop.set()
    return {"peak_rss_mb": peak / 2**20, "base_rss_mb": base / 2**20, "growth_mb": (peak - base) / 2**20,
            "seconds": time.perf_counter() - started, "messages": n}


async def orchestrator_overhead(contestant: str, work: Path, cli: Path, n: int) -> dict[str, Any]:
    """``contestant`` is "mp1" or "mp8": n minimal independent phases through the orchestrator vs n plain
    ``run_query`` calls at the same concurrency. Overhead = the extra wall time per phase; the median of
    3 alternating repetitions (the stand-in's own start, about 45 ms, dominates both sides)."""
    parallel = int(contestant.removeprefix("mp"))
    options = code_options({"steps": [], "init": False, "result": {}}, work)

    async def plain() -> float:
        limiter = anyio.CapacityLimiter(parallel)

        async def one() -> None:
            async with limiter:
                outcome = await run_query("bench", options, cli_path=cli)
                if not outcome.ok:
                    raise RuntimeError(str(outcome.failure))

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
        return time.perf_counter() - started

    async def orchestrated(rep: int) -> float:
        # n roots plus one dependent phase, so the run is a DAG and max_parallel applies
        phases = [Phase(f"p{i}", "bench", options=options) for i in range(n - 1)]
        phases.append(Phase("last", "bench", options=options, depends_on=("p0",)))
        started = time.perf_counter()
        with Orchestrator(work / f"journal-{parallel}-{rep}.db", project_dir=work, cli_path=cli) as orch:
            report = await orch.run(Pipeline(phases, max_parallel=parallel))
        if not report.ok:
            raise RuntimeError("a benchmark phase failed")
        return time.perf_counter() - started

    extra = []
    for rep in range(3):
        base = await plain()
        extra.append((await orchestrated(rep) - base) / n * 1000)
    return {"overhead_ms": statistics.median(extra), "repetitions_ms": extra, "phases": n, "max_parallel": parallel}
