"""Isolated phases (``isolation = "worktree"``) against real git repositories: each attempt in a worktree of
its own outside the project, its success merged back, a conflict leaving the checkout as it was, nothing of
ours left on any way out (success, failure, cancellation, a ``kill -9`` then a restart)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator import Journal, Orchestrator, PhaseKind, PipelineError, parse_pipeline
from orchestrator._worktree import reap
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import make_repo, wait_for

pytestmark = pytest.mark.anyio


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real repository with one commit; worktrees go to a directory of the test's own."""
    monkeypatch.setenv("CLAUDE_SCOPE_WORKTREES", str(tmp_path / "worktrees"))
    return make_repo(tmp_path / "project")


def writes(path: str, content: str, *more: dict[str, Any]) -> dict[str, Any]:
    return {"steps": [{"tool": {"name": "Write", "input": {"file_path": path, "content": content}}}, *more]}


def bash(command: str) -> dict[str, Any]:
    return {"tool": {"name": "Bash", "input": {"command": command}}}


async def run(project: Path, cli: Path, phases: list[dict[str, Any]], run_id: str = "r",
              **settings: Any) -> Orchestrator:
    orch = Orchestrator(project / ".claude-scope" / "runs.db", project_dir=project, cli_path=cli)
    await orch.run(parse_pipeline({"pipeline": settings, "phases": phases}, project_dir=project, simulate=True),
                   run_id=run_id)
    return orch


def left_of_ours(project: Path, tmp_path: Path) -> tuple[list[str], list[str], list[Path]]:
    """Worktrees git knows besides the checkout, our branches, and what is in the worktree root."""
    worktrees = [line for line in git(project, "worktree", "list", "--porcelain").splitlines()
                 if line.startswith("worktree ")][1:]
    branches = git(project, "branch", "--list", "claude-scope/*").split()
    root = tmp_path / "worktrees"
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    return worktrees, branches, files


async def test_an_isolated_phase_runs_apart_and_is_merged(leak_guard: LeakGuard, standin_cli: Path,
                                                          project: Path, tmp_path: Path) -> None:
    scenario = writes("notes.md", "notes\n", bash("pwd > where.txt; ls > seen.txt"))
    phases = [{"name": "write", "prompt": "p", "isolation": "worktree", "scenario": scenario,
               "checks": [{"type": "file_exists", "path": "notes.md"}]}]
    with await run(project, standin_cli, phases) as orch:
        phase = orch.journal.phases("r")["write"]
        assert orch.journal.git_states() == []
        merge = next(c for c in orch.journal.attempts("r") if c["name"] == "write")["evidence"]
    assert phase["status"] == "succeeded", phase
    where = (project / "where.txt").read_text().strip()
    assert where.startswith(str(tmp_path / "worktrees")) and not where.startswith(str(project))
    assert ".claude-scope" not in (project / "seen.txt").read_text()  # our state is not in the worktree
    assert (project / "notes.md").read_text() == "notes\n"
    # committed as a merge of ours, the checkout clean, our state not committed
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "log", "-1", "--format=%an %P").split()[0] == "claude-scope"
    assert len(git(project, "log", "-1", "--format=%P").split()) == 2
    assert ".claude-scope" not in git(project, "ls-files")
    assert left_of_ours(project, tmp_path) == ([], [], [])
    assert '"name": "merge", "passed": true' in merge and "started from" in merge


async def test_a_conflict_leaves_the_checkout_as_it_was(leak_guard: LeakGuard, standin_cli: Path,
                                                        project: Path, tmp_path: Path) -> None:
    """Two isolated phases at once write the same file: the first merges, the second is a conflict that
    names the file, leaves no merge state, and keeps its branch for inspection."""
    phases = [{"name": "start", "prompt": "p", "scenario": "ok"}] + [
        {"name": n, "prompt": "p", "isolation": "worktree", "depends_on": ["start"],
         "scenario": writes("README.md", f"by {n}\n", {"sleep": delay})}
        for n, delay in (("first", 0.0), ("second", 1.0))]
    with await run(project, standin_cli, phases, max_parallel=2) as orch:
        states = orch.journal.phases("r")
        kept = orch.journal.git_states("r")
    assert states["first"]["status"] == "succeeded"
    second = states["second"]
    assert (second["status"], second["kind"]) == ("failed", PhaseKind.MERGE_CONFLICT)
    assert "merge conflict in README.md" in second["message"]
    assert (project / "README.md").read_text() == "by first\n"
    assert git(project, "status", "--porcelain") == ""
    assert not (project / ".git" / "MERGE_HEAD").exists() and not (project / ".git" / "index.lock").exists()
    worktrees, branches, files = left_of_ours(project, tmp_path)
    assert worktrees == [] and files == []
    assert len(branches) == 1 and branches[0].startswith("claude-scope/r/second/") and branches[0] in second["message"]
    assert [(s.kind, s.data["branch"]) for s in kept] == [("kept_branch", branches[0])]
    assert git(project, "show", f"{branches[0]}:README.md") == "by second"


async def test_uncommitted_changes_are_where_an_attempt_starts_and_stay_uncommitted(
        leak_guard: LeakGuard, standin_cli: Path, project: Path, tmp_path: Path) -> None:
    """An in-place phase leaves a file uncommitted; the isolated phase after it sees it, and its own change
    is merged as a squash: HEAD gains only what the isolated phase did."""
    phases = [{"name": "draft", "prompt": "p", "scenario": writes("draft.md", "draft\n")},
              {"name": "final", "prompt": "p", "isolation": "worktree",
               "scenario": {"steps": [bash("cat draft.md > final.md; echo more >> final.md")]}}]
    with await run(project, standin_cli, phases) as orch:
        final = orch.journal.phases("r")["final"]
    assert final["status"] == "succeeded", final
    assert (project / "final.md").read_text() == "draft\nmore\n"
    assert git(project, "status", "--porcelain") == "?? draft.md"  # still the in-place phase's, uncommitted
    assert git(project, "show", "--name-only", "--format=%P", "HEAD").split()[1:] == ["final.md"]
    assert len(git(project, "log", "-1", "--format=%P").split()) == 1
    assert "plus 1 uncommitted path(s) of the checkout" in final["evidence"]
    assert left_of_ours(project, tmp_path) == ([], [], [])


async def test_uncommitted_changes_in_the_merged_files_are_a_conflict(
        leak_guard: LeakGuard, standin_cli: Path, project: Path, tmp_path: Path) -> None:
    """The user edits README.md by hand while the isolated phase writes it: nothing of theirs is overwritten."""
    phases = [{"name": "edit", "prompt": "p", "isolation": "worktree",
               "scenario": writes("README.md", "agent\n", {"sleep": 1.0})}]
    orch = Orchestrator(project / ".claude-scope" / "runs.db", project_dir=project, cli_path=standin_cli)

    async def user_edits() -> None:
        await anyio.sleep(0.5)
        (project / "README.md").write_text("mine\n")

    with orch:
        async with anyio.create_task_group() as tg:
            tg.start_soon(user_edits)
            await orch.run(parse_pipeline({"phases": phases}, project_dir=project, simulate=True), run_id="r")
        edit = orch.journal.phases("r")["edit"]
    assert edit["kind"] == PhaseKind.MERGE_CONFLICT and "README.md" in edit["message"]
    assert (project / "README.md").read_text() == "mine\n"


async def test_commits_do_not_depend_on_the_users_git_config(leak_guard: LeakGuard, standin_cli: Path,
                                                             project: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing required with a gpg that always fails, hooks that always fail, no user.name: still merged."""
    home = tmp_path / "home"
    hooks = home / "hooks"
    hooks.mkdir(parents=True)
    for hook in ("pre-commit", "commit-msg", "post-checkout", "post-merge", "reference-transaction"):
        (hooks / hook).write_text("#!/bin/sh\nexit 1\n")
        (hooks / hook).chmod(0o755)
    (home / ".gitconfig").write_text(f"[commit]\n\tgpgSign = true\n[gpg]\n\tprogram = false\n"
                                     f"[core]\n\thooksPath = {hooks}\n")
    monkeypatch.setenv("HOME", str(home))
    phases = [{"name": "write", "prompt": "p", "isolation": "worktree", "scenario": writes("a.txt", "a\n")}]
    with await run(project, standin_cli, phases) as orch:
        assert orch.journal.phases("r")["write"]["status"] == "succeeded"
    assert git(project, "log", "-1", "--format=%an <%ae> %G?") == "claude-scope <claude-scope@localhost> N"


async def test_not_a_repository_is_a_clear_error_before_anything_runs(standin_cli: Path, tmp_path: Path) -> None:
    phases = [{"name": "write", "prompt": "p", "isolation": "worktree", "scenario": "ok"}]
    with pytest.raises(PipelineError, match="needs a git repository"):
        await run(tmp_path, standin_cli, phases)
    with pytest.raises(PipelineError, match="isolation must be one of"):
        parse_pipeline({"phases": [{"name": "a", "prompt": "p", "isolation": "container"}]}, project_dir=tmp_path)


async def test_a_failed_attempt_and_a_cancelled_run_leave_nothing(leak_guard: LeakGuard, standin_cli: Path,
                                                                  project: Path, tmp_path: Path) -> None:
    phases = [{"name": "fails", "prompt": "p", "isolation": "worktree", "scenario": writes("x.txt", "x"),
               "checks": [{"type": "file_exists", "path": "missing.txt"}]}]
    with await run(project, standin_cli, phases) as orch:
        assert orch.journal.phases("r")["fails"]["kind"] == PhaseKind.VALIDATION_FAILED
    assert not (project / "x.txt").exists()
    assert left_of_ours(project, tmp_path) == ([], [], [])
    hangs = [{"name": "hangs", "prompt": "p", "isolation": "worktree", "scenario": "hang"}]
    orch = Orchestrator(project / ".claude-scope" / "runs.db", project_dir=project, cli_path=standin_cli)
    with orch, anyio.move_on_after(2):
        await orch.run(parse_pipeline({"phases": hangs}, project_dir=project, simulate=True), run_id="c")
    assert left_of_ours(project, tmp_path) == ([], [], [])


_KILLED = textwrap.dedent("""
    import anyio, sys
    from pathlib import Path
    from orchestrator import Orchestrator, parse_pipeline
    project, cli = Path(sys.argv[1]), sys.argv[2]
    data = {"phases": [{"name": "hangs", "prompt": "p", "isolation": "worktree", "scenario": "hang"}]}
    orch = Orchestrator(project / ".claude-scope" / "runs.db", project_dir=project, cli_path=cli)
    anyio.run(orch.run, parse_pipeline(data, project_dir=project, simulate=True), "k")
""")


def test_after_kill_9_the_next_start_removes_what_was_left(leak_guard: LeakGuard, standin_cli: Path,
                                                          project: Path, tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", _KILLED, str(project), str(standin_cli)])
    db = project / ".claude-scope" / "runs.db"
    try:
        wait_for(lambda: db.exists() and bool(Journal(db).live_processes()), 30)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    worktrees, _, _ = left_of_ours(project, tmp_path)
    assert len(worktrees) == 1  # what the killed run left
    with Journal(db) as journal:
        anyio.run(Orchestrator(journal, project_dir=project).end_orphans)
        assert journal.git_states() == []
    assert left_of_ours(project, tmp_path) == ([], [], [])


def test_a_merge_cut_short_is_undone_at_the_next_start(leak_guard: LeakGuard, project: Path, tmp_path: Path) -> None:
    """What a ``kill -9`` inside ``read-tree -u`` leaves (a stale ``index.lock``, one file of the merge written,
    HEAD not moved), journalled by an owner that is dead: the next start puts the checkout back."""
    head = git(project, "rev-parse", "HEAD")
    (project / "README.md").write_text("merged\n")
    (project / "new.txt").write_text("new\n")
    git(project, "add", "-A")
    merge = git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit-tree",
                git(project, "write-tree"), "-p", head, "-m", "m")
    git(project, "reset", "-q", head)
    (project / ".git" / "index.lock").write_text("")
    dead = subprocess.Popen(["true"])
    dead.wait()
    with Journal(tmp_path / "runs.db") as journal:
        journal.owner = type(journal.owner)(journal.owner.host, dead.pid, 1.0)
        journal.git_state_added("merge:x", "r", "p", "merge", {"top": str(project), "head": head, "merge": merge,
                                                               "paths": ["README.md", "new.txt"], "started": 0})
        removed = anyio.run(reap, journal.git_states(), journal.git_state_done, _Log())
        assert journal.git_states() == []
    assert removed and "put back" in removed[0]
    assert (project / "README.md").read_text() == "hello\n" and not (project / "new.txt").exists()
    assert not (project / ".git" / "index.lock").exists()
    assert git(project, "status", "--porcelain") == "" and git(project, "rev-parse", "HEAD") == head


class _Log:
    def warning(self, *args: object, **kwargs: object) -> None:
        pass


_MERGING = textwrap.dedent("""
    import anyio, sys
    from pathlib import Path
    from orchestrator import Orchestrator, parse_pipeline
    project, cli = Path(sys.argv[1]), sys.argv[2]
    many = "python3 -c \\"[open(f'f{i}.txt', 'w').write(str(i)) for i in range(6000)]\\""
    data = {"phases": [{"name": "many", "prompt": "p", "isolation": "worktree",
                        "scenario": {"steps": [{"tool": {"name": "Bash", "input": {"command": many}}}]}}]}
    orch = Orchestrator(project / ".claude-scope" / "runs.db", project_dir=project, cli_path=cli)
    anyio.run(orch.run, parse_pipeline(data, project_dir=project, simulate=True), "m")
""")


@pytest.mark.parametrize("group", [False, True], ids=["orchestrator", "orchestrator-and-git"])
def test_kill_9_in_the_middle_of_a_merge_is_undone_at_the_next_start(leak_guard: LeakGuard, standin_cli: Path,
                                                                      project: Path, tmp_path: Path,
                                                                      group: bool) -> None:
    """A real merge of 6,000 new files, killed as soon as the merge is journalled: the orchestrator alone
    (its git finishes writing the checkout, but HEAD never moves), or with its git (a stale ``index.lock``, a
    half-written checkout). The next start puts the checkout back as it was before the merge."""
    head = git(project, "rev-parse", "HEAD")
    db = project / ".claude-scope" / "runs.db"
    child = subprocess.Popen([sys.executable, "-c", _MERGING, str(project), str(standin_cli)], start_new_session=True)
    try:
        wait_for(lambda: _merging(db), 60, interval=0.001)
        wait_for(lambda: (project / "f0.txt").exists(), 30, interval=0.001)  # git has begun writing the checkout
    finally:
        if group:
            os.killpg(child.pid, signal.SIGKILL)
        else:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
    wait_for(lambda: _no_git_in(project), 30)
    written = len(list(project.glob("f*.txt")))
    assert written > 0  # the merge had begun writing the checkout
    assert (project / ".git" / "index.lock").exists() is (group and written < 6000)
    assert git(project, "rev-parse", "HEAD") == head  # the merge never finished: HEAD did not move
    with Journal(db) as journal:
        anyio.run(Orchestrator(journal, project_dir=project).end_orphans)
        assert journal.git_states() == []
    assert git(project, "status", "--porcelain") == ""
    assert not list(project.glob("f*.txt")) and git(project, "rev-parse", "HEAD") == head
    assert left_of_ours(project, tmp_path) == ([], [], [])


def _merging(db: Path) -> bool:
    """A merge is journalled (read with a plain read-only connection: polled every millisecond)."""
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return bool(conn.execute("SELECT 1 FROM git_state WHERE kind = 'merge'").fetchall())
    except sqlite3.Error:
        return False


def _no_git_in(project: Path) -> bool:
    """No git process works in ``project`` (other git processes on the host are none of this test's)."""
    import psutil

    for proc in psutil.process_iter(["name", "cwd"]):
        if proc.info["name"] == "git" and proc.info["cwd"] == str(project):
            return False
    return True


async def test_a_phase_whose_worktree_cannot_be_made_costs_what_it_cost_before(tmp_path: Path) -> None:
    """A resumed isolated phase (two earlier attempts, one of unknown cost) in a project that is no longer a git
    repository: ``isolation_failed``, charged what its earlier attempts cost (a lower bound), never 0."""
    from orchestrator import Journal, Phase, PhaseKind, RunContext
    from orchestrator._execute import PhaseRuntime, run_phase

    project = tmp_path / "not-a-repo"
    project.mkdir()
    with Journal(tmp_path / "runs.db") as journal:
        runtime = PhaseRuntime("r", journal, project, first_attempt=2, earlier_costs=(0.5, None))
        outcome = await run_phase(Phase("p", "x", isolation="worktree"), RunContext("r", project, {}), runtime)
    assert (outcome.kind, outcome.attempts, outcome.cost_usd, outcome.cost_lower_bound) == (
        PhaseKind.ISOLATION_FAILED, 2, 0.5, True)
