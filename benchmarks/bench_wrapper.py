"""Raw claude-code-sdk (and claude-agent-sdk) vs sdk_wrapper, side by side on the stand-in CLI; prints a table.

    ./scripts/bench            # full: 5 bursts, 50 overhead queries, 100+20 cancels, 1,000 cancelled queries
    ./scripts/bench --quick    # smaller counts, same rows

Every (contestant, measurement) runs in a fresh interpreter (``--one``), so one contestant's leaks
(the raw SDK's orphans, descriptors, a loop poisoned by finalizer errors) cannot touch another's numbers.
Figures are medians (percentiles where stated) over the stated number of runs. Then the side-by-side
rounds (``paired``, ``paired_burst``): every contestant in one interpreter, once per round, in turn, on
clean queries only (no leaks to carry over), so that a ratio or difference is taken within a round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio
import claude_code_sdk
import psutil

from sdk_wrapper import QueryLimits, open_query
from sdk_wrapper.testing import install_standin, process_alive, read_pids

from ._contestants import (
    AGENT_INSTALLED,
    CONTESTANTS,
    Scenario,
    agent_options,
    available,
    code_options,
    consume,
)
from ._stats import latency_summary, paired_difference, paired_per_query, per_query
from .bench_pipeline import million, orchestrator_overhead

ROOT = Path(__file__).resolve().parents[1]
#: scenarios whose CLI never prints a result: any success reported for one was made up
NO_RESULT = {"hang", "hang_ignore_term"}


async def burst(contestant: str, work: Path, cli: Path, runs: int) -> dict[str, Any]:
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        count = await consume(contestant, "burst", work, cli)
        rates.append(count / (time.perf_counter() - started))
    return {"msgs_per_s": statistics.median(rates), "runs": runs}


#: the smallest query the stand-in can answer: no steps, no init message, a result: the per-query cost
MINIMAL: Scenario = {"steps": [], "init": False, "result": {}}


async def overhead(contestant: str, work: Path, cli: Path, runs: int) -> dict[str, Any]:
    return await per_query(lambda: consume(contestant, MINIMAL, work, cli), runs)


#: contestants of the paired per-query measurement, each with the raw SDK query it is compared with
PAIRED_BASE = {"raw": "raw", "run_query": "raw", "open_query": "raw", "v3_dropin": "raw",
               "agent_raw": "agent_raw", "agent_run_query": "agent_raw", "agent_open_query": "agent_raw"}


def paired_contestants() -> list[str]:
    return [c for c in PAIRED_BASE if AGENT_INSTALLED or not CONTESTANTS[c].agent]


async def paired(contestants: str, work: Path, cli: Path, runs: int) -> dict[str, Any]:
    """Per-query cost of several contestants (comma-separated) in one interpreter, alternating query by query;
    with each one's paired difference (CPU and wall, ms) from the raw SDK query of the same round, and
    ``run_query`` minus ``open_query`` (the goals of issue #15 are differences of this kind)."""
    names = contestants.split(",")

    def runner(name: str) -> Any:
        return lambda: consume(name, MINIMAL, work, cli)

    for name in names:  # warm-up: imports, first spawns, the guard
        for _ in range(3):
            await runner(name)()
    found = await paired_per_query({name: runner(name) for name in names}, runs)
    pairs = [(name, PAIRED_BASE[name]) for name in names if PAIRED_BASE[name] != name and PAIRED_BASE[name] in names]
    pairs += [(f"{prefix}run_query", f"{prefix}open_query") for prefix in ("", "agent_")
              if f"{prefix}run_query" in names and f"{prefix}open_query" in names]
    differences = {f"{a} - {b}": {"cpu_ms": paired_difference(found, a, b, "cpu_ms"),
                                  "wall_ms": paired_difference(found, a, b, "wall_ms")} for a, b in pairs}
    return {"contestants": {name: {k: v for k, v in value.items() if k in ("ms_per_query", "host_cpu_ms_per_query")}
                            for name, value in found.items()},
            "differences": differences, "runs": runs}


async def paired_burst(contestants: str, work: Path, cli: Path, runs: int) -> dict[str, Any]:
    """10,000-message bursts of several contestants (comma-separated) in one interpreter, in turn: each one's
    median messages/s and host CPU per message (us), and its rate over its raw SDK's in the same round
    (the median of the rounds' ratios: the issue's ">= 1.0x" goals, side by side)."""
    names = contestants.split(",")
    counts: dict[str, list[int]] = {name: [] for name in names}

    def runner(name: str) -> Any:
        async def run() -> None:
            counts[name].append(await consume(name, "burst", work, cli))
        return run

    for name in names:  # warm-up
        await runner(name)()
        counts[name].clear()
    found = await paired_per_query({name: runner(name) for name in names}, runs)
    rates = {name: [c / (w / 1000) for c, w in zip(counts[name], found[name]["wall_ms"], strict=True)]
             for name in names}
    out: dict[str, Any] = {}
    for name in names:
        base = PAIRED_BASE[name]
        ratio = (statistics.median(r / b for r, b in zip(rates[name], rates[base], strict=True))
                 if base in names and base != name else None)
        out[name] = {"msgs_per_s": statistics.median(rates[name]),
                     "host_cpu_us_per_msg": statistics.median(
                         cpu * 1000 / c for cpu, c in zip(found[name]["cpu_ms"], counts[name], strict=True)),
                     "ratio_to_raw": ratio}
    return {"contestants": out, "runs": runs}


async def cancel_latency(contestant: str, work: Path, cli: Path, runs: int, ignore_term: bool) -> dict[str, Any]:
    """From leaving the block (cancel) to the whole tree ended. An SDK's own ``query()`` (or V3's) is
    cancelled by a scope around it: the time the caller waited after its timeout fired."""
    row = CONTESTANTS[contestant]
    grace = 0.5
    scenario = "hang_ignore_term" if ignore_term else "hang"
    latencies, left = [], 0
    pid_file = Path(os.environ["CLAUDE_STANDIN_PID_FILE"])
    for _ in range(runs):
        before = len(read_pids(pid_file))
        if row.unscoped:
            started = time.perf_counter()
            with anyio.move_on_after(0.3), contextlib.suppress(Exception):
                await consume(contestant, scenario, work, cli)
            latencies.append(max(0.0, time.perf_counter() - started - 0.3))
        else:
            options = agent_options(scenario, work, cli) if row.agent else code_options(scenario, work)
            async with open_query("bench", options, cli_path=cli,
                                  limits=QueryLimits(terminate_grace_s=grace)) as stream:
                async for _ in stream:
                    break  # the first message: the CLI is up; leave now
                started = time.perf_counter()
            latencies.append(time.perf_counter() - started)
        await anyio.sleep(0.05)
        left += sum(1 for pid, _ in read_pids(pid_file)[before:] if process_alive(pid))
    # V3's own code waits up to 3 s for the CLI's exit; ours, terminate_grace_s.
    return latency_summary(latencies, left, runs, 3.0 if contestant == "v3_dropin" else grace)


async def cancelled_many(contestant: str, work: Path, cli: Path, runs: int) -> dict[str, Any]:
    """Queries cancelled at random points; RSS, descriptors and live processes, sampled every 20."""
    me = psutil.Process()
    rng = random.Random(7)
    pid_file = Path(os.environ["CLAUDE_STANDIN_PID_FILE"])
    fabricated = 0

    def alive() -> int:
        return sum(1 for pid, _ in read_pids(pid_file) if process_alive(pid))

    async def one() -> None:
        nonlocal fabricated
        scenario = rng.choice(["slow", "hang"])
        reported: list[bool] = []
        with anyio.move_on_after(rng.uniform(0.0, 0.1)):
            await _consume_quiet(contestant, scenario, work, cli, reported)
        fabricated += int(scenario in NO_RESULT and any(reported))

    await one()  # warm-up: imports, first spawn
    rss0, fds0 = me.memory_info().rss, me.num_fds()
    series = []
    for i in range(1, runs + 1):
        await one()
        if i % 20 == 0 or i == runs:
            series.append((i, (me.memory_info().rss - rss0) / 2**20, alive()))
    await anyio.sleep(0.2)
    return {"rss_growth_mb": (me.memory_info().rss - rss0) / 2**20, "fds_growth": me.num_fds() - fds0,
            "processes_left": alive(), "fabricated": fabricated, "runs": runs, "series": series}


async def _consume_quiet(contestant: str, scenario: str, work: Path, cli: Path,
                         reported: list[bool] | None = None) -> None:
    # A failed outcome (cancelled) is expected here; the raw SDK's and V3's own errors too.
    with contextlib.suppress(Exception):
        await consume(contestant, scenario, work, cli, QueryLimits(terminate_grace_s=0.2), reported)


def one(contestant: str, measurement: str, n: int, ignore_term: bool) -> dict[str, Any]:
    """Run in a fresh interpreter; print JSON."""
    logging.getLogger("claude_code_sdk").setLevel(logging.CRITICAL)
    logging.getLogger("claude_agent_sdk").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work, cli = Path(tmp, "work"), install_standin(Path(tmp, "bin"))
        work.mkdir()
        os.environ["PATH"] = f"{cli.parent}{os.pathsep}{os.environ['PATH']}"
        os.environ["CLAUDE_STANDIN_PID_FILE"] = str(Path(tmp, "pids"))
        fn = {"burst": burst, "overhead": overhead, "cancelled_many": cancelled_many, "million": million,
              "orchestrator": orchestrator_overhead, "paired": paired, "paired_burst": paired_burst}.get(measurement)

        async def main() -> dict[str, Any]:
            if measurement == "cancel":
                return await cancel_latency(contestant, work, cli, n, ignore_term)
            assert fn is not None
            return await fn(contestant, work, cli, n)

        try:
            result = asyncio.run(main())
        finally:
            for pid, _ in read_pids(Path(tmp, "pids")):  # end what a contestant left, after counting it
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
    return result


V3_PYTHON_ENV = "CLAUDE_SCOPE_V3_PYTHON"


def _spawn(contestant: str, measurement: str, n: int, ignore_term: bool = False) -> dict[str, Any]:
    env = None
    if contestant == "v3":
        # V3 ran on claude-code-sdk 0.0.10, which cannot share our venv: measured in its own (bench_v3_sdk).
        v3_python = os.environ.get(V3_PYTHON_ENV) or str(ROOT / ".cache" / "v3-sdk-0.0.10" / "bin" / "python")
        if not Path(v3_python).exists():
            return {"error": "no claude-code-sdk 0.0.10 venv (scripts/test or scripts/evidence make it)"}
        cmd = [v3_python, "-m", "benchmarks.bench_v3_sdk", measurement, str(n)]
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests' / 'migration' / 'v3_legacy'}{os.pathsep}{ROOT}",
               "CLAUDE_SCOPE_STANDIN_PYTHON": sys.executable}
    else:
        cmd = [sys.executable, "-m", "benchmarks.bench_wrapper", "--one", contestant, measurement, str(n)]
    if ignore_term:
        cmd.append("--ignore-term")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run(cmd, stdout=out, stderr=err, timeout=1800, cwd=ROOT, env=env)
        out.seek(0)
        err.seek(0)
        lines = out.read().strip().splitlines()
        if proc.returncode != 0 or not lines:
            return {"error": err.read()[-300:].strip() or f"exit {proc.returncode}"}
        return dict(json.loads(lines[-1]))


def machine() -> str:
    agent = f", claude-agent-sdk {version('claude-agent-sdk')}" if agent_installed() else ""
    return (f"{os.cpu_count()} cores, Python {platform.python_version()}, claude-code-sdk "
            f"{claude_code_sdk.__version__}{agent}, anyio {version('anyio')}, psutil {version('psutil')}")


def agent_installed() -> bool:
    return AGENT_INSTALLED


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--one", nargs=3, metavar=("CONTESTANT", "MEASUREMENT", "N"))
    parser.add_argument("--ignore-term", action="store_true")
    args = parser.parse_args()
    if args.one:
        contestant, measurement, n = args.one
        print(json.dumps(one(contestant, measurement, int(n), args.ignore_term)))
        return 0
    q = args.quick
    plan = [
        ("messages/s, 10,000-message burst", "burst", 3 if q else 5, False, "msgs_per_s", "{:,.0f}"),
        ("per-query wall time, minimal CLI (ms)", "overhead", 20 if q else 50, False, "ms_per_query", "{:.2f}"),
        ("cancel -> tree ended p50 (ms), SIGTERM honoured", "cancel", 20 if q else 100, False, "p50_ms", "{:.1f}"),
        ("cancel -> tree ended p99 (ms), SIGTERM honoured", "cancel", 20 if q else 100, False, "p99_ms", "{:.1f}"),
        ("cancel -> tree ended p50 (ms), SIGTERM ignored", "cancel", 5 if q else 20, True, "p50_ms", "{:.1f}"),
        ("cancel -> tree ended p99 (ms), SIGTERM ignored", "cancel", 5 if q else 20, True, "p99_ms", "{:.1f}"),
        ("processes left after those cancels", "cancel", 20 if q else 100, False, "left_alive", "{}"),
        ("RSS growth over N cancelled queries (MB)", "cancelled_many", 100 if q else 1000, False, "rss_growth_mb",
         "{:.2f}"),
        ("descriptor growth over N cancelled queries", "cancelled_many", 100 if q else 1000, False, "fds_growth", "{}"),
        ("processes left over N cancelled queries", "cancelled_many", 100 if q else 1000, False, "processes_left",
         "{}"),
    ]
    print(f"machine: {machine()}")
    cache: dict[tuple[str, str, int, bool], dict[str, Any]] = {}
    names = available()
    print(f"| {'measurement':<50} | {'N':>5} | " + " | ".join(f"{c:>15}" for c in names) + " |")
    print(f"|{'-' * 52}|{'-' * 7}|" + "|".join("-" * 17 for _ in names) + "|")
    for title, measurement, n, ignore, key, fmt in plan:
        cells = []
        for contestant in names:
            ck = (contestant, measurement, n, ignore)
            if ck not in cache:
                cache[ck] = _spawn(contestant, measurement, n, ignore)
            data = cache[ck]
            cells.append("error" if "error" in data else fmt.format(data[key]))
        print(f"| {title:<50} | {n:>5} | " + " | ".join(f"{c:>15}" for c in cells) + " |", flush=True)
    def bursts(found: dict[str, Any]) -> list[str]:
        return [f"  {name:<18} {v['msgs_per_s']:9,.0f} msgs/s  CPU {v['host_cpu_us_per_msg']:5.1f} us/msg"
                + ("" if v["ratio_to_raw"] is None else f"  {v['ratio_to_raw']:.2f}x its raw SDK")
                for name, v in found["contestants"].items()]

    def queries(found: dict[str, Any]) -> list[str]:
        return ([f"  {name:<18} CPU {v['host_cpu_ms_per_query']:6.2f}  wall {v['ms_per_query']:7.2f}"
                 for name, v in found["contestants"].items()]
                + [f"  {pair:<34} CPU {v['cpu_ms']:+6.2f}  wall {v['wall_ms']:+6.2f}"
                   for pair, v in found["differences"].items()])

    for measurement, runs, title, describe in [("paired_burst", 3 if q else 5, "10,000-message bursts", bursts),
                                               ("paired", 40 if q else 150, "minimal queries (ms)", queries)]:
        found = _spawn(",".join(paired_contestants()), measurement, runs)
        print(f"\n{title}, paired: {runs} rounds, every contestant once per round, in one interpreter; medians")
        print("\n".join([f"error: {found['error']}"] if "error" in found else describe(found)), flush=True)
    errors = {k: v["error"] for k, v in cache.items() if "error" in v}
    for k, v in errors.items():
        print(f"error in {k}: {v}")
    print("\nraw cancel latency is the time the caller waited after its timeout fired; the raw SDK does not end "
          "the CLI on cancel, so its 'processes left' is the real measure there.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
