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
Records go to the ``masked_failures`` table of ``<working_dir>/.claude-scope/runs.db`` (``sdk_wrapper._masked``,
which ``claude-scope masked`` reads without importing an SDK).
"""

from __future__ import annotations

from dataclasses import dataclass

from .._masked import JOURNAL_RELATIVE, MaskedFailureLog, read_masked
from .._outcome import FailureKind, QueryOutcome

__all__ = ["JOURNAL_RELATIVE", "MaskedFailureLog", "StreamFacts", "read_masked", "v3_verdict"]

_ENDED_BY_A_LIMIT = {FailureKind.TIMEOUT, FailureKind.STALLED, FailureKind.CANCELLED}


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
