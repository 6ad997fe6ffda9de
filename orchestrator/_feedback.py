"""What a retry is told about the attempt before it: the block appended to its prompt.

A phase with ``feedback`` on retries a failed attempt with its prompt plus this block: the previous
attempt's failure (kind, message, the CLI's stderr tail) and the evidence of each check that failed (what
it found, a command's output tail). Telling the agent what failed is the point of retrying after side
effects. Every part is cut to a bound, and so is the whole, so a chatty test suite cannot flood the prompt.

Plain data in, a string out: ``told_after`` is the one place that decides what an attempt is told, from
what every engine records of the attempt before (the local orchestrator from the attempt it just ran or,
on a resume, from the journal; the Temporal workflow from the attempt's record), so both engines tell a
retry the same. The caller redacts it before it is used, as the inputs may quote anything the CLI or a
check printed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._status import PhaseKind

#: the most a block says, in characters, and the most each part of it says
MAX_BLOCK = 8000
MAX_PART = 2000
#: the line a block starts with (the stand-in's scenarios may look for it)
HEADER = "--- Feedback from claude-scope: the previous attempt did not pass ---"
#: the message of an attempt whose query was ok but whose checks failed
CHECKS_FAILED = "the CLI's result was ok; checks failed"


def _tail(text: str, limit: int = MAX_PART) -> str:
    text = text.strip()
    return text if len(text) <= limit else "[...] " + text[-limit:]


def feedback_block(attempt: int, kind: str | None, message: str, stderr_tail: str = "",
                   checks: Iterable[Mapping[str, Any]] = ()) -> str:
    """The block for the attempt after ``attempt``: its failure and its failed checks (``CheckResult.to_dict``
    shapes), bounded."""
    lines = [HEADER, f"Attempt {attempt} ended as {kind or 'failed'}: {_tail(message, 1000) or '(no message)'}"]
    failed = [c for c in checks if not c.get("passed")]
    if failed:
        lines.append("Checks that failed:")
        for check in failed:
            lines.append(f"- {check.get('name', '?')}: {_tail(str(check.get('evidence', '')), 500)}")
            output = str((check.get("details") or {}).get("output_tail") or "")
            if output.strip():
                lines.append("  its output ended with:\n" + _indent(_tail(output)))
    if stderr_tail.strip():
        lines.append("The CLI's stderr ended with:\n" + _indent(_tail(stderr_tail)))
    lines.append("Fix what failed and complete the task.")
    block = "\n".join(lines)
    return block if len(block) <= MAX_BLOCK else block[:MAX_BLOCK - 40] + "\n[... feedback cut to its bound]"


def told_after(attempt: int, *, query_ok: bool, kind: str | None, message: str, stderr_tail: str = "",
               checks: Iterable[Mapping[str, Any]] = ()) -> str:
    """What the attempt after ``attempt`` is told of it, or "" when it passed. A query that failed is told
    by its failure; a query whose result was ok but whose checks failed, as ``validation_failed``."""
    checks = list(checks)
    if query_ok:
        if all(c.get("passed") for c in checks):
            return ""
        kind, message, stderr_tail = PhaseKind.VALIDATION_FAILED.value, CHECKS_FAILED, ""
    return feedback_block(attempt, kind, message, stderr_tail, checks)


def with_feedback(prompt: str, block: str) -> str:
    """The prompt an attempt gets: the phase's own, then the block (none for a first attempt)."""
    return f"{prompt}\n\n{block}" if block else prompt


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
