"""Retention: ``claude-scope prune --older-than 30d | --keep N [--dry-run]``.

Removes ended runs with everything of theirs: phases, attempts, approvals, plans, journalled git state, the
branches kept for inspection (merge conflicts), message logs and run pages. Never a run that is running
(its orchestrator alive) or waiting for a person (a phase ``waiting_approval``, or a run stopped
``waiting``). It deletes one run per transaction, so live runs on the same journal get the lock between
them, and compacts the file the same way: a journal is made with ``auto_vacuum = INCREMENTAL``, and the
freed pages are given back in small steps (``PRAGMA incremental_vacuum``), never with ``VACUUM``, which
holds the lock for as long as it takes to copy the whole file (longer than a live run's busy timeout). A
journal made before that freed its pages for reuse only; ``--vacuum`` compacts it once, when no run is live.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from sdk_wrapper import ClaudeScopeError

from ._git import GitCommandError, repo_at
from ._journal import Journal

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: pages given back per step of the compaction (4 KiB each: 1 MiB a step)
PAGES_PER_STEP = 256


class PruneError(ClaudeScopeError, ValueError):
    """A prune that cannot be done as asked (the message says why); nothing was removed."""


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` in seconds."""
    found = _DURATION.match(text.strip())
    if found is None:
        raise PruneError(f"--older-than {text!r}: give a number and a unit, e.g. 30d, 12h, 90m, 2w")
    return float(found.group(1)) * _SECONDS[found.group(2)]


@dataclass
class Pruned:
    """What a prune removed (or, with ``dry_run``, would remove)."""

    runs: list[str] = field(default_factory=list)
    kept_live: list[str] = field(default_factory=list)
    attempts: int = 0
    files_bytes: int = 0
    branches: list[str] = field(default_factory=list)
    journal_before: int = 0
    journal_after: int = 0
    seconds: float = 0.0
    note: str = ""

    def summary(self, dry_run: bool) -> str:
        verb = "would remove" if dry_run else "removed"
        lines = [f"{verb} {len(self.runs)} run(s), {self.attempts} attempt(s), "
                 f"{self.files_bytes / 1e6:.2f} MB of message logs and pages, {len(self.branches)} kept branch(es)"]
        if self.kept_live:
            lines.append(f"left {len(self.kept_live)} run(s) that are running or waiting for approval: "
                         + ", ".join(self.kept_live[:10]))
        if not dry_run:
            lines.append(f"journal {self.journal_before / 1e6:.2f} MB -> {self.journal_after / 1e6:.2f} MB "
                         f"in {self.seconds:.2f} s")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def _live(journal: Journal, run: dict[str, Any]) -> bool:
    """Running (a live orchestrator has it) or waiting for a person."""
    if run["status"] in ("running", "waiting"):  # runs() shows a running run of a dead owner as interrupted
        return True
    return any(p["status"] == "waiting_approval" for p in journal.phases(run["run_id"]).values())


def choose(journal: Journal, *, older_than_s: float | None, keep: int | None) -> tuple[list[str], list[str]]:
    """(runs to prune, runs left because they are live), newest first."""
    if (older_than_s is None) == (keep is None):
        raise PruneError("say which runs to prune: --older-than AGE or --keep N (one of them)")
    if keep is not None and keep < 0:
        raise PruneError(f"--keep {keep}: give a number >= 0")
    runs = journal.runs()
    live = [r["run_id"] for r in runs if _live(journal, r)]
    ended = [r for r in runs if r["run_id"] not in set(live)]
    if keep is not None:
        chosen = [r["run_id"] for r in ended[keep:]]
    else:
        assert older_than_s is not None
        cutoff = time.time() - older_than_s
        chosen = [r["run_id"] for r in ended if (r["ended"] or r["started"]) < cutoff]
    return chosen, live


async def prune(journal: Journal, *, older_than_s: float | None = None, keep: int | None = None,
                dry_run: bool = False) -> Pruned:
    started = time.monotonic()
    chosen, live = choose(journal, older_than_s=older_than_s, keep=keep)
    done = Pruned(runs=chosen, kept_live=live, journal_before=_size(journal.path))
    for run_id in chosen:
        done.attempts += len(journal.attempts(run_id))
        done.files_bytes += _bytes(_files_of(journal, run_id))
        done.branches += [s.data["branch"] for s in journal.git_states(run_id) if s.kind == "kept_branch"]
    if dry_run:
        return done
    for run_id in chosen:
        await _remove_branches(journal, run_id)
        for path in _files_of(journal, run_id):
            await anyio.to_thread.run_sync(_remove, path)
        journal.forget_run(run_id)  # one transaction per run: live runs get the lock between them
        await anyio.lowlevel.checkpoint()
    done.note = await compact(journal)
    done.journal_after = _size(journal.path)
    done.seconds = time.monotonic() - started
    return done


async def compact(journal: Journal) -> str:
    """Give the freed pages back in steps; a word when the journal cannot do that (made before)."""
    if journal.pragma("auto_vacuum") != 2:
        return ("this journal was made before incremental compaction: its freed pages are reused by new runs; "
                "`claude-scope prune --vacuum` compacts it once, when no run is live")
    while journal.pragma("freelist_count"):
        journal.incremental_vacuum(PAGES_PER_STEP)
        await anyio.sleep(0.001)  # a live run's write gets in between
    journal.checkpoint()
    return ""


def vacuum(journal: Journal) -> None:
    """Compact an old journal once and make it incremental: ``PruneError`` if a run is live on it."""
    live = [r["run_id"] for r in journal.runs() if _live(journal, r)]
    if live:
        raise PruneError(f"--vacuum holds the journal for the whole copy; runs are live on it: {', '.join(live)}")
    journal.vacuum_incremental()


def _files_of(journal: Journal, run_id: str) -> list[Path]:
    base = journal.path.parent
    return [base / "messages" / run_id, base / "reports" / f"{run_id}.html"]


def _bytes(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


async def _remove_branches(journal: Journal, run_id: str) -> None:
    for state in journal.git_states(run_id):
        if state.kind != "kept_branch":
            continue
        repo = await repo_at(Path(state.data.get("top", "")))
        if repo is not None:
            with contextlib.suppress(GitCommandError):  # a branch deleted by hand meanwhile
                await repo.git("update-ref", "-d", f"refs/heads/{state.data['branch']}", ok=(0, 1))


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
