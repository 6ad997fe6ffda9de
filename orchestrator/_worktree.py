"""Isolated attempts (``isolation = "worktree"``): each attempt in a git worktree of its own, its success
merged back into the project's checkout.

- **Where**: outside the project (``CLAUDE_SCOPE_WORKTREES``, default ``~/.cache/claude-scope/worktrees``),
  so nothing in the project's checkout (an agent's glob, a check's grep) sees another attempt's files.
- **From what**: the checkout's HEAD, plus its uncommitted changes if it has any (an in-place phase's, say):
  they are taken as a snapshot commit (a temporary index; the checkout and its index are not touched), so an
  isolated phase sees what an in-place phase before it wrote. Our own state (``.claude-scope/``) is never
  part of it, nor of a commit.
- **Back**: the attempt's changes are committed on a branch of ours (``claude-scope/RUN/PHASE/N``) and merged
  with ``merge-tree --write-tree`` (computed without touching any checkout), then the checkout moves to the
  merge in one step (``read-tree -m -u`` and ``update-ref``). A conflict, with HEAD or with uncommitted
  changes in the files the merge would write, is ``merge_conflict`` naming the files: the checkout is left as
  it was and the branch kept for inspection. Uncommitted changes elsewhere stay uncommitted; when the attempt
  started from a snapshot, the merge is a squash (one parent), so nothing uncommitted enters history.
- **Serialised**: merges into one repository hold an ``flock`` in its git directory (any process, any run).
- **Always removed**: a worktree and its in-flight branch are journalled before they exist and removed on
  every way out (shielded from cancellation); after a ``kill -9`` the next start (``reap``) removes those of
  dead owners only, and undoes a merge cut short (a stale ``index.lock``, a half-updated tree).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio

from ._checks import CheckResult
from ._git import GitCommandError, Repo, open_repo, repo_at
from ._model import Pipeline, PipelineError
from ._private import private_dir

#: pathspecs that keep our own state out of every snapshot and commit
_OURS = (":(exclude,glob)**/.claude-scope", ":(exclude,glob)**/.claude-scope/**")
_MERGE_LOCK = "claude-scope-merge.lock"
#: git's worktree bookkeeping is not safe against itself: an ``add`` reads the half-made entry of another
#: (``failed to read .git/worktrees/X/commondir``), a ``prune`` can drop it; ours are taken one at a time
_WORKTREE_LOCK = "claude-scope-worktrees.lock"
#: how many of a merge's files its evidence names
_NAMED = 50


class GitStateRecorder(Protocol):
    """Where our git state is journalled (the run's ``Journal``, or a Temporal worker's host journal)."""

    def git_state_added(self, key: str, run_id: str, name: str, kind: str, data: dict[str, Any]) -> None: ...

    def git_state_done(self, key: str) -> None: ...


def worktree_root() -> Path:
    """Where worktrees are made: ``CLAUDE_SCOPE_WORKTREES``, else the user's cache directory."""
    configured = os.environ.get("CLAUDE_SCOPE_WORKTREES")
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "claude-scope" / "worktrees"


def _ref_safe(text: str) -> str:
    """A phase name as one part of a branch name (git refuses ``..``, ``:``, spaces, a leading dot...)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "phase"


@dataclass
class Worktree:
    """One attempt's checkout. ``base`` is what it started from: ``head`` itself, or a snapshot of the
    checkout's uncommitted changes on top of it (``dirty`` paths)."""

    path: Path
    key: str
    branch: str
    head: str
    base: str
    dirty: int
    kept: bool = False

    @property
    def started_from(self) -> str:
        extra = f" plus {self.dirty} uncommitted path(s) of the checkout" if self.dirty else ""
        return f"started from {self.head[:12]}{extra}"


class Isolation:
    """The worktrees of one phase of one run, in ``repo``."""

    def __init__(self, repo: Repo, recorder: GitStateRecorder, run_id: str, name: str,
                 root: Path | None = None) -> None:
        self.repo, self.recorder, self.run_id, self.name = repo, recorder, run_id, name
        base = root or worktree_root()
        self.root = base / hashlib.sha1(str(repo.top).encode()).hexdigest()[:12] / run_id
        self.excludes = list(_OURS)
        with contextlib.suppress(ValueError):  # a root inside the project is ours too
            self.excludes.append(f":(exclude){base.resolve().relative_to(repo.top)}")

    @classmethod
    async def open(cls, project_dir: Path, recorder: GitStateRecorder, run_id: str, name: str) -> Isolation:
        return cls(await open_repo(project_dir), recorder, run_id, name)

    def inside(self, wt: Worktree, path: Path) -> Path:
        """``path`` (in the project's checkout) as the same place in ``wt``."""
        return wt.path / Path(path).resolve().relative_to(self.repo.top)

    async def start(self, attempt: int, variant: str = "") -> Worktree:
        """A new worktree for ``attempt``, detached at the checkout's state now."""
        head, base, dirty = await self._snapshot()
        tag = uuid.uuid4().hex[:8]
        label = _ref_safe(self.name) + (f"-{_ref_safe(variant)}" if variant else "")
        wt = Worktree(self.root / f"{label}-{attempt}-{tag}", f"worktree:{tag}",
                      f"claude-scope/{_ref_safe(self.run_id)}/{label}/{attempt}-{tag}", head, base, dirty)
        self.recorder.git_state_added(wt.key, self.run_id, self.name, "worktree",
                                      {"top": str(self.repo.top), "path": str(wt.path), "branch": wt.branch})
        try:
            private_dir(self.root)  # a worktree holds what the agent wrote: ours only
            async with repo_lock(self.repo, _WORKTREE_LOCK):
                await self.repo.git("worktree", "add", "--detach", "--quiet", str(wt.path), base)
        except BaseException:
            await self.end(wt)
            raise
        return wt

    async def end(self, wt: Worktree) -> None:
        """Remove ``wt`` and its in-flight branch (a kept one stays), whatever is cancelling us."""
        with anyio.CancelScope(shield=True):
            await remove_worktree(self.repo, wt.path, None if wt.kept else wt.branch)
            self.recorder.git_state_done(wt.key)

    async def _snapshot(self) -> tuple[str, str, int]:
        """The checkout's HEAD, the commit an attempt starts from, and how many uncommitted paths it adds."""
        head = await self.repo.out("rev-parse", "HEAD")
        _, status = await self.repo.git("status", "--porcelain", "-z", "--untracked-files=all", "--", ".",
                                        *self.excludes)
        if not status.strip("\0"):
            return head, head, 0
        with tempfile.TemporaryDirectory(prefix="claude-scope-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            await self.repo.git("read-tree", head, env=env)
            await self.repo.git("add", "-A", "--", ".", *self.excludes, env=env)
            tree = await self.repo.out("write-tree", env=env)
        _, changed = await self.repo.git("diff-tree", "-r", "-z", "--name-only", "--no-renames", head, tree)
        paths = [p for p in changed.split("\0") if p]
        if not paths:
            return head, head, 0
        base = await self.repo.out("commit-tree", tree, "-p", head, "-m", "claude-scope: uncommitted changes")
        return head, base, len(paths)

    async def commit(self, wt: Worktree, message: str) -> str | None:
        """Commit everything the attempt changed in ``wt`` on its branch; None when it changed nothing."""
        await self.repo.git("add", "-A", "--", ".", *self.excludes, cwd=wt.path)
        tree = await self.repo.out("write-tree", cwd=wt.path)
        if tree == await self.repo.out("rev-parse", f"{wt.base}^{{tree}}"):
            return None
        commit = await self.repo.out("commit-tree", tree, "-p", wt.base, "-m", message)
        await self.repo.git("update-ref", f"refs/heads/{wt.branch}", commit)
        return commit

    async def bring_back(self, wt: Worktree, attempt: int) -> CheckResult:
        """Merge the attempt's changes into the checkout: a passed ``merge`` result, or a failed one naming the
        conflicting files (the checkout untouched, the branch kept)."""
        commit = await self.commit(wt, f"claude-scope: run {self.run_id}, phase {self.name}, attempt {attempt}")
        if commit is None:
            return CheckResult("merge", True, f"nothing to merge: the attempt changed no file ({wt.started_from})",
                               {"merge": "empty"})
        result = None
        async with repo_lock(self.repo, _MERGE_LOCK):
            with anyio.CancelScope(shield=True):  # once started, a merge ends, done or undone
                result = await self._merge(wt, commit, attempt)
        assert result is not None
        return result

    async def _merge(self, wt: Worktree, commit: str, attempt: int) -> CheckResult:
        repo = self.repo
        head = await repo.out("rev-parse", "HEAD")
        ours = head
        if wt.base != wt.head:  # a snapshot: make it the merge base, so only the attempt's own changes merge
            ours = await repo.out("commit-tree", f"{head}^{{tree}}", "-p", wt.base, "-m", "claude-scope: HEAD now")
        code, out = await repo.git("merge-tree", "--write-tree", "--name-only", "--no-messages", ours, commit,
                                   ok=(0, 1))
        lines = out.split("\n")
        if code == 1:
            return self._conflict(wt, sorted({n for n in lines[1:] if n.strip()}), "they conflict with HEAD")
        parents = ("-p", head) if wt.base != wt.head else ("-p", head, "-p", commit)
        merge = await repo.out("commit-tree", lines[0].strip(), *parents, "-m",
                               f"claude-scope: merge phase {self.name} of run {self.run_id} (attempt {attempt})")
        _, changed = await repo.git("diff-tree", "-r", "-z", "--name-only", "--no-renames", head, merge)
        paths = [p for p in changed.split("\0") if p]
        dirty = sorted(set(paths) & await _uncommitted(repo))
        if dirty:
            return self._conflict(wt, dirty, "the checkout has uncommitted changes in them")
        key = f"merge:{uuid.uuid4().hex[:8]}"
        self.recorder.git_state_added(key, self.run_id, self.name, "merge", {
            "top": str(repo.top), "head": head, "merge": merge, "paths": paths, "started": time.time()})
        try:
            await repo.git("read-tree", "-m", "-u", head, merge)
            await repo.git("update-ref", "-m", f"claude-scope: merge {self.name}", "HEAD", merge, head)
        except GitCommandError as exc:
            await undo_merge(repo, {"head": head, "merge": merge, "paths": paths, "started": 0.0})
            self.recorder.git_state_done(key)
            return self._conflict(wt, paths, f"git refused the merge ({exc})")
        self.recorder.git_state_done(key)
        return CheckResult("merge", True, f"merged as {merge[:12]}: {len(paths)} file(s) ({wt.started_from})",
                           {"merge": merge, "files": paths[:_NAMED], "head_before": head})

    def _conflict(self, wt: Worktree, files: list[str], why: str) -> CheckResult:
        wt.kept = True
        self.recorder.git_state_added(f"branch:{wt.branch}", self.run_id, self.name, "kept_branch",
                                      {"top": str(self.repo.top), "branch": wt.branch})
        named = ", ".join(files[:_NAMED]) + (f" and {len(files) - _NAMED} more" if len(files) > _NAMED else "")
        return CheckResult("merge", False, f"merge conflict in {named}: {why}; the checkout is as it was, the "
                           f"attempt's changes are kept on branch {wt.branch} ({wt.started_from})",
                           {"merge": "conflict", "files": files[:_NAMED], "branch": wt.branch})


async def check_isolation(pipeline: Pipeline, project_dir: Path) -> None:
    """Before a run: a pipeline with isolated phases needs a git repository with a commit, and each isolated
    phase's ``cwd`` inside it (its worktree has only what the repository has). ``PipelineError`` otherwise."""
    isolated = [p for p in pipeline.phases if p.isolation == "worktree"]
    if not isolated:
        return
    repo = await open_repo(project_dir)
    for phase in isolated:
        cwd = getattr(phase.options, "cwd", None)
        if cwd is not None and not Path(await anyio.Path(cwd).resolve()).is_relative_to(repo.top):
            raise PipelineError(f"phase {phase.name!r}: isolation = \"worktree\" runs in a worktree of {repo.top}; "
                                f"its cwd {cwd} is outside it")


async def _uncommitted(repo: Repo) -> set[str]:
    _, status = await repo.git("status", "--porcelain", "-z", "--untracked-files=all", "--no-renames")
    return {entry[3:] for entry in status.split("\0") if len(entry) > 3}


@contextlib.asynccontextmanager
async def repo_lock(repo: Repo, name: str) -> AsyncIterator[None]:
    """Hold one of our locks of the repository (an ``flock`` on a file in its git directory: any process,
    any run; released by the kernel if its holder dies). Waiting for it can be cancelled."""
    fd = os.open(repo.common_dir / name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await anyio.sleep(0.01)
        yield
    finally:
        os.close(fd)  # releases the lock


async def remove_worktree(repo: Repo, path: Path, branch: str | None) -> None:
    """Remove a worktree (even a locked or half-made one) and, if named, its branch."""
    async with repo_lock(repo, _WORKTREE_LOCK):
        await repo.git("worktree", "remove", "--force", "--force", str(path), ok=(0, 128))
        if await anyio.Path(path).exists():
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(path, ignore_errors=True))
        await repo.git("worktree", "prune")
    if branch:
        await repo.git("update-ref", "-d", f"refs/heads/{branch}", ok=(0, 1))


async def undo_merge(repo: Repo, data: dict[str, Any]) -> bool:
    """Put back a checkout whose merge was cut short: HEAD not yet moved, so each path the merge writes gets
    HEAD's content again (a new file goes) and its index entry HEAD's; a stale ``index.lock`` made since
    the merge started goes. False when the merge had finished (HEAD is the merge): nothing to undo."""
    if await repo.out("rev-parse", "HEAD") == data["merge"]:
        return False
    lock = repo.git_dir / "index.lock"
    with contextlib.suppress(FileNotFoundError):
        if lock.stat().st_mtime >= float(data.get("started") or 0) - 1:
            lock.unlink()
    head, paths = data["head"], list(data["paths"])
    if not paths:
        return True
    _, listed = await repo.git("ls-tree", "-r", "-z", "--name-only", head)
    known = set(listed.split("\0"))
    stdin = "\0".join(p for p in paths if p in known).encode()
    if stdin:
        await repo.git("restore", f"--source={head}", "--worktree", "--pathspec-from-file=-",
                       "--pathspec-file-nul", stdin=stdin)
    for path in paths:
        if path not in known:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                (repo.top / path).unlink()
    await repo.git("reset", "-q", head, "--pathspec-from-file=-", "--pathspec-file-nul",
                   stdin="\0".join(paths).encode())
    return True


async def reap(states: list[Any], done: Any, log: Any) -> list[str]:
    """Undo what dead owners left (``GitState`` rows, see ``Journal.git_states``): merges cut short first,
    then their worktrees and in-flight branches. A kept branch stays (``prune`` removes it); a live owner's
    state is never touched. ``done(key)`` forgets a row. Returns what was removed, as words."""
    removed: list[str] = []
    kept = {s.data.get("branch") for s in states if s.kind == "kept_branch"}
    for state in sorted((s for s in states if s.kind != "kept_branch" and s.orphaned()),
                        key=lambda s: s.kind != "merge"):
        top = Path(state.data.get("top", ""))
        repo = await repo_at(top)
        if repo is not None:
            if state.kind == "merge":
                if await undo_merge(repo, state.data):
                    removed.append(f"an unfinished merge in {top} ({len(state.data['paths'])} path(s) put back)")
            else:
                branch = state.data.get("branch")
                await remove_worktree(repo, Path(state.data["path"]), None if branch in kept else branch)
                removed.append(f"worktree {state.data['path']}")
        done(state.key)
        log.warning("isolation.reaped", run_id=state.run_id, phase=state.name, kind=state.kind, data=state.data)
    return removed
