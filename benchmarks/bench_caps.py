"""What resource caps cost, how fast a capped tree ends, and how many pids the real CLI needs.

    python -m benchmarks.bench_caps [ROUNDS]

- per query: ``run_query`` on the stand-in with and without ``memory_mb=512, max_pids=256``, in turn (paired
  rounds, one interpreter), median wall ms and the median of each round's difference;
- a real bash fork bomb under ``max_pids=64``: from the kernel's first refused fork (``pids.events`` polled
  every millisecond from a thread) to the query's outcome, its tree ended and verified gone;
- with ``CLAUDE_SCOPE_REAL_CLI`` set: the real CLI's peak ``pids.current`` (processes and threads) over one
  query against the offline Messages API mock, and whether it runs under ``max_pids`` of 16, 24 and 32.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import anyio
from claude_code_sdk import ClaudeCodeOptions

from sdk_wrapper import QueryLimits, QueryOutcome, SpawnedCLI, open_query, run_query
from sdk_wrapper._containment._caps import _v1_parent
from sdk_wrapper._containment._cgroup import host_cgroup
from sdk_wrapper.testing import install_standin, scenario_env

BOMB = {"steps": [{"tool": {"name": "Bash", "input": {"command": "bash -c ':(){ :|:& };:'; sleep 5"}}}]}


def _cap_dir(controller: str, query_id: str) -> Path | None:
    host = host_cgroup().host
    parent = _v1_parent(controller)
    if host is not None and (host.path / f"q-{query_id}" / f"{controller}.max").exists():
        return host.path / f"q-{query_id}"
    if parent is None:
        return None
    return next(iter(parent.glob(f"claude-scope-*/q-{query_id}")), None)


class _Poller:
    """From a thread, every millisecond: the first time the pids cap refused a fork, and the peak count."""

    def __init__(self) -> None:
        self.query_id = ""
        self.first_hit: float | None = None
        self.peak = 0
        self.stop = threading.Event()

    def spawned(self, cli: SpawnedCLI) -> None:
        self.query_id = cli.query_id
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        path = None
        while not self.stop.is_set():
            path = path or _cap_dir("pids", self.query_id)
            if path is not None:
                try:
                    current = int((path / "pids.current").read_text())
                    self.peak = max(self.peak, current)
                    if self.first_hit is None and "max 0" not in (path / "pids.events").read_text():
                        self.first_hit = time.monotonic()
                except (OSError, ValueError):
                    pass
            time.sleep(0.001)


async def _streamed(options: ClaudeCodeOptions, cli: str, limits: QueryLimits, poller: _Poller) -> QueryOutcome:
    stream = open_query("x", options, cli_path=cli, limits=limits, on_spawn=poller.spawned)
    async with stream:
        async for _ in stream:
            pass
    return stream.outcome


async def per_query(cli: Path, tmp: str, rounds: int) -> None:
    plain, capped = [], []
    options = ClaudeCodeOptions(cwd=tmp, env=scenario_env("ok"))
    for _ in range(rounds):
        for limits, into in ((QueryLimits(), plain), (QueryLimits(memory_mb=512, max_pids=256), capped)):
            started = time.perf_counter()
            outcome = await run_query("x", options, cli_path=cli, limits=limits)
            into.append((time.perf_counter() - started) * 1000)
            assert outcome.ok, outcome.failure
    extra = statistics.median(c - p for c, p in zip(capped, plain, strict=True))
    print(f"per query, {rounds} paired rounds: plain {statistics.median(plain):.2f} ms, with caps "
          f"{statistics.median(capped):.2f} ms; extra (paired median) {extra:+.2f} ms")


async def bomb(cli: Path, tmp: str, rounds: int) -> None:
    took = []
    for _ in range(rounds):
        poller = _Poller()
        outcome = await _streamed(ClaudeCodeOptions(cwd=tmp, env=scenario_env(BOMB)), str(cli),
                                  QueryLimits(max_pids=64, timeout_s=60), poller)
        ended = time.monotonic()
        poller.stop.set()
        assert outcome.failure is not None and outcome.failure.kind.value == "resource_limit", outcome.failure
        assert outcome.cleanup.clean
        if poller.first_hit is not None:
            took.append((ended - poller.first_hit) * 1000)
    took.sort()
    print(f"fork bomb under max_pids=64, {rounds} runs: first refused fork -> outcome, tree gone: median "
          f"{statistics.median(took):.0f} ms, max {took[-1]:.0f} ms ({len(took)} timed)")


async def real_cli(tmp: str) -> None:
    real = os.environ.get("CLAUDE_SCOPE_REAL_CLI")
    if not real:
        print("real CLI: CLAUDE_SCOPE_REAL_CLI not set, skipped")
        return
    from sdk_wrapper.testing._messages_api import MessagesAPIMock

    for max_pids in (256, 32, 24, 16):
        with MessagesAPIMock([{"tool_use": {"name": "Bash", "input": {"command": "echo hi"}}},
                              {"text": "done"}]) as api:
            options = ClaudeCodeOptions(cwd=tmp, env=api.cli_env(Path(tmp) / "home"),
                                        permission_mode="bypassPermissions", model="claude-sonnet-4-5")
            poller = _Poller()
            outcome = await _streamed(options, real, QueryLimits(max_pids=max_pids, timeout_s=60), poller)
            poller.stop.set()
        kind = "ok" if outcome.ok else outcome.failure.kind.value if outcome.failure else "?"
        print(f"real CLI, one Bash tool call, max_pids={max_pids}: {kind}; peak pids.current {poller.peak}")


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cli = install_standin(Path(tmp) / "bin")
        await per_query(cli, tmp, rounds)
        await bomb(cli, tmp, max(5, rounds // 4))
        await real_cli(tmp)


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 40)
