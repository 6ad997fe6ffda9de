"""Shadow mode for the V3 migration: what the real V3 would have hidden or lost, recorded for a report.

The model is V3's real behaviour on its real SDK (claude-code-sdk 0.0.10), as measured by running the
public V3 code (``migration/MIGRATION.md``, "What V3 really did") and as its code reads:

- **fabricated_success**: 0.0.10 parses each stdout *read*, not each line, so a read that is not exactly
  one whole JSON line (two lines in one read, a line over 64 KiB, malformed JSON) raises its
  ``CLIJSONDecodeError`` inside its task group; the group's ``ExceptionGroup`` text, "unhandled errors in a
  TaskGroup", matches V3's classifier (``"taskgroup"`` and one of its keywords), and V3 yields a made-up
  success with cost 0.0, losing the real result. So: any ``invalid_output`` failure, and any query of
  ours whose reads were not one whole line each, successful or not.
- **stuck_running**: the CLI exits non-zero without a result and its stderr lacks the word "error":
  0.0.10 raises nothing, V3 yields nothing, and V3's phase stays "running" with no reason.
- **processes_left**: a timeout, stall or cancellation (V3 reports those as failures, truthfully) whose
  tree needed SIGKILL or had descendants: 0.0.10 sends SIGTERM to the CLI alone, and its 5 s wait for the
  exit is itself cancelled, so a CLI that ignores SIGTERM and any grandchild run on.

Not hidden by V3 (no record): timeouts and cancellations of a CLI that obeys SIGTERM, exits whose
stderr says "error", the CLI's own error results (max turns, not logged in). Differences that remain
between this model and the real thing: our reads are up to 256 KiB where 0.0.10 read 64 KiB, and read
boundaries depend on timing, so a borderline read may be judged differently; stderr is judged on our
bounded tail, not the whole stream. ``basis`` in each record names the rule that applied.
Records go to the ``masked_failures`` table of ``<working_dir>/.claude-scope/runs.db``.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._outcome import FailureKind, QueryOutcome
from ._redact import redact

#: the orchestrator's default journal (``orchestrator._journal.DEFAULT_PATH``), repeated because sdk_wrapper
#: must not import the orchestrator: the drop-in writes where ``claude-scope masked`` reads.
JOURNAL_RELATIVE = Path(".claude-scope") / "runs.db"
_ENDED_BY_A_LIMIT = {FailureKind.TIMEOUT, FailureKind.STALLED, FailureKind.CANCELLED}
#: its own table, created by whoever writes or reads first: the drop-in runs without any orchestrator, so
#: the journal's schema (orchestrator._journal) cannot own it.
_SCHEMA = """CREATE TABLE IF NOT EXISTS masked_failures (
    recorded REAL NOT NULL, working_dir TEXT NOT NULL, prompt TEXT NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, v3_category TEXT NOT NULL, basis TEXT NOT NULL, session_id TEXT, cost_usd REAL,
    duration_s REAL)"""


@dataclass(frozen=True)
class StreamFacts:
    """What the transport saw that decides how claude-code-sdk 0.0.10 would have read the same stream."""

    misaligned_reads: int = 0
    longest_line: int = 0


def v3_verdict(outcome: QueryOutcome, facts: StreamFacts) -> dict[str, str] | None:
    """``{"v3_category": ..., "basis": ...}`` when the real V3 would have hidden or lost something."""
    failure = outcome.failure
    if failure is not None and failure.kind is FailureKind.INVALID_OUTPUT:
        return {"v3_category": "fabricated_success",
                "basis": "invalid JSON raises inside 0.0.10's task group; V3's classifier masks it"}
    if facts.misaligned_reads:
        return {"v3_category": "fabricated_success",
                "basis": f"{facts.misaligned_reads} stdout read(s) not one whole line (longest line "
                         f"{facts.longest_line} bytes): 0.0.10 parses reads, V3 masks the error"}
    if failure is None:
        return None
    if failure.kind is FailureKind.PROCESS_EXIT and outcome.result is None and failure.exit_code not in (None, 0) \
            and "error" not in failure.stderr_tail.lower():
        return {"v3_category": "stuck_running",
                "basis": "exit without a result and no 'error' in stderr: 0.0.10 raises nothing"}
    cleanup = outcome.cleanup
    if failure.kind in _ENDED_BY_A_LIMIT and (cleanup.sigkill_needed or len(cleanup.pids_ended) > 1):
        # The CLI's descendants always; the CLI too when it ignored SIGTERM.
        left = len(cleanup.pids_ended) - 1 + (1 if cleanup.sigkill_needed else 0)
        return {"v3_category": "processes_left",
                "basis": f"0.0.10 signals the CLI alone and its wait is cancelled: {left} of the "
                         f"{len(cleanup.pids_ended)} process(es) we ended would run on"
                         + (" (the CLI ignored SIGTERM)" if cleanup.sigkill_needed else "")}
    return None


class MaskedFailureLog:
    """Appends to ``masked_failures``; one short transaction per record."""

    def __init__(self, working_dir: str | Path) -> None:
        self.working_dir = Path(working_dir)
        self.path = self.working_dir / JOURNAL_RELATIVE

    def record(self, prompt: str, outcome: QueryOutcome, verdict: dict[str, str]) -> None:
        failure = outcome.failure
        kind = "ok" if failure is None else failure.kind.value
        message = "the CLI's real result" if failure is None else failure.message
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5.0)
        try:
            with db:
                db.execute(_SCHEMA)
                db.execute("INSERT INTO masked_failures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (
                    time.time(), str(self.working_dir), redact(prompt)[:200], kind, redact(message)[:1000],
                    verdict["v3_category"], verdict["basis"], outcome.session_id, outcome.cost_usd,
                    outcome.duration_s))
        finally:
            db.close()


def read_masked(journal_path: str | Path) -> list[dict[str, Any]]:
    """Every recorded verdict, oldest first (empty when shadow mode never recorded one)."""
    path = Path(journal_path)
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=5.0)
    try:
        db.row_factory = sqlite3.Row
        db.execute(_SCHEMA)
        return [dict(r) for r in db.execute("SELECT * FROM masked_failures ORDER BY recorded")]
    finally:
        db.close()
