"""How long ``claude-scope`` takes to answer, as a user waits for it: each command's wall time in a fresh
process (the median and the slowest of N), in a project with one finished run.

    python -m benchmarks.bench_cli [N]

Goals (the design issue): under 150 ms for the commands that run no query (--help, status, runs, report,
masked). --help parses with the standard library only; the others still import an SDK through the journal.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [["--help"], ["status"], ["runs"], ["masked"], ["report", "--out", "page.html"]]


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "orchestrator._cli", *argv], cwd=cwd, capture_output=True, check=False,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return (time.perf_counter() - started) * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "p.toml").write_text('[[phases]]\nname = "a"\nprompt = "x"\nscenario = "ok"\n')
        subprocess.run([sys.executable, "-m", "orchestrator._cli", "run", "p.toml", "--simulate"], cwd=project,
                       capture_output=True, check=True)
        print(f"{'command':<24} {'median ms':>10} {'max ms':>8}")
        for argv in COMMANDS:
            times = [timed(argv, project) for _ in range(n)]
            print(f"{' '.join(argv):<24} {statistics.median(times):>10.0f} {max(times):>8.0f}")


if __name__ == "__main__":
    main()
