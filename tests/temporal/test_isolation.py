"""Isolated phases and races on Temporal, against a real dev server and real git repositories: the same
pipeline through both engines, each in a repository of its own, must report the same and leave the same
checkout, with no process, worktree or branch of ours left on the worker's host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Orchestrator, parse_pipeline
from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import make_repo, until
from tests.orchestrator.test_isolation import git, left_of_ours, writes
from tests.temporal.conftest import Client, queue_name, temporal, worker
from tests.temporal.test_both_engines import recorded
from tests.temporal.test_temporal import WORKER

pytestmark = pytest.mark.anyio

RACE: dict[str, Any] = {"phases": [
    {"name": "solve", "prompt": "solve it", "isolation": "worktree",
     "checks": [{"type": "file_exists", "path": "answer.md"}], "variants": [
         {"name": "slow", "scenario": {"steps": [{"text": "thinking"}, {"hang": True}]}},
         {"name": "quick", "scenario": writes("answer.md", "quick\n", {"sleep": 0.5})},
         {"name": "wrong", "scenario": writes("other.md", "no answer\n")}]},
    {"name": "polish", "prompt": "polish it", "isolation": "worktree", "depends_on": ["solve"],
     "scenario": {"steps": [{"tool": {"name": "Bash", "input": {"command": "cat answer.md > polished.md"}}}]}},
    {"name": "clash", "prompt": "x", "isolation": "worktree", "depends_on": ["polish"],
     "scenario": writes("README.md", "clash\n", {"tool": {"name": "Bash", "input": {
         "command": "printf 'theirs\\n' > \"$PROJECT/README.md\" && git -C \"$PROJECT\" commit -qam theirs"}}}),
     "env": {}}]}


def _pipeline(project: Path) -> dict[str, Any]:
    """The race pipeline; "clash" commits into the project's checkout while it runs (as a person would)."""
    data = json.loads(json.dumps(RACE))
    data["phases"][2]["env"] = {"PROJECT": str(project), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return data


async def test_a_race_on_both_engines(leak_guard: LeakGuard, temporal_server: temporal.DevServer,
                                      temporal_client: Client, standin_cli: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_SCOPE_WORKTREES", str(tmp_path / "worktrees"))
    local_repo, remote_repo = make_repo(tmp_path / "local"), make_repo(tmp_path / "remote")
    with Orchestrator(local_repo / ".claude-scope" / "runs.db", project_dir=local_repo, cli_path=standin_cli) as orch:
        local = recorded(await orch.run(parse_pipeline(_pipeline(local_repo), project_dir=local_repo, simulate=True)))
    queue = queue_name(tmp_path)
    async with worker(temporal_client, queue, remote_repo, standin_cli):
        runner = temporal.TemporalRunner(temporal_client, queue)
        report = await runner.run(temporal.spec_from_data(_pipeline(remote_repo), simulate=True), run_id=queue)
        view = {p.name: p for p in (await runner.view(queue)).phases}
        events = (await temporal_client.get_workflow_handle(queue).fetch_history()).events
    assert recorded(report) == local
    # each variant an activity of its own; the loser still running ("slow" hangs) cancelled as an activity
    # and waited for; the merge an activity of its own on the same queue
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    assert scheduled.count("claude-scope-race-variant") == 3 and scheduled.count("claude-scope-race-end") == 1
    assert [e.HasField("activity_task_cancel_requested_event_attributes") for e in events].count(True) == 1
    assert [e.HasField("activity_task_canceled_event_attributes") for e in events].count(True) == 1
    statuses = [(p[0], p[1], p[2], p[3], p[6]) for p in local["phases"]]
    assert statuses == [("solve", "succeeded", None, 3, True), ("polish", "succeeded", None, 1, False),
                        ("clash", "failed", "merge_conflict", 1, False)]
    for repo in (local_repo, remote_repo):
        assert (repo / "answer.md").read_text() == (repo / "polished.md").read_text() == "quick\n"
        assert (repo / "README.md").read_text() == "theirs\n"  # the conflict left the checkout as it was
        assert git(repo, "status", "--porcelain") == ""
    race = next(c for a in view["solve"].attempts for c in a.checks if c["name"] == "race")
    assert race["details"]["winner"] == "quick"
    assert not [pid for pid, role in leak_guard.recorded_pids() if role == "cli" and process_alive(pid)]
    for repo in (local_repo, remote_repo):
        worktrees, branches, _ = left_of_ours(repo, tmp_path)
        assert worktrees == [] and len(branches) == 1 and "/clash/" in branches[0]  # the conflict's, kept
    assert not [p for p in (tmp_path / "worktrees").rglob("*") if p.is_file()]


async def test_a_worker_killed_mid_race_leaves_nothing_once_another_starts(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    """kill -9 of the worker while two variants run: their CLIs and worktrees outlive it; the next worker on
    the host ends and removes them before it runs anything, and Temporal's retry of the activity runs the race
    again, to a merge."""
    worktrees = tmp_path / "worktrees"
    repo = make_repo(tmp_path / "repo")
    queue = queue_name(tmp_path)
    slow = writes("answer.md", "slow\n")
    slow["steps"].insert(0, {"sleep": 3})
    spec = temporal.spec_from_data({"phases": [{
        "name": "solve", "prompt": "x", "isolation": "worktree",
        "checks": [{"type": "file_exists", "path": "answer.md"}],
        "variants": [{"scenario": {"steps": [{"text": "thinking"}, {"hang": True}]}}, {"scenario": slow}]}]},
        simulate=True)
    env = {**os.environ, "CLAUDE_SCOPE_GUARD": "0", "CLAUDE_SCOPE_WORKTREES": str(worktrees)}
    argv = [sys.executable, "-c", WORKER, temporal_server.address, queue, str(repo), str(standin_cli)]
    doomed = subprocess.Popen(argv, env=env, start_new_session=True)  # noqa: ASYNC220 - to be killed
    try:
        runner = temporal.TemporalRunner(temporal_client, queue, heartbeat_timeout_s=2)
        run_id = await runner.submit(spec, run_id=f"race-killed-{tmp_path.name}")
        await until(lambda: len(leak_guard.live_recorded()) >= 2, 30)
        orphans = [pid for pid, _ in leak_guard.live_recorded()]
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        assert all(process_alive(pid) for pid in orphans)
        assert len(left_of_ours(repo, tmp_path)[0]) == 2  # the killed worker's worktrees
        os.environ["CLAUDE_SCOPE_WORKTREES"] = str(worktrees)
        async with worker(temporal_client, queue, repo, standin_cli):
            await until(lambda: not any(process_alive(pid) for pid in orphans), 10)
            report = await runner.wait(run_id)
    finally:
        os.environ.pop("CLAUDE_SCOPE_WORKTREES", None)
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()
    assert report.ok, report.phases
    assert (repo / "answer.md").read_text() == "slow\n" and git(repo, "status", "--porcelain") == ""
    assert left_of_ours(repo, tmp_path) == ([], [], [])


async def test_cancelling_the_run_mid_race_cancels_every_variant(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancel the workflow while two variants hang: both activities are cancelled and waited for, so the run
    closes cancelled with no CLI, worktree or branch of ours left, each variant an attempt of unknown cost."""
    monkeypatch.setenv("CLAUDE_SCOPE_WORKTREES", str(tmp_path / "worktrees"))
    repo = make_repo(tmp_path / "repo")
    hang = {"steps": [{"text": "thinking"}, {"hang": True}]}
    spec = temporal.spec_from_data({"phases": [{"name": "solve", "prompt": "x", "isolation": "worktree",
                                                "variants": [{"scenario": hang}, {"scenario": hang}]}]},
                                   simulate=True)
    queue = queue_name(tmp_path)
    async with worker(temporal_client, queue, repo, standin_cli):
        runner = temporal.TemporalRunner(temporal_client, queue)
        run_id = await runner.submit(spec, run_id=queue)
        await until(lambda: len(leak_guard.live_recorded()) >= 2, 30)
        await runner.cancel(run_id)
        view = await runner.view(run_id)
    assert view.status == "cancelled"
    (phase,) = view.phases
    assert phase.status == "cancelled" and [a.kind for a in phase.attempts] == ["cancelled", "cancelled"]
    assert phase.cost_usd is None or phase.cost_lower_bound
    assert not leak_guard.live_recorded()
    assert left_of_ours(repo, tmp_path) == ([], [], []) and git(repo, "status", "--porcelain") == ""
