"""What handing evidence on costs: loading (parsing and checking) a prompt template, and rendering it with an
earlier phase's result and a project file, each at the 20,000-character bound.

    python -m benchmarks.bench_template [N]

Prints a table of the median and p95 in microseconds over N runs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from orchestrator import PhaseOutcome, PhaseStatus
from orchestrator._template import MAX_HANDED_ON, TemplatePrompt

SOURCE = 'Plan from the research:\n{{ phases.research.result }}\nThe outline:\n{{ file("outline.md") }}\n'


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    outcomes = {"research": PhaseOutcome("research", PhaseStatus.SUCCEEDED, result_text="r" * MAX_HANDED_ON)}
    loads, renders = [], []
    with tempfile.TemporaryDirectory() as project:
        (Path(project) / "outline.md").write_text("o" * MAX_HANDED_ON)
        for _ in range(n):
            started = time.perf_counter()
            prompt = TemplatePrompt(SOURCE, "phase 'plan'")
            loads.append((time.perf_counter() - started) * 1e6)
            started = time.perf_counter()
            text = prompt.render(outcomes, Path(project))
            renders.append((time.perf_counter() - started) * 1e6)
    print(f"{'step':<36} {'median us':>10} {'p95 us':>8}")
    for label, values in (("load (parse + check names)", loads),
                          (f"render ({len(text):,} characters)", renders)):
        print(f"{label:<36} {statistics.median(values):>10.1f} {_p95(values):>8.1f}")


if __name__ == "__main__":
    main()
