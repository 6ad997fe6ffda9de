"""What ``claude-scope status`` and ``runs`` show: the journal read as a person reads it, fast.

Read-only (``mode=ro``: it never writes, so it never waits for a running orchestrator's lock) and with no
SDK import, so the commands answer in tens of milliseconds. ``status`` is a table in pipeline order
(status, attempts, time, cost, the failure's kind and reason), ``--json`` one JSON line per phase for
scripts; ``runs`` a table of runs; ``follow`` prints each phase change as it is journalled (from another
terminal or process) and returns the run's exit code once it ends.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any

from .._cost import format_cost

# No pathlib or dataclasses here (nor, at import, ``_owner``): they are a third of the command's start-up.

#: a run's exit code from its status, when no command journalled one (a run through the Python API)
EXIT_CODES = {"succeeded": 0, "failed": 1, "crashed": 2, "interrupted": 130}


@contextmanager
def reading(path: str) -> Iterator[sqlite3.Connection]:
    if not os.path.exists(path):  # a builtin error: this module imports nothing of ours that would import an SDK
        raise FileNotFoundError(f"no journal at {path} (nothing has run here)")
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)) as conn:
        conn.row_factory = sqlite3.Row
        yield conn


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def runs(conn: sqlite3.Connection, run_id: str | None = None, *, latest: bool = False) -> list[dict[str, Any]]:
    """Every run (or the one named, or the latest), newest first, with its pipeline's name, its cost and whether
    it still runs (a run journalled running whose orchestrator died is ``interrupted``). The name and the sums
    are SQLite's work (``json_extract``, ``GROUP BY``): a run's pipeline holds every prompt, and a journal of
    months has tens of thousands of phases."""
    extra = ", exit_code" if "exit_code" in _columns(conn, "runs") else ""
    where, args = ("WHERE run_id = ?", (run_id,)) if run_id is not None else ("", ())
    rows = conn.execute("SELECT run_id, json_extract(pipeline, '$.name') AS name, status, started, ended, note, "
                        f"owner_host, owner_pid, owner_start{extra} FROM runs {where} ORDER BY started DESC"
                        f"{' LIMIT 1' if latest else ''}", args).fetchall()
    one = run_id is not None or latest
    costs = {r[0]: (r[1], bool(r[2])) for r in conn.execute(
        "SELECT run_id, sum(cost_usd), max(coalesce(cost_lower_bound, 0)) FROM phases "
        + ("WHERE run_id = ? " if one else "") + "GROUP BY run_id", (rows[0]["run_id"],) if one and rows else
        ("",) if one else ())}
    out = []
    for row in rows:
        run = {k: row[k] for k in ("run_id", "status", "started", "ended", "note")}
        run["exit_code"] = row["exit_code"] if extra else None
        run["pipeline"] = row["name"] or ""
        if run["status"] == "running" and row["owner_pid"] is not None and not _alive(row):
            run["status"] = "interrupted"
            run["note"] = f"its orchestrator (pid {row['owner_pid']} on {row['owner_host']}) died; resume it"
        run["cost_usd"], run["cost_lower_bound"] = costs.get(run["run_id"], (None, False))
        out.append(run)
    return out


def _alive(row: sqlite3.Row) -> bool:
    from .._owner import Owner  # only for a run journalled running: is its orchestrator still there?

    return Owner(row["owner_host"], row["owner_pid"], row["owner_start"]).alive()


def phases(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    """The run's phases in pipeline order (a plan's phases after their planner), as journalled."""
    rows = {r["name"]: dict(r) for r in conn.execute("SELECT * FROM phases WHERE run_id = ?", (run_id,))}
    found = conn.execute("SELECT pipeline FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    try:
        order = [p["name"] for p in json.loads(found["pipeline"]).get("phases", [])] if found else []
    except (TypeError, ValueError):
        order = []
    names = [n for n in order if n in rows] + sorted(n for n in rows if n not in order)
    return [rows[n] for n in names]


def duration(seconds: float | None) -> str:
    """``0.4s``, ``12.3s``, ``4m05s``, ``1h02m``; ``-`` when not known."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _when(stamp: float | None) -> str:
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _reason(row: dict[str, Any], width: int = 90) -> str:
    text = " ".join(str(row.get("message") or "").split())
    if row.get("status") == "succeeded":
        text = ""
    kind = row.get("kind")
    out = f"{kind}: {text}" if kind and text else kind or text
    return out if len(out) <= width else out[: width - 3] + "..."


def render_status(run: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    took = (run["ended"] or time.time()) - run["started"]
    lines = [f"run {run['run_id']}  {run['pipeline'] or '-'}  {run['status']}  started {_when(run['started'])}, "
             f"{duration(took)}  cost {format_cost(run['cost_usd'], run['cost_lower_bound'])} USD"]
    if run.get("note"):
        lines.append(f"  {run['note']}")
    return "\n".join([*lines, *phase_table(rows)])


def phase_table(rows: list[dict[str, Any]]) -> list[str]:
    """The phases as table lines (journal rows, or a Temporal run's phases in the same shape)."""
    width = max([5, *(len(r["name"]) for r in rows)])
    lines = [f"{'phase':<{width}}  {'status':<10} {'attempts':>8} {'time':>7} {'cost':>9}  kind / reason"]
    for row in rows:
        cost = format_cost(row["cost_usd"], bool(row.get("cost_lower_bound")))
        lines.append(f"{row['name']:<{width}}  {row['status']:<10} {row['attempts']:>8} "
                     f"{duration(row['duration_s']):>7} {cost:>9}  {_reason(row)}".rstrip())
    return lines


def changes(seen: dict[str, tuple[Any, ...]], rows: list[dict[str, Any]]) -> list[str]:
    """A line for each phase whose status or attempt changed since ``seen`` (updated)."""
    lines = []
    for row in rows:
        state = (row["status"], row["attempts"])
        if seen.get(row["name"]) != state:
            seen[row["name"]] = state
            cost = format_cost(row["cost_usd"], bool(row.get("cost_lower_bound")))
            detail = (f"attempt {row['attempts']}" if row["status"] == "running"
                      else f"{duration(row['duration_s'])}, {cost} USD  {_reason(row)}".rstrip()
                      if row["status"] != "pending" else "")
            lines.append(f"{time.strftime('%H:%M:%S')}  {row['name']}  {row['status']}  {detail}".rstrip())
    return lines


def status_json(rows: list[dict[str, Any]]) -> list[str]:
    keys = ("status", "attempts", "cost_usd", "duration_s", "kind", "message", "session_id", "reserved_usd")
    return [json.dumps({"phase": r["name"], **{k: r.get(k) for k in keys},
                        "cost_lower_bound": bool(r.get("cost_lower_bound"))}) for r in rows]


def render_runs(found: list[dict[str, Any]]) -> str:
    if not found:
        return "no runs recorded"
    id_width = max(6, *(len(r["run_id"]) for r in found))
    name_width = max(8, *(len(r["pipeline"] or "-") for r in found))
    lines = [f"{'run':<{id_width}}  {'pipeline':<{name_width}}  {'status':<11} {'started':<19} {'time':>7} "
             f"{'cost':>9}"]
    for r in found:
        took = None if r["ended"] is None and r["status"] != "running" else (r["ended"] or time.time()) - r["started"]
        lines.append(f"{r['run_id']:<{id_width}}  {r['pipeline'] or '-':<{name_width}}  {r['status']:<11} "
                     f"{_when(r['started']):<19} {duration(took):>7} "
                     f"{format_cost(r['cost_usd'], r['cost_lower_bound']):>9}")
    return "\n".join(lines)


def exit_code(run: dict[str, Any]) -> int:
    code = run.get("exit_code")
    return int(code) if code is not None else EXIT_CODES.get(run["status"], 1)


def follow(path: str, run_id: str, say: Callable[[str], None], *, poll_s: float = 0.2,
           sleep: Callable[[float], None] = time.sleep) -> int:
    """Print each phase change of ``run_id`` as the journal records it, until the run ends; its exit code."""
    seen: dict[str, tuple[Any, ...]] = {}
    while True:
        with reading(path) as conn:
            run = next(iter(runs(conn, run_id)), None)
            if run is None:
                raise LookupError(f"no run {run_id!r} in {path}")
            rows = phases(conn, run_id)
        for line in changes(seen, rows):
            say(line)
        if run["status"] != "running":
            say(f"run {run_id} {run['status']}" + (f": {run['note']}" if run.get("note") else ""))
            return exit_code(run)
        sleep(poll_s)
