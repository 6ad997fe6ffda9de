"""The "V3 pattern" contestant, measured where V3 ran: claude-code-sdk 0.0.10, in its own venv.

    CLAUDE_SCOPE_V3_PYTHON -m benchmarks.bench_v3_sdk MEASUREMENT N [--ignore-term]

Run by ``bench_wrapper`` (its ``--one`` for the contestant ``v3``) with the side venv's interpreter that
``scripts/_v3_sdk.sh`` makes, and ``tests/migration/v3_legacy`` (our model of V3's wrapper, checked against
the real V3 by the migration tests) on ``PYTHONPATH``. It imports neither ``sdk_wrapper`` nor the 0.0.25
SDK, so it runs beside them; it prints one JSON line with ``bench_wrapper``'s keys, plus ``fabricated``:
how many queries V3 reported as a success it made up (its fixed result text), which on 0.0.10 happens
whenever one stdout read holds more than one line (``migration/MIGRATION.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import stat
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import psutil

from benchmarks._stats import latency_summary, per_query

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "sdk_wrapper" / "standin" / "_standin.py"
MADE_UP = "Phase completed successfully (TaskGroup cleanup issue handled)"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _pids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(line.split()[0]) for line in path.read_text().splitlines() if line.split()]


class Bench:
    def __init__(self, tmp: Path, standin_python: str) -> None:
        import claude_code_sdk_fixed_v3 as model  # our model of V3, on this venv's claude-code-sdk 0.0.10

        self.model = model
        self.work = tmp / "work"
        self.work.mkdir()
        cli = tmp / "bin" / "claude"
        cli.parent.mkdir()
        cli.write_text(f"#!{standin_python} -IS\nimport runpy\nrunpy.run_path({str(STANDIN)!r}, run_name='__main__')\n")
        cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
        os.environ["PATH"] = f"{cli.parent}{os.pathsep}{os.environ['PATH']}"
        self.pid_file = tmp / "pids"
        os.environ["CLAUDE_STANDIN_PID_FILE"] = str(self.pid_file)
        self.fabricated = 0

    async def consume(self, scenario: str | dict[str, Any]) -> int:
        """V3's consumer: async for over query_v3, list trimmed past 500."""
        os.environ["CLAUDE_STANDIN_SCENARIO"] = scenario if isinstance(scenario, str) else json.dumps(scenario)
        messages: list[Any] = []
        count = 0
        options = self.model.ClaudeCodeOptions(cwd=str(self.work))
        async for message in self.model.query_v3("bench", options, self.work):
            count += 1
            messages.append(message)
            if len(messages) > 500:
                messages = messages[len(messages) // 2:]
            if isinstance(message, dict) and message.get("result") == MADE_UP:
                self.fabricated += 1
        return count

    def left(self, since: int) -> int:
        return sum(1 for pid in _pids(self.pid_file)[since:] if _alive(pid))


async def burst(b: Bench, runs: int) -> dict[str, Any]:
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        count = await b.consume("burst")
        rates.append(count / (time.perf_counter() - started))
    return {"msgs_per_s": statistics.median(rates), "runs": runs, "fabricated": b.fabricated}


async def overhead(b: Bench, runs: int) -> dict[str, Any]:
    return {**await per_query(lambda: b.consume({"steps": [], "init": False, "result": {}}), runs),
            "fabricated": b.fabricated}


async def cancel(b: Bench, runs: int, ignore_term: bool) -> dict[str, Any]:
    """V3's runner cancels with a scope around its ``async for``: time from the scope firing to control back."""
    latencies, left = [], 0
    for _ in range(runs):
        before = len(_pids(b.pid_file))
        started = time.perf_counter()
        with anyio.move_on_after(0.3), contextlib.suppress(Exception):
            await b.consume("hang_ignore_term" if ignore_term else "hang")
        latencies.append(max(0.0, time.perf_counter() - started - 0.3))
        await anyio.sleep(0.05)
        left += b.left(before)
    return {**latency_summary(latencies, left, runs, 0.0), "fabricated": b.fabricated}


async def cancelled_many(b: Bench, runs: int) -> dict[str, Any]:
    me, rng = psutil.Process(), random.Random(7)

    async def one() -> None:
        with anyio.move_on_after(rng.uniform(0.0, 0.1)), contextlib.suppress(Exception):
            await b.consume(rng.choice(["slow", "hang"]))

    await one()
    rss0, fds0 = me.memory_info().rss, me.num_fds()
    b.fabricated = 0
    series = []
    for i in range(1, runs + 1):
        await one()
        if i % 20 == 0 or i == runs:
            series.append((i, (me.memory_info().rss - rss0) / 2**20, b.left(0)))
    await anyio.sleep(0.2)
    return {"rss_growth_mb": (me.memory_info().rss - rss0) / 2**20, "fds_growth": me.num_fds() - fds0,
            "processes_left": b.left(0), "fabricated": b.fabricated, "runs": runs, "series": series}


def main(argv: list[str]) -> int:
    measurement, n, ignore = argv[0], int(argv[1]), "--ignore-term" in argv
    standin_python = os.environ.get("CLAUDE_SCOPE_STANDIN_PYTHON", sys.executable)
    import logging

    logging.getLogger("claude_code_sdk").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="bench-v3-") as tmp, contextlib.redirect_stdout(sys.stderr):
        b = Bench(Path(tmp), standin_python)  # (the model prints at import, as V3 did: kept off our stdout)
        runs: dict[str, Any] = {"burst": lambda: burst(b, n), "overhead": lambda: overhead(b, n),
                                "cancel": lambda: cancel(b, n, ignore), "cancelled_many": lambda: cancelled_many(b, n)}
        try:
            result = asyncio.run(runs[measurement]())
        finally:
            for pid in _pids(b.pid_file):  # end what V3 left, after counting it
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
