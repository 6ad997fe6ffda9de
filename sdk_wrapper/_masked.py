"""The ``masked_failures`` table: what shadow mode (``sdk_wrapper.v3``) judged the real V3 would have hidden
or lost, one row per query, and ``read_masked`` for ``claude-scope masked``. Standard library only (and our
outcome types): the report is read without importing an SDK, which the drop-in's package does.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._redact import redact

if TYPE_CHECKING:
    from ._outcome import QueryOutcome

#: the orchestrator's default journal (``orchestrator._journal.DEFAULT_PATH``), repeated because sdk_wrapper
#: must not import the orchestrator: the drop-in writes where ``claude-scope masked`` reads.
JOURNAL_RELATIVE = Path(".claude-scope") / "runs.db"
#: its own table, created by whoever writes or reads first: the drop-in runs without any orchestrator, so
#: the journal's schema (orchestrator._journal) cannot own it.
_SCHEMA = """CREATE TABLE IF NOT EXISTS masked_failures (
    recorded REAL NOT NULL, working_dir TEXT NOT NULL, prompt TEXT NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, v3_category TEXT NOT NULL, basis TEXT NOT NULL, session_id TEXT, cost_usd REAL,
    duration_s REAL)"""


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
