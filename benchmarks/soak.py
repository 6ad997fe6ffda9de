"""Soak gate: many queries under timeouts and forced cancellations; stop at the first leak.

    python -m benchmarks.soak                 # 1,000 operations (CI's short form)
    python -m benchmarks.soak --hours 8       # as long as you like
    python -m benchmarks.soak --ops 5000 --concurrency 8

Each operation picks a stand-in scenario at random (answers, slow streams, hangs, CLIs that ignore
SIGTERM, crashes, grandchildren that hold stdout or leave the session), runs it through ``run_query`` or
``open_query`` under a 5 s timeout; a third of them (and most hanging ones, so that the short form fits
in CI) are cancelled from outside at a random moment.
Every 100 operations: live processes (the stand-ins' recorded pids and our descendants), open descriptors
and RSS are checked against the start. The first leaked process or descriptor ends the soak with exit 1
and the evidence; a clean run exits 0. A result the CLI did not send would be a failure too, and is
counted: ``fabricated`` must stay 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import anyio
import psutil
from claude_code_sdk import ClaudeCodeOptions, ResultMessage

from sdk_wrapper import QueryLimits, QueryOutcome, open_query, run_query
from sdk_wrapper._containment._guard import guard_pid
from sdk_wrapper.testing import install_standin, process_alive, read_pids, scenario_env

SCENARIOS = ["ok", "slow", "hang", "hang_ignore_term", "exit_error", "max_turns", "grandchild_stdout",
             "grandchild_devnull", "grandchild_setsid", "malformed_json", "rate_limited", "tools"]
HANGING = {"hang", "hang_ignore_term", "grandchild_setsid"}
LIMITS = QueryLimits(timeout_s=5.0, terminate_grace_s=0.3, kill_grace_s=2.0, exit_grace_s=0.5)


class Leak(Exception):
    pass


class Soak:
    def __init__(self, work: Path, cli: Path, pid_file: Path, seed: int) -> None:
        self.work, self.cli, self.pid_file = work, cli, pid_file
        self.rng = random.Random(seed)
        self.me = psutil.Process()
        self.done = 0
        self.kinds: dict[str, int] = {}
        self.fabricated = 0
        self.fds0 = self.rss0 = 0

    async def one(self) -> None:
        scenario = self.rng.choice(SCENARIOS)
        options = ClaudeCodeOptions(cwd=str(self.work), env=scenario_env(scenario))
        # A third of all operations, and most hanging ones (the rest wait out the 5 s timeout), are
        # cancelled from outside at a random moment in their first second.
        forced = self.rng.random() < (0.8 if scenario in HANGING else 1 / 3)
        cancel_at = self.rng.uniform(0.0, 1.0) if forced else None
        outcome: QueryOutcome | None = None
        with anyio.CancelScope() as scope:
            if cancel_at is not None:
                scope.deadline = anyio.current_time() + cancel_at
            if self.rng.random() < 0.5:
                outcome = await run_query("soak", options, limits=LIMITS, cli_path=self.cli)
            else:
                async with open_query("soak", options, limits=LIMITS, cli_path=self.cli) as stream:
                    async for _ in stream:
                        pass
                outcome = stream.outcome
        self.done += 1
        if outcome is None:
            self.kinds["cancelled_outside"] = self.kinds.get("cancelled_outside", 0) + 1
            return
        kind = "ok" if outcome.ok else (outcome.failure.kind.value if outcome.failure else "error_result")
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if outcome.ok and not isinstance(outcome.result, ResultMessage):
            self.fabricated += 1
        if outcome.cleanup.leftover_pids:
            raise Leak(f"operation {self.done} ({scenario}): cleanup left {outcome.cleanup.leftover_pids}")
        if not outcome.cleanup.verified:
            raise Leak(f"operation {self.done} ({scenario}): cleanup not verified: {outcome.cleanup}")

    def check(self) -> str:
        live = [(pid, role) for pid, role in read_pids(self.pid_file) if process_alive(pid)]
        guard = guard_pid()  # the host guard: one per process, for its whole life (sdk_wrapper._containment._guard)
        descendants = [c.pid for c in self.me.children(recursive=True) if process_alive(c.pid) and c.pid != guard]
        fds = self.me.num_fds()
        rss = self.me.memory_info().rss
        line = (f"ops {self.done:>7}  live processes {len(live) + len(descendants):>3}  fds {fds:>4} "
                f"(start {self.fds0})  rss {rss / 2**20:7.1f} MB (start {self.rss0 / 2**20:.1f})  "
                f"fabricated {self.fabricated}")
        if live or descendants:
            pids = sorted({pid for pid, _ in live} | set(descendants))
            raise Leak(f"{line}\nleaked processes: {live} descendants: {descendants}\n"
                       + "\n".join(describe(pid) for pid in pids))
        if fds > self.fds0:
            raise Leak(f"{line}\nleaked descriptors: {fds - self.fds0}")
        if self.fabricated:
            raise Leak(f"{line}\na success without a CLI result")
        return line


def describe(pid: int) -> str:
    """What a leaked process is, for the evidence: its command, state, parent, age, query marker; and
    whether it is still there a second later (a slow exit) or not (a leak for good)."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            facts = (f"  pid {pid}: {' '.join(proc.cmdline())[:160]!r} status {proc.status()} ppid {proc.ppid()} "
                     f"age {time.time() - proc.create_time():.2f}s")
        try:
            facts += f" marker {proc.environ().get('CLAUDE_SCOPE_QUERY_ID', '-')}"
        except psutil.Error:
            facts += " marker ?"
    except psutil.Error as exc:
        return f"  pid {pid}: gone ({type(exc).__name__})"
    time.sleep(1.0)
    return facts + (" (still there 1 s later)" if process_alive(pid) else " (gone 1 s later)")


async def soak(ops: int, hours: float | None, concurrency: int, seed: int) -> int:
    with tempfile.TemporaryDirectory(prefix="claude-scope-soak-") as tmp:
        work = Path(tmp, "work")
        os.mkdir(work)
        cli = install_standin(Path(tmp, "bin"))
        pid_file = Path(tmp, "pids")
        os.environ["CLAUDE_STANDIN_PID_FILE"] = str(pid_file)
        state = Soak(work, cli, pid_file, seed)
        await state.one()  # warm-up (imports, first spawn) before the baselines
        await anyio.sleep(0.2)
        state.fds0, state.rss0 = state.me.num_fds(), state.me.memory_info().rss
        state.done = 0
        deadline = time.monotonic() + hours * 3600 if hours else None
        started = time.monotonic()
        try:
            while state.done < ops if deadline is None else time.monotonic() < deadline:
                async with anyio.create_task_group() as tg:
                    for share in _shares(100, concurrency):
                        tg.start_soon(_batch, state, share)
                await anyio.sleep(0.05)  # let exits be reaped before counting
                print(state.check(), flush=True)
        except Leak as leak:
            print(f"LEAK: {leak}", flush=True)
            return 1
        print(f"clean: {state.done} operations in {time.monotonic() - started:.1f}s, concurrency {concurrency}; "
              f"outcomes {dict(sorted(state.kinds.items()))}", flush=True)
        return 0


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def _batch(state: Soak, count: int) -> None:
    for _ in range(count):
        await state.one()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--hours", type=float, help="run for this long instead of --ops")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()
    logging.getLogger("claude_code_sdk").setLevel(logging.CRITICAL)
    return anyio.run(soak, args.ops, args.hours, args.concurrency, args.seed)


if __name__ == "__main__":
    sys.exit(main())
