"""``claude-scope``: the command line. ``demo`` runs queries offline against the shipped stand-in CLI."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import anyio
from claude_code_sdk import ClaudeCodeOptions

from ._outcome import QueryLimits, QueryOutcome
from ._run import run_query
from .testing import install_standin, read_pids, scenario_env

# (scenario, what it shows, limits)
_DEMO = [
    ("ok", "a plain answer", QueryLimits(timeout_s=30)),
    ("tools", "tool use with real side effects (Write, Bash)", QueryLimits(timeout_s=30)),
    ("max_turns", "the CLI's own error result", QueryLimits(timeout_s=30)),
    ("rate_limited", "an API 429, classified from the result's fields", QueryLimits(timeout_s=30)),
    ("grandchild_stdout", "a grandchild holding stdout after the result", QueryLimits(timeout_s=30)),
    ("hang_ignore_term", "a CLI that hangs and ignores SIGTERM", QueryLimits(idle_timeout_s=1, terminate_grace_s=0.5)),
    ("exit_error", "a CLI that dies mid-stream", QueryLimits(timeout_s=30)),
]


def _row(name: str, outcome: QueryOutcome) -> str:
    kind = "-" if outcome.failure is None else outcome.failure.kind.value
    cost = "-" if outcome.cost_usd is None else f"{outcome.cost_usd:.4f}"
    signals = ",".join(sorted({sig for _, sig in outcome.cleanup.signals_sent})) or "-"
    return (f"{name:<20} {'ok' if outcome.ok else 'FAILED':<7} {kind:<14} {outcome.message_count:>5} {cost:>7} "
            f"{signals:<15} {len(outcome.cleanup.leftover_pids):>4} {outcome.duration_s:>7.3f}")


async def _demo() -> int:
    with tempfile.TemporaryDirectory(prefix="claude-scope-demo-") as tmp:
        cli, work, pids = _prepare(Path(tmp))
        print("claude-scope demo: each query runs against the stand-in CLI (offline), in a scope we own.")
        print(f"{'scenario':<20} {'status':<7} {'failure':<14} {'msgs':>5} {'cost':>7} {'signals':<15} "
              f"{'left':>4} {'seconds':>7}")
        for scenario, _what, limits in _DEMO:
            options = ClaudeCodeOptions(cwd=str(work), env=scenario_env(scenario, pid_file=pids))
            outcome = await run_query(f"demo: {scenario}", options, limits=limits, cli_path=cli)
            print(_row(scenario, outcome))
        alive = [pid for pid, _ in read_pids(pids) if _alive(pid)]
        print(f"\nprocesses the stand-ins started: {len(read_pids(pids))}; still alive: {len(alive)}")
        print(f"files the 'tools' scenario wrote: {sorted(os.listdir(work))}")
        return 1 if alive else 0


def _prepare(tmp: Path) -> tuple[Path, Path, Path]:
    (tmp / "work").mkdir()
    return install_standin(tmp / "bin"), tmp / "work", tmp / "pids"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="claude-scope", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run example queries offline against the stand-in CLI")
    args = parser.parse_args(argv)
    if args.command == "demo":
        logging.getLogger("claude_code_sdk").setLevel(logging.CRITICAL)  # the demo prints outcomes instead
        return anyio.run(_demo)
    return 2


if __name__ == "__main__":
    sys.exit(main())
