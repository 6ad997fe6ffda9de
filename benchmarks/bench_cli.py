"""How long ``claude-scope`` takes to answer, as a user waits for it: each command's wall time in a fresh
process (the median and the slowest of N), in a project with one finished run.

    python -m benchmarks.bench_cli [N]

Goals (the design issue): under 150 ms for the commands that run no query (--help, status, runs, report,
masked), under 400 ms for Temporal ``status`` and ``cancel`` (``--temporal``: against a dev server and a
worker, a run that hangs; ``cancel`` last, timed to the line that says the cancel is sent and to its
exit, once the run's phase has ended its tree). None of them imports an SDK.

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

#: bytecode cached, as an installed wheel has it (pip compiles it); the first, untimed, call of each command
#: writes what is missing (this machine sets PYTHONDONTWRITEBYTECODE, which would time the compiler)
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
COMMANDS = [["--help"], ["status"], ["runs"], ["masked"], ["report", "--out", "page.html"]]


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "orchestrator._cli", *argv], cwd=cwd, capture_output=True, check=False,
                   env=_ENV)
    return (time.perf_counter() - started) * 1000


def first_line(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall ms until the command's first line of output, and until it exits."""
    started = time.perf_counter()
    with subprocess.Popen([sys.executable, "-m", "orchestrator._cli", *argv], cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, env=_ENV) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        line = (time.perf_counter() - started) * 1000
        proc.wait()
    return line, (time.perf_counter() - started) * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 5
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "p.toml").write_text('[[phases]]\nname = "a"\nprompt = "x"\nscenario = "ok"\n')
        subprocess.run([sys.executable, "-m", "orchestrator._cli", "run", "p.toml", "--simulate"], cwd=project,
                       capture_output=True, check=True)
        print(f"{'command':<24} {'median ms':>10} {'max ms':>8}")
        for argv in COMMANDS:
            timed(argv, project)  # bytecode written
            times = [timed(argv, project) for _ in range(n)]
            print(f"{' '.join(argv):<24} {statistics.median(times):>10.0f} {max(times):>8.0f}")
    if "--temporal" in sys.argv:
        anyio.run(temporal_commands, n)


async def temporal_commands(n: int) -> None:
    """``status --address`` N times against a running run, then ``cancel --address`` of N runs."""
    from orchestrator import temporal

    from ._temporal import dev_worker

    async with dev_worker("bench-cli") as bench:
        spec = temporal.spec_from_data({"phases": [{"name": "a", "prompt": "x", "scenario": "hang"}]}, simulate=True)
        run_id = await bench.runner.submit(spec, run_id="bench-cli")
        await anyio.sleep(1.0)
        address = ["--address", bench.address]
        await anyio.to_thread.run_sync(timed, ["status", run_id, *address], bench.workspace)  # bytecode written
        times = [await anyio.to_thread.run_sync(timed, ["status", run_id, *address], bench.workspace)
                 for _ in range(n)]
        print(f"{'status --address':<24} {statistics.median(times):>10.0f} {max(times):>8.0f}")
        sent_ms, ended_ms = [], []
        for i in range(n):  # each cancel ends its run: one run per cancel
            other = await bench.runner.submit(spec, run_id=f"bench-cli-{i}")
            await anyio.sleep(1.0)
            sent, took = await anyio.to_thread.run_sync(first_line, ["cancel", other, *address], bench.workspace)
            sent_ms.append(sent)
            ended_ms.append(took)
        print(f"{'cancel --address: sent':<24} {statistics.median(sent_ms):>10.0f} {max(sent_ms):>8.0f}  "
              "(until it says the cancel is sent)")
        print(f"{'... and the run ended':<24} {statistics.median(ended_ms):>10.0f} {max(ended_ms):>8.0f}  "
              "(its phase's tree ended, the run closed)")


if __name__ == "__main__":
    main()
