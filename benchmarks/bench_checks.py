"""What containing a check command costs: ``sdk_wrapper.run_contained`` against a plain ``subprocess.run`` of
the same command, in turn, in one interpreter (so both see the same machine at the same moment).

    python -m benchmarks.bench_checks [ROUNDS]

Prints a table: median, p95 and the median of each round's difference, in ms of wall time, for a command
that exits at once (``true``) and one that leaves a child in the background (``sh -c 'sleep 30 & echo'``),
which ``subprocess.run`` leaves running (killed here after each run, outside its timing) and the
contained run ends and verifies gone, inside its timing.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import anyio

from sdk_wrapper import host_containment, run_contained

#: the background child lets go of the output pipe: with it held, subprocess.run would wait for the child
COMMANDS = {"true": ["true"], "background child": ["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"]}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _plain(argv: list[str], cwd: str) -> float:
    """One plain run, in ms; the child it leaves is killed after the timing."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=30, check=False)
    took = (time.perf_counter() - started) * 1000
    for line in done.stdout.split():
        os.kill(int(line), signal.SIGKILL)
    return took


async def measure(rounds: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as cwd:
        for label, argv in COMMANDS.items():
            plain: list[float] = []
            contained: list[float] = []
            for _ in range(rounds):
                plain.append(_plain(argv, cwd))
                started = time.perf_counter()
                outcome = await run_contained(argv, cwd=cwd, timeout_s=30)
                contained.append((time.perf_counter() - started) * 1000)
                if not outcome.cleanup.clean:
                    raise RuntimeError(f"left: {outcome.cleanup.leftover_pids}")
            rows.append({"command": label, "plain_ms": statistics.median(plain), "plain_p95_ms": _p95(plain),
                         "contained_ms": statistics.median(contained), "contained_p95_ms": _p95(contained),
                         "extra_ms": statistics.median(c - p for c, p in zip(contained, plain, strict=True)),
                         "rounds": rounds})
    return rows


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    rows = anyio.run(measure, rounds)
    print(f"containment here: {host_containment().containment.value}")
    print(f"{'command':<18} {'plain ms':>9} {'p95':>7} {'contained ms':>13} {'p95':>7} {'extra (paired)':>15}")
    for r in rows:
        print(f"{r['command']:<18} {r['plain_ms']:>9.2f} {r['plain_p95_ms']:>7.2f} {r['contained_ms']:>13.2f} "
              f"{r['contained_p95_ms']:>7.2f} {r['extra_ms']:>15.2f}")


if __name__ == "__main__":
    main()
