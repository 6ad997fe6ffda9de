"""How long ``claude-scope`` takes to answer, as a user waits for it: each command's wall time in a fresh
process (the median and the slowest of N), in a project with one finished run.

    python -m benchmarks.bench_cli [N]

Goals (the design issue): under 150 ms for the commands that run no query (--help, status, runs, report,
masked), under 400 ms for Temporal ``status`` and ``cancel`` (``--temporal``: against a dev server and a
worker, a run that hangs; ``cancel`` last). ``--help``, ``status`` and ``runs`` import no SDK; ``report`` and
``masked`` still do, through the journal.

    python -m benchmarks.bench_cli [N] [--temporal]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

COMMANDS = [["--help"], ["status"], ["runs"], ["masked"], ["report", "--out", "page.html"]]


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "orchestrator._cli", *argv], cwd=cwd, capture_output=True, check=False,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return (time.perf_counter() - started) * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 5
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "p.toml").write_text('[[phases]]\nname = "a"\nprompt = "x"\nscenario = "ok"\n')
        subprocess.run([sys.executable, "-m", "orchestrator._cli", "run", "p.toml", "--simulate"], cwd=project,
                       capture_output=True, check=True)
        print(f"{'command':<24} {'median ms':>10} {'max ms':>8}")
        for argv in COMMANDS:
            times = [timed(argv, project) for _ in range(n)]
            print(f"{' '.join(argv):<24} {statistics.median(times):>10.0f} {max(times):>8.0f}")
    if "--temporal" in sys.argv:
        anyio.run(temporal_commands, n)


async def temporal_commands(n: int) -> None:
    """``status --address`` N times against a running run, then ``cancel --address`` once (it ends the run)."""
    from orchestrator import temporal

    from ._temporal import dev_worker

    async with dev_worker("bench-cli") as bench:
        spec = temporal.spec_from_data({"phases": [{"name": "a", "prompt": "x", "scenario": "hang"}]}, simulate=True)
        run_id = await bench.runner.submit(spec, run_id="bench-cli")
        await anyio.sleep(1.0)
        address = ["--address", bench.address]
        times = [await anyio.to_thread.run_sync(timed, ["status", run_id, *address], bench.workspace)
                 for _ in range(n)]
        print(f"{'status --address':<24} {statistics.median(times):>10.0f} {max(times):>8.0f}")
        took = await anyio.to_thread.run_sync(timed, ["cancel", run_id, *address], bench.workspace)
        print(f"{'cancel --address':<24} {took:>10.0f} {took:>8.0f}  (once: it ends the run)")


if __name__ == "__main__":
    main()
