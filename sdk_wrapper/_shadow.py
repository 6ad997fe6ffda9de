"""Shadow mode for the V3 migration: which of our failures V3 would have hidden, recorded for a report.

V3 decided by searching the error's text: "TaskGroup", "cancel scope" or "unhandled errors" made it a
"taskgroup_cleanup" error, and it then yielded a fabricated success. ``v3_would_mask`` reproduces that
verdict for a Failure of ours, on two grounds (kept in the record as ``basis``):
- ``classifier``: V3's own substring test matches the text of the failure's exception or of a leaf;
- ``matrix``: the failure is a timeout, stall or cancellation, which the raw SDK surfaces as the
  cancel-scope RuntimeError (measured, ../shared/sdk-failure-matrix.md rows b, c2, d and the second probe).
Searching message text is what this project replaces; it lives here only to model what V3 did.
Records go to the ``masked_failures`` table of ``<working_dir>/.claude-scope/runs.db``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from ._outcome import Failure, FailureKind, QueryOutcome
from ._redact import redact

_V3_TASKGROUP_MARKERS = ("TaskGroup", "cancel scope", "unhandled errors")
_RAISES_CANCEL_SCOPE_ERROR_IN_RAW_SDK = {FailureKind.TIMEOUT, FailureKind.STALLED, FailureKind.CANCELLED}
JOURNAL_RELATIVE = Path(".claude-scope") / "runs.db"
_SCHEMA = """CREATE TABLE IF NOT EXISTS masked_failures (
    recorded REAL NOT NULL, working_dir TEXT NOT NULL, prompt TEXT NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, v3_category TEXT NOT NULL, basis TEXT NOT NULL, session_id TEXT, cost_usd REAL,
    duration_s REAL)"""


def v3_string_category(text: str) -> str:
    """V3's ``_classify_error``, as its contract describes it: by substring of the message."""
    if any(marker in text for marker in _V3_TASKGROUP_MARKERS):
        return "taskgroup_cleanup"
    lowered = text.lower()
    if "websearch" in lowered and "timeout" in lowered:
        return "websearch_timeout"
    if "cost" in lowered:
        return "cost_parsing"
    if "auth" in lowered or "api key" in lowered:
        return "authentication"
    return "execution_error"


def v3_would_mask(failure: Failure) -> dict[str, str] | None:
    """``{"v3_category": "taskgroup_cleanup", "basis": ...}`` if V3 would have reported success."""
    texts = [str(failure.cause)] if failure.cause is not None else []
    texts += [str(leaf.cause) for leaf in failure.leaves if leaf.cause is not None]
    if any(v3_string_category(t) == "taskgroup_cleanup" for t in texts):
        return {"v3_category": "taskgroup_cleanup", "basis": "classifier"}
    if failure.kind in _RAISES_CANCEL_SCOPE_ERROR_IN_RAW_SDK:
        return {"v3_category": "taskgroup_cleanup", "basis": "matrix"}
    return None


class MaskedFailureLog:
    """Appends to ``masked_failures``; one short transaction per record."""

    def __init__(self, working_dir: str | Path) -> None:
        self.working_dir = Path(working_dir)
        self.path = self.working_dir / JOURNAL_RELATIVE

    def record(self, prompt: str, outcome: QueryOutcome, failure: Failure, verdict: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5.0)
        try:
            with db:
                db.execute(_SCHEMA)
                db.execute("INSERT INTO masked_failures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (
                    time.time(), str(self.working_dir), redact(prompt)[:200], failure.kind.value,
                    redact(failure.message)[:1000], verdict["v3_category"], verdict["basis"], outcome.session_id,
                    outcome.cost_usd, outcome.duration_s))
        finally:
            db.close()


def read_masked(journal_path: str | Path) -> list[dict[str, Any]]:
    """Every recorded masked failure, oldest first (empty when shadow mode never recorded one)."""
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
