"""Real Claude Code CLI vs the stand-in, through run_query: per-query wall time and the CLI's peak RSS.

    ./scripts/bench-real [N]     # needs CLAUDE_SCOPE_REAL_CLI (scripts/test installs the pinned CLI)

The real CLI answers a loopback Messages API mock; RSS is the CLI process's, sampled every 10 ms, so
users can size ``max_parallel`` (memory per concurrent phase). Medians over N queries per row.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import psutil
from claude_code_sdk import ClaudeCodeOptions

from sdk_wrapper import QueryLimits, SpawnedCLI, open_query
from sdk_wrapper.testing import MessagesAPIMock, install_standin, scenario_env


async def measure(cli: str, options: ClaudeCodeOptions) -> tuple[float, float]:
    spawned: list[SpawnedCLI] = []
    peak = 0
    started = time.perf_counter()
    async with open_query("bench", options, cli_path=cli, limits=QueryLimits(timeout_s=120),
                          on_spawn=spawned.append) as stream, anyio.create_task_group() as tg:
        async def sample() -> None:
            nonlocal peak
            while True:
                with contextlib.suppress(psutil.Error, IndexError):
                    peak = max(peak, psutil.Process(spawned[0].pid).memory_info().rss)
                await anyio.sleep(0.01)

        tg.start_soon(sample)
        async for _ in stream:
            pass
        tg.cancel_scope.cancel()
    if not stream.outcome.ok:
        raise RuntimeError(f"benchmark query failed: {stream.outcome.failure}")
    return time.perf_counter() - started, peak / 2**20


async def main(n: int) -> None:
    real = os.environ.get("CLAUDE_SCOPE_REAL_CLI")
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        work = Path(tmp, "work")
        os.mkdir(work)
        standin = str(install_standin(Path(tmp, "bin")))
        rows = []
        runs = [("stand-in, one text answer", standin, ClaudeCodeOptions(cwd=str(work), env=scenario_env("ok")))]
        api = MessagesAPIMock([{"text": "hi"}] * n + [{"tool_use": {"name": "Bash", "input": {"command": "echo hi"}}},
                                                      {"text": "done"}] * n)
        api.__enter__()
        try:
            if real:
                env = api.cli_env(Path(tmp, "home"))
                runs.append(("real CLI 2.1.197, one text answer", real,
                             ClaudeCodeOptions(cwd=str(work), env=env, permission_mode="bypassPermissions")))
            for title, cli, options in runs:
                samples = [await measure(cli, options) for _ in range(n)]
                rows.append((title, n, statistics.median(s[0] for s in samples) * 1000,
                             max(s[1] for s in samples)))
            if real:
                samples = [await measure(real, runs[-1][2]) for _ in range(n)]
                rows.append(("real CLI 2.1.197, Bash tool then text", n,
                             statistics.median(s[0] for s in samples) * 1000, max(s[1] for s in samples)))
        finally:
            api.close()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"| {'query':<40} | {'N':>3} | {'wall ms (median)':>16} | {'CLI peak RSS MB (max)':>21} |")
    print(f"|{'-' * 42}|{'-' * 5}|{'-' * 18}|{'-' * 23}|")
    for title, count, wall, rss in rows:
        print(f"| {title:<40} | {count:>3} | {wall:>16.1f} | {rss:>21.1f} |")
    if not real:
        print("real CLI rows missing: CLAUDE_SCOPE_REAL_CLI is not set (run ./scripts/test once to install it)")


if __name__ == "__main__":
    logging.getLogger("claude_code_sdk").setLevel(logging.CRITICAL)
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 10)
