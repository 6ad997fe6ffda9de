"""A journal with 100,000 attempts: ``runs`` and ``status`` as a person sees them (the command's wall time),
and ``prune``.

    python -m benchmarks.bench_retention [ATTEMPTS]

Builds the journal with the journal's own schema (rows written in bulk, as months of runs would have left
them: 2,000 runs of 10 phases, 5 attempts each, each attempt with a 2 KB prompt), then times
``claude-scope runs`` and ``claude-scope status RUN`` (median of 5, as subprocesses: what a person waits for)
and ``claude-scope prune --keep 100`` once, with the journal's size before and after.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator import Journal


def build(db: Path, attempts: int) -> None:
    Journal(db).close()  # the schema, as a journal makes it
    runs = max(1, attempts // 50)
    conn = sqlite3.connect(db)
    now = time.time() - runs * 60
    prompt = "a prompt of two kilobytes " * 80
    with conn:
        for r in range(runs):
            run_id = f"run-{r:06d}"
            started = now + r * 60
            pipeline = {"name": "bench", "phases": [{"name": f"p{i}"} for i in range(10)]}
            conn.execute("INSERT INTO runs (run_id, pipeline, status, started, ended) VALUES (?, ?, 'succeeded', ?, ?)",
                         (run_id, json.dumps(pipeline), started, started + 30))
            conn.executemany("INSERT INTO phases (run_id, name, status, attempts, cost_usd, duration_s, updated) "
                             "VALUES (?, ?, 'succeeded', 5, 0.05, 3.0, ?)",
                             [(run_id, f"p{i}", started) for i in range(10)])
            conn.executemany("INSERT INTO attempts (run_id, name, number, started, ended, ok, cost_usd, prompt) "
                             "VALUES (?, ?, ?, ?, ?, 1, 0.01, ?)",
                             [(run_id, f"p{i}", n, started, started + 1, prompt) for i in range(10)
                              for n in range(1, 6)])
    conn.close()


def timed(cwd: Path, *args: str, rounds: int = 5) -> float:
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "orchestrator._cli", "--journal", str(cwd / "runs.db"), *args],
                              cwd=cwd, capture_output=True, text=True)
        took.append((time.perf_counter() - started) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"{args}: {done.stderr}")
    return statistics.median(took)


def main() -> None:
    attempts = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        db = where / "runs.db"
        build(db, attempts)
        with Journal(db) as journal:
            count = journal.pragma("page_count") * journal.pragma("page_size")
        print(f"journal with {attempts} attempts: {count / 1e6:.1f} MB")
        print(f"claude-scope runs            {timed(where, 'runs'):7.1f} ms (median of 5, wall, as a subprocess)")
        print(f"claude-scope status RUN      {timed(where, 'status', 'run-000000'):7.1f} ms")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "orchestrator._cli", "--journal", str(db), "prune", "--keep",
                               "100"], cwd=where, capture_output=True, text=True)
        print(f"claude-scope prune --keep 100: {(time.perf_counter() - started):.2f} s wall")
        print("  " + done.stdout.strip().replace("\n", "\n  "))
        print(f"claude-scope runs after      {timed(where, 'runs'):7.1f} ms")


if __name__ == "__main__":
    main()
