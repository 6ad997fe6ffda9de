"""Retention (``claude-scope prune``) on a real journal, real message logs and a real git branch: ended runs go
with everything of theirs; a running run and one waiting for approval are never touched; the journal file
shrinks (incremental compaction) without blocking a run that is live on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import Journal
from orchestrator._prune import PruneError, parse_age
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import wait_for
from tests.orchestrator.test_approval import BUILD, pipeline, status_of
from tests.orchestrator.test_isolation import git


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator._cli", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def test_prune_removes_ended_runs_and_everything_of_theirs(leak_guard: LeakGuard, tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "f").write_text("x")
    git(tmp_path, "add", "f")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "f")
    git(tmp_path, "branch", "claude-scope/old/kept/1")
    big = {"steps": [{"burst": {"count": 2000, "text_bytes": 200}}]}
    (tmp_path / "p.toml").write_text(pipeline({"name": "a", "prompt": "x", "scenario": big}))
    (tmp_path / "w.toml").write_text(pipeline(BUILD))
    for run_id in ("old", "older"):
        assert cli(tmp_path, "run", "p.toml", "--simulate", "--run-id", run_id).returncode == 0
    assert cli(tmp_path, "report", "old").returncode == 0
    assert cli(tmp_path, "run", "w.toml", "--simulate", "--run-id", "waits", "--no-wait").returncode == 3
    db = tmp_path / ".claude-scope" / "runs.db"
    with Journal(db) as journal:
        journal.git_state_added("branch:claude-scope/old/kept/1", "old", "a", "kept_branch",
                                {"top": str(tmp_path), "branch": "claude-scope/old/kept/1"})
        for number in range(2, 400):  # attempts with long prompts: pages for the prune to give back
            journal.phase_running("older", "a", number, "a long prompt " * 200)
    dry = cli(tmp_path, "prune", "--keep", "0", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove 2 run(s), 400 attempt(s)" in dry.stdout and "1 kept branch" in dry.stdout
    assert "left 1 run(s) that are running or waiting for approval: waits" in dry.stdout
    assert (tmp_path / ".claude-scope" / "messages" / "old").exists()
    with Journal(db) as journal:
        journal.checkpoint()
        pages = journal.pragma("page_count")
    done = cli(tmp_path, "prune", "--keep", "0")
    assert done.returncode == 0, done.stderr
    assert "removed 2 run(s)" in done.stdout and "journal " in done.stdout
    with Journal(db) as journal:
        assert journal.pragma("auto_vacuum") == 2 and journal.pragma("freelist_count") == 0
        assert journal.pragma("page_count") < pages  # the freed pages were given back to the file system
        assert [r["run_id"] for r in journal.runs()] == ["waits"]
        assert journal.attempts("old") == [] and journal.phases("old") == {} and journal.git_states("old") == []
        assert journal.phases("waits")["build"]["status"] == "waiting_approval"
    assert not (tmp_path / ".claude-scope" / "messages" / "old").exists()
    assert not (tmp_path / ".claude-scope" / "reports" / "old.html").exists()
    assert git(tmp_path, "branch", "--list", "claude-scope/*") == ""


def test_prune_never_touches_a_live_run_and_does_not_block_it(leak_guard: LeakGuard, tmp_path: Path) -> None:
    slow = {"steps": [{"sleep": 2.0}, {"text": "done"}]}
    (tmp_path / "p.toml").write_text(pipeline({"name": "a", "prompt": "x", "scenario": "ok"}))
    (tmp_path / "s.toml").write_text(pipeline({"name": "slow", "prompt": "x", "scenario": slow},
                                              {"name": "then", "prompt": "x", "scenario": "ok"}))
    for run_id in ("e1", "e2", "e3"):
        assert cli(tmp_path, "run", "p.toml", "--simulate", "--run-id", run_id).returncode == 0
    live = subprocess.Popen([sys.executable, "-m", "orchestrator._cli", "run", "s.toml", "--simulate", "--run-id",
                             "live"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: status_of(tmp_path, "live", "slow") == "running", 30)
    done = cli(tmp_path, "prune", "--older-than", "0s")
    assert done.returncode == 0 and "removed 3 run(s)" in done.stdout and "left 1 run(s)" in done.stdout
    live.communicate(timeout=60)
    assert live.returncode == 0  # it went on, and finished, while the prune ran
    with Journal(tmp_path / ".claude-scope" / "runs.db") as journal:
        assert [r["run_id"] for r in journal.runs()] == ["live"]
        assert journal.phases("live")["then"]["status"] == "succeeded"


def test_bad_prune_arguments_are_refused(tmp_path: Path) -> None:
    assert parse_age("30d") == 30 * 86400 and parse_age("90m") == 5400 and parse_age("2w") == 14 * 86400
    with pytest.raises(PruneError, match="give a number and a unit"):
        parse_age("thirty days")
    (tmp_path / ".claude-scope").mkdir()
    for args, said in ((("prune",), "--older-than AGE or --keep N"), (("prune", "--older-than", "soon"), "a unit"),
                       (("prune", "--keep", "-1"), "--keep -1")):
        done = cli(tmp_path, *args)
        assert done.returncode == 2 and said in done.stderr, done.stderr
