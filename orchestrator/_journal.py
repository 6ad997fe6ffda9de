"""The run journal: SQLite (WAL, one transaction per state change) plus a JSONL file of messages per phase.

Nothing is lost: a phase's status is committed when it changes, so a ``kill -9`` of the orchestrator
keeps every finished phase; the pid (with its start time and query id) of a running CLI is committed as
soon as it is spawned, so the next start finds and ends what a killed run left behind. A corrupt or
locked database is a typed error naming the file, never a silent fresh start.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk_wrapper import ClaudeScopeError, QueryOutcome, redact

from ._model import PhaseOutcome, parse_kind
from ._owner import Owner
from ._private import DEFAULT_JOURNAL, private_dir, private_file
from ._status import PhaseStatus

DEFAULT_PATH = DEFAULT_JOURNAL
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
CREATE TABLE IF NOT EXISTS approvals (
    run_id TEXT NOT NULL, phase TEXT NOT NULL, gate TEXT NOT NULL, asked REAL NOT NULL, decided REAL,
    decision TEXT, who TEXT, note TEXT, retry INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run_id, phase, asked)
);
CREATE TABLE IF NOT EXISTS expansions (
    run_id TEXT NOT NULL, planner TEXT NOT NULL, plan TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (run_id, planner)
);
CREATE TABLE IF NOT EXISTS git_state (
    key TEXT PRIMARY KEY, run_id TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL,
    started REAL NOT NULL, owner_host TEXT, owner_pid INTEGER, owner_start REAL
);
CREATE TABLE IF NOT EXISTS live_processes (
    run_id TEXT NOT NULL, name TEXT NOT NULL, pid INTEGER NOT NULL, create_time REAL NOT NULL,
    query_id TEXT NOT NULL, PRIMARY KEY (run_id, name, pid)
);
"""
# Added after the first release; a journal made before them gets them on open (NULL: owner unknown, or an
# attempt's details not recorded).
_ADDED_COLUMNS = {
    # exit_code: what the command that ran it exited with (``status --follow`` exits with it)
    "runs": ("owner_host TEXT", "owner_pid INTEGER", "owner_start REAL", "exit_code INTEGER"),
    "live_processes": ("owner_host TEXT", "owner_pid INTEGER", "owner_start REAL"),
    # prompt: what the attempt was given (with a learning retry's feedback), redacted and bounded; evidence:
    # its checks' results (JSON), when its query was ok
    "attempts": ("num_turns INTEGER", "query_id TEXT", "message_count INTEGER", "stderr_tail TEXT", "cleanup TEXT",
                 "prompt TEXT", "evidence TEXT", "variant TEXT"),
    # 1: an attempt's cost was never reported, so the phase's cost_usd (the sum of its attempts') is a lower bound;
    # result_text: the CLI's result text, handed on to later prompts (a resume reads it here), redacted, bounded
    # reserved_usd: what the phase may spend (its cap, or its run-budget reservation), set when it starts
    "phases": ("cost_lower_bound INTEGER", "result_text TEXT", "reserved_usd REAL"),
}
#: how much of an attempt's stderr tail the journal (and a Temporal run's record) keeps (the wrapper keeps up to
#: 16 KiB in memory)
STDERR_KEPT = 4000
#: how much of a phase's result text the journal keeps (what a later prompt can be handed)
RESULT_KEPT = 20_000
#: how much of an attempt's prompt the journal keeps
PROMPT_KEPT = 100_000


class RunNotFoundError(ClaudeScopeError, KeyError):
    """No run with that id (in the journal, or on the Temporal server)."""

    def __str__(self) -> str:  # a KeyError would quote its message
        return str(self.args[0]) if self.args else ""


class RunExistsError(ClaudeScopeError, ValueError):
    """A new run was asked for with a run id that is already taken (``resume`` it instead)."""


class JournalError(ClaudeScopeError, RuntimeError):
    """The journal cannot be used. ``path`` names the database."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(f"{message}: {path}")
        self.path = path


class JournalCorruptError(JournalError):
    """The file is not a usable SQLite database (it is left untouched for inspection)."""


class JournalLockedError(JournalError):
    """Another process holds a lock on the journal longer than the busy timeout."""


class JournalFullError(JournalError):
    """The disk holding the journal is full (SQLite's ``SQLITE_FULL``): free space, then resume the run."""


class RunBusyError(JournalError):
    """The run is being executed right now by another live orchestrator (named by ``owner``)."""

    def __init__(self, run_id: str, owner: Owner, path: Path) -> None:
        super().__init__(f"run {run_id!r} is running in process {owner.pid} on {owner.host}", path)
        self.run_id = run_id
        self.owner = owner


@dataclass(frozen=True)
class GitState:
    """A journalled worktree, merge in flight or kept branch (``kind``), with its owner."""

    key: str
    run_id: str
    name: str
    kind: str
    data: dict[str, Any]
    started: float
    owner: Owner | None

    def orphaned(self) -> bool:
        return self.owner is None or not self.owner.alive()


def _owner(row: sqlite3.Row) -> Owner | None:
    if row["owner_pid"] is None:
        return None
    return Owner(row["owner_host"], row["owner_pid"], row["owner_start"])


@dataclass(frozen=True)
class LiveProcess:
    run_id: str
    name: str
    pid: int
    create_time: float
    query_id: str
    #: the orchestrator process that started it; None in rows written before owners were recorded.
    owner: Owner | None = None

    def orphaned(self) -> bool:
        """Whether its owner is gone, so nobody else will end it (a row of unknown owner counts as orphaned,
        as every row did before owners were recorded)."""
        return self.owner is None or not self.owner.alive()


def _translate(exc: sqlite3.Error, path: Path) -> JournalError:
    code = getattr(exc, "sqlite_errorcode", None)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return JournalLockedError("the journal is locked by another process", path)
    if code == sqlite3.SQLITE_FULL:
        return JournalFullError("the journal cannot be written: no space left on the device that holds it", path)
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or (
            isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)):
        return JournalCorruptError("the journal is not a usable SQLite database", path)
    return JournalError(f"journal error ({type(exc).__name__}, code {code})", path)


class Journal:
    """One SQLite file. Use as a context manager or call ``close()``."""

    def __init__(self, path: str | Path = DEFAULT_PATH, *, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)  # prompts and transcripts: ours only (see _private)
        private_file(self.path)  # SQLite makes its -wal and -shm files with the database's mode
        self.messages_dir = self.path.parent / "messages"
        self.owner = Owner.current()
        # One connection, used from any thread (an Orchestrator per thread may share a Journal): every
        # statement and transaction holds this lock, so two threads never interleave inside one transaction.
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                       check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            if self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                # a new journal gives freed pages back in steps (prune), never by a VACUUM that holds the lock
                self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._add_columns()
            self._db.execute("SELECT count(*) FROM runs").fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    def _add_columns(self) -> None:
        missing = [(table, column) for table, columns in _ADDED_COLUMNS.items()
                   for column in columns if column.split()[0] not in self._columns(table)]
        if missing:  # a write only for a journal made before these columns existed
            with self._tx() as db:
                for table, column in missing:
                    if column.split()[0] not in self._columns(table):  # another process may have added it
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
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
        with self._lock:
            try:
                return list(self._db.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    # -- runs -------------------------------------------------------------------------------------
    def start_run(self, run_id: str, pipeline: dict[str, Any], phase_names: list[str], *, new: bool = False) -> None:
        """Record that this process runs ``run_id`` now (a new run, or a resume).

        In one transaction (so two orchestrators cannot both take a run): ``new`` with a run id that exists
        is a ValueError; a run that another live orchestrator is running is a ``RunBusyError``.
        """
        now, me = time.time(), self.owner
        with self._tx() as db:
            row = db.execute("SELECT status, owner_host, owner_pid, owner_start FROM runs WHERE run_id = ?",
                             (run_id,)).fetchone()
            if row is not None and new:
                raise RunExistsError(f"run {run_id!r} already exists in {self.path}; use resume()")
            if row is not None and row["status"] == "running":
                owner = _owner(row)
                if owner is not None and owner != me and owner.alive():
                    raise RunBusyError(run_id, owner, self.path)
            db.execute("INSERT OR IGNORE INTO runs (run_id, pipeline, status, started) VALUES (?, ?, 'running', ?)",
                       (run_id, json.dumps(pipeline), now))
            db.execute("UPDATE runs SET status = 'running', ended = NULL, note = NULL, exit_code = NULL, "
                       "owner_host = ?, owner_pid = ?, owner_start = ? WHERE run_id = ?",
                       (me.host, me.pid, me.start, run_id))
            for name in phase_names:
                db.execute("INSERT OR IGNORE INTO phases (run_id, name, status, updated) VALUES (?, ?, 'pending', ?)",
                           (run_id, name, now))
            # what an earlier start could not record (it was killed, or its disk was full): a phase it left
            # running ended without a word; say so, and it runs again
            db.execute("UPDATE phases SET status = 'failed', kind = 'unexpected', message = ?, updated = ? "
                       "WHERE run_id = ? AND status = 'running'",
                       ("its end was never recorded (the orchestrator was killed, or could not write the journal: "
                        "a full disk?); it runs again", now, run_id))

    def plan_added(self, run_id: str, planner: str, plan: dict[str, Any], names: list[str],
                   pipeline: dict[str, Any]) -> None:
        """A planner's plan joins the run, in one transaction, before any of its phases runs: the plan (its
        tables, for a resume), its phases (pending) and the run's pipeline as it now is."""
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO expansions (run_id, planner, plan, created) VALUES (?, ?, ?, ?)",
                       (run_id, planner, json.dumps(plan), now))
            for name in names:
                db.execute("INSERT OR IGNORE INTO phases (run_id, name, status, updated) VALUES (?, ?, 'pending', ?)",
                           (run_id, name, now))
            db.execute("UPDATE runs SET pipeline = ? WHERE run_id = ?", (json.dumps(pipeline), run_id))

    # -- approvals ------------------------------------------------------------------------------------
    def approval_asked(self, run_id: str, name: str, gate: str) -> None:
        """``name`` waits at its ``gate`` ("before" or "after"): journalled, so a restart finds it waiting. An
        open request is kept; so is one decided while nobody was waiting on it (the phase still waits in the
        journal: the decision stands for the restart). Otherwise a new request is made."""
        with self._tx() as db:
            latest = db.execute("SELECT decided FROM approvals WHERE run_id = ? AND phase = ? ORDER BY asked DESC "
                                "LIMIT 1", (run_id, name)).fetchone()
            status = db.execute("SELECT status FROM phases WHERE run_id = ? AND name = ?", (run_id, name)).fetchone()
            waiting = status is not None and status["status"] == "waiting_approval"
            if latest is None or (latest["decided"] is not None and not waiting):
                db.execute("INSERT INTO approvals (run_id, phase, gate, asked) VALUES (?, ?, ?, ?)",
                           (run_id, name, gate, time.time()))
            db.execute("UPDATE phases SET status = 'waiting_approval', updated = ? WHERE run_id = ? AND name = ?",
                       (time.time(), run_id, name))

    def approval(self, run_id: str, name: str) -> dict[str, Any] | None:
        """The phase's latest approval request, decided or not."""
        rows = self._query("SELECT * FROM approvals WHERE run_id = ? AND phase = ? ORDER BY asked DESC LIMIT 1",
                           (run_id, name))
        return dict(rows[0]) if rows else None

    def approvals(self, run_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._query("SELECT * FROM approvals WHERE run_id = ? ORDER BY asked", (run_id,))]

    def decide(self, run_id: str, name: str, decision: str, who: str, note: str = "", retry: bool = False) -> bool:
        """Record a person's decision on the phase's open request; False when it is not waiting (nothing
        changes). The orchestrator waiting on it reads it from here."""
        with self._tx() as db:
            changed = db.execute("UPDATE approvals SET decided = ?, decision = ?, who = ?, note = ?, retry = ? "
                                 "WHERE run_id = ? AND phase = ? AND decided IS NULL",
                                 (time.time(), decision, who, redact(note)[:4000], int(retry), run_id, name)).rowcount
        return bool(changed)

    # -- retention (see _prune) -------------------------------------------------------------------------
    def forget_run(self, run_id: str) -> None:
        """Every row of ``run_id``, in one transaction (the caller removes its files and branches)."""
        with self._tx() as db:
            for table in ("attempts", "phases", "approvals", "expansions", "git_state", "live_processes"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def pragma(self, name: str) -> int:
        return int(self._query(f"PRAGMA {name}")[0][0])

    def incremental_vacuum(self, pages: int) -> None:
        """Give up to ``pages`` free pages back to the file system, in one short write."""
        with self._lock:
            try:
                self._db.execute(f"PRAGMA incremental_vacuum({int(pages)})").fetchall()
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    def checkpoint(self) -> None:
        """Move the WAL into the database and truncate it (so the file sizes say what is left)."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    def vacuum_incremental(self) -> None:
        """Compact the whole file once and make it incremental (holds the lock throughout: no run may be live)."""
        with self._lock:
            try:
                self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
                self._db.execute("VACUUM")
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    def plans(self, run_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The run's plans, as ``(planner, plan tables)``, in the order they joined."""
        return [(r["planner"], json.loads(r["plan"])) for r in
                self._query("SELECT planner, plan FROM expansions WHERE run_id = ? ORDER BY created", (run_id,))]

    def end_run(self, run_id: str, status: str, note: str = "") -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET status = ?, ended = ?, note = ? WHERE run_id = ?",
                       (status, time.time(), note, run_id))

    def set_exit_code(self, run_id: str, code: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET exit_code = ? WHERE run_id = ?", (code, run_id))

    def run_crashed(self, run_id: str, why: str) -> None:
        """The run ended by an error of ours or of the caller's code (not a phase's failure): the run is
        ``crashed`` with the error, and a phase it left ``running`` is ``failed`` (kind ``unexpected``), so
        nothing claims to be running and ``resume`` reruns it."""
        note = redact(f"crashed: {why}")[:4000]
        with self._tx() as db:
            db.execute("UPDATE runs SET status = 'crashed', ended = ?, note = ? WHERE run_id = ?",
                       (time.time(), note, run_id))
            db.execute("UPDATE phases SET status = 'failed', kind = 'unexpected', message = ?, updated = ? "
                       "WHERE run_id = ? AND status = 'running'", (note, time.time(), run_id))

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first. A run journalled ``running`` whose owner is gone (killed with no chance to
        say so) is shown as ``interrupted``, with its owner in the note: nothing is running it any more."""
        out = []
        for row in self._query("SELECT run_id, status, started, ended, note, owner_host, owner_pid, owner_start "
                               "FROM runs ORDER BY started DESC"):
            run = {k: row[k] for k in ("run_id", "status", "started", "ended", "note")}
            owner = _owner(row)
            if run["status"] == "running" and owner is not None and not owner.alive():
                run["status"] = "interrupted"
                run["note"] = f"its orchestrator (pid {owner.pid} on {owner.host}) died; resume it"
            out.append(run)
        return out

    def run_exists(self, run_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)))

    def pipeline_of(self, run_id: str) -> dict[str, Any]:
        rows = self._query("SELECT pipeline FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise RunNotFoundError(f"no run {run_id!r} in {self.path}")
        result: dict[str, Any] = json.loads(rows[0]["pipeline"])
        return result

    # -- phases -----------------------------------------------------------------------------------
    def phase_running(self, run_id: str, name: str, attempt: int, prompt: str = "", variant: str = "") -> None:
        """Attempt ``attempt`` starts (a race's ``variant``: each variant is an attempt of its own)."""
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE phases SET status = 'running', attempts = max(attempts, ?), updated = ? "
                       "WHERE run_id = ? AND name = ?", (attempt, now, run_id, name))
            db.execute("INSERT OR REPLACE INTO attempts (run_id, name, number, started, prompt, variant) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (run_id, name, attempt, now, redact(prompt)[:PROMPT_KEPT],
                                                     variant or None))

    def attempt_ended(self, run_id: str, name: str, number: int, outcome: QueryOutcome) -> None:
        """The attempt's query ended: its result, failure (message and stderr tail redacted) and what ending
        its CLI tree took; its CLI is no longer live."""
        failure = outcome.failure
        with self._tx() as db:
            db.execute("UPDATE attempts SET ended = ?, ok = ?, kind = ?, message = ?, cost_usd = ?, session_id = ?, "
                       "num_turns = ?, query_id = ?, message_count = ?, stderr_tail = ?, cleanup = ? "
                       "WHERE run_id = ? AND name = ? AND number = ?",
                       (time.time(), int(outcome.ok), None if failure is None else failure.kind.value,
                        "" if failure is None else redact(failure.message)[:2000], outcome.cost_usd,
                        outcome.session_id, outcome.num_turns, outcome.query_id, outcome.message_count,
                        "" if failure is None else redact(failure.stderr_tail)[-STDERR_KEPT:],
                        json.dumps(outcome.cleanup.to_dict()), run_id, name, number))
            # this attempt's CLI only: a race's other variants still run
            db.execute("DELETE FROM live_processes WHERE run_id = ? AND name = ? AND query_id = ?",
                       (run_id, name, outcome.query_id))

    def phase_reserved(self, run_id: str, name: str, usd: float | None) -> None:
        """The phase starts and may spend ``usd`` over its attempts (None: no cap)."""
        with self._tx() as db:
            db.execute("UPDATE phases SET reserved_usd = ? WHERE run_id = ? AND name = ?", (usd, run_id, name))

    def attempt_checked(self, run_id: str, name: str, number: int, checks: list[dict[str, Any]]) -> None:
        """The attempt's checks ran (its query was ok): their results, each a ``CheckResult.to_dict``."""
        with self._tx() as db:
            db.execute("UPDATE attempts SET evidence = ? WHERE run_id = ? AND name = ? AND number = ?",
                       (json.dumps(checks), run_id, name, number))

    def attempts(self, run_id: str) -> list[dict[str, Any]]:
        """Every attempt of the run, by start time; ``cleanup`` decoded (None where it was not recorded)."""
        rows = []
        for row in self._query("SELECT * FROM attempts WHERE run_id = ? ORDER BY started, name", (run_id,)):
            record = dict(row)
            record["cleanup"] = json.loads(record["cleanup"]) if record.get("cleanup") else None
            rows.append(record)
        return rows

    def phase_ended(self, run_id: str, outcome: PhaseOutcome) -> None:
        evidence = json.dumps([c.to_dict() for c in outcome.checks])
        with self._tx() as db:
            db.execute(
                "UPDATE phases SET status = ?, attempts = ?, cost_usd = ?, cost_lower_bound = ?, duration_s = ?, "
                "kind = ?, message = ?, session_id = ?, num_turns = ?, evidence = ?, updated = ?, result_text = ? "
                "WHERE run_id = ? AND name = ?",
                (outcome.status.value, outcome.attempts, outcome.cost_usd, int(outcome.cost_lower_bound),
                 outcome.duration_s,
                 None if outcome.kind is None else outcome.kind.value,
                 redact(outcome.message)[:4000], outcome.session_id, outcome.num_turns, evidence, time.time(),
                 None if outcome.result_text is None else redact(outcome.result_text)[:RESULT_KEPT],
                 run_id, outcome.name))

    def phases(self, run_id: str) -> dict[str, dict[str, Any]]:
        return {r["name"]: dict(r) for r in self._query("SELECT * FROM phases WHERE run_id = ?", (run_id,))}

    def recorded_outcome(self, run_id: str, name: str) -> PhaseOutcome | None:
        rows = self._query("SELECT * FROM phases WHERE run_id = ? AND name = ?", (run_id, name))  # one row, not all
        if not rows:
            return None
        row = dict(rows[0])
        status = PhaseStatus(row["status"])
        return PhaseOutcome(
            name=name, status=status, attempts=row["attempts"], cost_usd=row["cost_usd"],
            duration_s=row["duration_s"] or 0.0, kind=parse_kind(row["kind"], status), message=row["message"] or "",
            session_id=row["session_id"], num_turns=row["num_turns"], from_journal=True,
            cost_lower_bound=bool(row["cost_lower_bound"]), result_text=row["result_text"],
        )

    def attempt_costs(self, run_id: str, name: str) -> tuple[float | None, ...]:
        """Each journalled attempt's cost, in order (None: never reported, e.g. the orchestrator was killed)."""
        rows = self._query("SELECT cost_usd FROM attempts WHERE run_id = ? AND name = ? ORDER BY number",
                           (run_id, name))
        return tuple(row["cost_usd"] for row in rows)

    # -- processes --------------------------------------------------------------------------------
    def process_started(self, run_id: str, name: str, pid: int, create_time: float, query_id: str,
                        owner: Owner | None = None) -> None:
        """Record a running CLI, owned by ``owner`` (default: this process)."""
        owner = owner or self.owner
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO live_processes (run_id, name, pid, create_time, query_id, owner_host, "
                       "owner_pid, owner_start) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (run_id, name, pid, create_time, query_id, owner.host, owner.pid, owner.start))

    def live_processes(self) -> list[LiveProcess]:
        return [LiveProcess(r["run_id"], r["name"], r["pid"], r["create_time"], r["query_id"], _owner(r))
                for r in self._query("SELECT * FROM live_processes")]

    def forget_query(self, run_id: str, name: str, query_id: str) -> None:
        """One query's CLI is gone (a race's other variants may still run)."""
        with self._tx() as db:
            db.execute("DELETE FROM live_processes WHERE run_id = ? AND name = ? AND query_id = ?",
                       (run_id, name, query_id))

    def forget_process(self, proc: LiveProcess) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM live_processes WHERE run_id = ? AND name = ? AND pid = ?",
                       (proc.run_id, proc.name, proc.pid))

    # -- git state (isolated phases: see _worktree) ----------------------------------------------------
    def git_state_added(self, key: str, run_id: str, name: str, kind: str, data: dict[str, Any]) -> None:
        """Record something of ours in a git repository (a worktree, a merge in flight, a kept branch) before
        it exists, so that whatever a killed owner leaves is found at the next start."""
        me = self.owner
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO git_state (key, run_id, name, kind, data, started, owner_host, "
                       "owner_pid, owner_start) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (key, run_id, name, kind, json.dumps(data), time.time(), me.host, me.pid, me.start))

    def git_state_done(self, key: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM git_state WHERE key = ?", (key,))

    def git_states(self, run_id: str | None = None) -> list[GitState]:
        rows = self._query("SELECT * FROM git_state" + (" WHERE run_id = ?" if run_id else "") + " ORDER BY started",
                           (run_id,) if run_id else ())
        return [GitState(r["key"], r["run_id"], r["name"], r["kind"], json.loads(r["data"]), r["started"], _owner(r))
                for r in rows]

    # -- messages ---------------------------------------------------------------------------------
    def message_log(self, run_id: str, name: str, attempt: int, *, create: bool = True) -> Path:
        """Where an attempt's messages are written: one file per attempt (a planned phase's ``/`` is quoted)."""
        directory = self.messages_dir / run_id
        if create:
            private_dir(directory)
        return directory / f"{name.replace('%', '%25').replace('/', '%2F')}.{attempt}.jsonl"
