"""The run journal: SQLite (WAL, one transaction per state change) plus a JSONL file of messages per phase.

Nothing is lost: a phase's status is committed when it changes, so a ``kill -9`` of the orchestrator
keeps every finished phase; the pid (with its start time and query id) of a running CLI is committed as
soon as it is spawned, so the next start finds and ends what a killed run left behind. A corrupt or
locked database is a typed error naming the file, never a silent fresh start.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk_wrapper import redact

from ._model import PhaseOutcome, PhaseStatus

DEFAULT_PATH = Path(".claude-scope") / "runs.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL,
    started REAL NOT NULL, ended REAL, note TEXT
);
CREATE TABLE IF NOT EXISTS phases (
    run_id TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL, duration_s REAL, kind TEXT, message TEXT, session_id TEXT, num_turns INTEGER,
    evidence TEXT, updated REAL NOT NULL, PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL, name TEXT NOT NULL, number INTEGER NOT NULL, started REAL NOT NULL, ended REAL,
    ok INTEGER, kind TEXT, message TEXT, cost_usd REAL, session_id TEXT, PRIMARY KEY (run_id, name, number)
);
CREATE TABLE IF NOT EXISTS live_processes (
    run_id TEXT NOT NULL, name TEXT NOT NULL, pid INTEGER NOT NULL, create_time REAL NOT NULL,
    query_id TEXT NOT NULL, PRIMARY KEY (run_id, name, pid)
);
"""


class JournalError(RuntimeError):
    """The journal cannot be used. ``path`` names the database."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(f"{message}: {path}")
        self.path = path


class JournalCorruptError(JournalError):
    """The file is not a usable SQLite database (it is left untouched for inspection)."""


class JournalLockedError(JournalError):
    """Another process holds a lock on the journal longer than the busy timeout."""


@dataclass(frozen=True)
class LiveProcess:
    run_id: str
    name: str
    pid: int
    create_time: float
    query_id: str


def _translate(exc: sqlite3.Error, path: Path) -> JournalError:
    code = getattr(exc, "sqlite_errorcode", None)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return JournalLockedError("the journal is locked by another process", path)
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or (
            isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)):
        return JournalCorruptError("the journal is not a usable SQLite database", path)
    return JournalError(f"journal error ({type(exc).__name__}, code {code})", path)


class Journal:
    """One SQLite file. Use as a context manager or call ``close()``."""

    def __init__(self, path: str | Path = DEFAULT_PATH, *, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.messages_dir = self.path.parent / "messages"
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("SELECT count(*) FROM runs").fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            self._db.row_factory = sqlite3.Row
            return list(self._db.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    # -- runs -------------------------------------------------------------------------------------
    def start_run(self, run_id: str, pipeline: dict[str, Any], phase_names: list[str]) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO runs (run_id, pipeline, status, started) VALUES (?, ?, 'running', ?)",
                       (run_id, json.dumps(pipeline), now))
            db.execute("UPDATE runs SET status = 'running', ended = NULL WHERE run_id = ?", (run_id,))
            for name in phase_names:
                db.execute("INSERT OR IGNORE INTO phases (run_id, name, status, updated) VALUES (?, ?, 'pending', ?)",
                           (run_id, name, now))

    def end_run(self, run_id: str, status: str, note: str = "") -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET status = ?, ended = ?, note = ? WHERE run_id = ?",
                       (status, time.time(), note, run_id))

    def runs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._query(
            "SELECT run_id, status, started, ended, note FROM runs ORDER BY started DESC")]

    def run_exists(self, run_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)))

    def pipeline_of(self, run_id: str) -> dict[str, Any]:
        rows = self._query("SELECT pipeline FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise KeyError(run_id)
        result: dict[str, Any] = json.loads(rows[0]["pipeline"])
        return result

    # -- phases -----------------------------------------------------------------------------------
    def phase_running(self, run_id: str, name: str, attempt: int) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE phases SET status = 'running', attempts = ?, updated = ? WHERE run_id = ? AND name = ?",
                       (attempt, now, run_id, name))
            db.execute("INSERT OR REPLACE INTO attempts (run_id, name, number, started) VALUES (?, ?, ?, ?)",
                       (run_id, name, attempt, now))

    def attempt_ended(self, run_id: str, name: str, number: int, ok: bool, kind: str | None, message: str,
                      cost: float | None, session_id: str | None) -> None:
        with self._tx() as db:
            db.execute("UPDATE attempts SET ended = ?, ok = ?, kind = ?, message = ?, cost_usd = ?, session_id = ? "
                       "WHERE run_id = ? AND name = ? AND number = ?",
                       (time.time(), int(ok), kind, redact(message)[:2000], cost, session_id, run_id, name, number))
            db.execute("DELETE FROM live_processes WHERE run_id = ? AND name = ?", (run_id, name))

    def phase_ended(self, run_id: str, outcome: PhaseOutcome) -> None:
        evidence = json.dumps([c.to_dict() for c in outcome.checks])
        with self._tx() as db:
            db.execute(
                "UPDATE phases SET status = ?, attempts = ?, cost_usd = ?, duration_s = ?, kind = ?, message = ?, "
                "session_id = ?, num_turns = ?, evidence = ?, updated = ? WHERE run_id = ? AND name = ?",
                (outcome.status.value, outcome.attempts, outcome.cost_usd, outcome.duration_s, outcome.kind,
                 redact(outcome.message)[:4000], outcome.session_id, outcome.num_turns, evidence, time.time(),
                 run_id, outcome.name))

    def phases(self, run_id: str) -> dict[str, dict[str, Any]]:
        return {r["name"]: dict(r) for r in self._query("SELECT * FROM phases WHERE run_id = ?", (run_id,))}

    def recorded_outcome(self, run_id: str, name: str) -> PhaseOutcome | None:
        row = self.phases(run_id).get(name)
        if row is None:
            return None
        return PhaseOutcome(
            name=name, status=PhaseStatus(row["status"]), attempts=row["attempts"], cost_usd=row["cost_usd"],
            duration_s=row["duration_s"] or 0.0, kind=row["kind"], message=row["message"] or "",
            session_id=row["session_id"], num_turns=row["num_turns"], from_journal=True,
        )

    # -- processes --------------------------------------------------------------------------------
    def process_started(self, run_id: str, name: str, pid: int, create_time: float, query_id: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO live_processes VALUES (?, ?, ?, ?, ?)",
                       (run_id, name, pid, create_time, query_id))

    def live_processes(self) -> list[LiveProcess]:
        return [LiveProcess(r["run_id"], r["name"], r["pid"], r["create_time"], r["query_id"])
                for r in self._query("SELECT * FROM live_processes")]

    def forget_process(self, proc: LiveProcess) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM live_processes WHERE run_id = ? AND name = ? AND pid = ?",
                       (proc.run_id, proc.name, proc.pid))

    # -- messages ---------------------------------------------------------------------------------
    def message_log(self, run_id: str, name: str, attempt: int) -> Path:
        directory = self.messages_dir / run_id
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{name}.{attempt}.jsonl"
