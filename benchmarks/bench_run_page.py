"""What a run page costs to make: reading a huge message log, and drawing a large run.

    python -m benchmarks.bench_run_page [--messages N]

Prints a markdown table: the time and peak RSS growth of reading an N-message JSONL log into a transcript
(default 1,000,000; the page keeps its first and last items, so memory must stay flat), and the time and
size of the page of a 50-phase run with 3 attempts each, transcripts included.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from orchestrator._runpage import AttemptView, CleanupView, PhaseView, RunView, read_transcript, render_run_page


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def huge_log(directory: Path, messages: int) -> tuple[float, float, int]:
    log = directory / "phase.1.jsonl"
    line = json.dumps({"type": "AssistantMessage", "content": [{"text": "part of the answer"}],
                       "model": "m", "parent_tool_use_id": None}) + "\n"
    with log.open("w") as fh:
        for _ in range(messages):
            fh.write(line)
    before = _peak_mb()
    started = time.perf_counter()
    transcript = read_transcript(log)
    seconds = time.perf_counter() - started
    assert transcript.count == messages
    return seconds, _peak_mb() - before, log.stat().st_size


def big_run(directory: Path) -> tuple[float, int]:
    log = directory / "small.jsonl"
    with log.open("w") as fh:
        for i in range(300):
            fh.write(json.dumps({"type": "AssistantMessage", "content": [
                {"id": f"t{i}", "name": "Bash", "input": {"command": f"echo {i}"}}]}) + "\n")
            fh.write(json.dumps({"type": "UserMessage", "content": [
                {"tool_use_id": f"t{i}", "content": "x" * 2000, "is_error": False}]}) + "\n")
    transcript = read_transcript(log)
    t0 = time.time() - 3600
    phases = tuple(PhaseView(
        name=f"phase-{p}", status="succeeded" if p % 7 else "failed", kind=None if p % 7 else "max_turns",
        message="" if p % 7 else "error_max_turns", cost_usd=0.01, num_turns=3, duration_s=60.0,
        attempts=tuple(AttemptView(number=a, started=t0 + p * 60 + a * 20, ended=t0 + p * 60 + a * 20 + 15,
                                   ok=a == 3, cost_usd=0.01, num_turns=3, cleanup=CleanupView(pids_ended=(1, 2)),
                                   transcript=transcript) for a in (1, 2, 3)))
        for p in range(50))
    view = RunView(run_id="bench", pipeline="bench", status="failed", note="", started=t0, ended=t0 + 3100,
                   made=time.time(), phases=phases, source="benchmark")
    started = time.perf_counter()
    page = render_run_page(view)
    return time.perf_counter() - started, len(page.encode())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seconds, growth, size = huge_log(Path(tmp), args.messages)
        render_s, page_bytes = big_run(Path(tmp))
    print("| measurement | value |")
    print("|---|---|")
    print(f"| read a {args.messages:,}-message log ({size / 2**20:.0f} MB) into a transcript (s) | {seconds:.2f} |")
    print(f"| ... peak RSS growth (MB) | {growth:.1f} |")
    print(f"| draw a 50-phase run, 3 attempts each, 250 transcript items each (ms) | {render_s * 1000:.0f} |")
    print(f"| ... page size (MB) | {page_bytes / 2**20:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
