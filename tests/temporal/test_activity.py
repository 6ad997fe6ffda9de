"""The phase-attempt activity in ``temporalio.testing.ActivityEnvironment``: no server, a real CLI process.

Cancel (as a heartbeat delivers it) ends the CLI tree before the activity returns; a retry of an attempt
whose worker died ends the tree named by that attempt's last heartbeat, and then runs the phase.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from temporalio.testing import ActivityEnvironment

from orchestrator import Journal
from orchestrator.temporal._requests import AttemptRequest, RaceEnd
from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import until
from tests.temporal.conftest import temporal

pytestmark = pytest.mark.anyio


def request(phase: dict[str, Any], attempt: int = 1) -> AttemptRequest:
    spec = temporal.spec_from_data({"phases": [phase]}, simulate=True)
    return AttemptRequest("r", spec.to_json(), phase["name"], attempt)


def marked_sleeper(query_id: str) -> subprocess.Popen[bytes]:
    """A process of query ``query_id`` (its marker), in a session of its own: a dead worker's orphan."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            env={**os.environ, "CLAUDE_SCOPE_QUERY_ID": query_id}, start_new_session=True)


async def test_cancel_ends_the_tree_before_the_activity_returns(leak_guard: LeakGuard, standin_cli: Path,
                                                                tmp_path: Path) -> None:
    hang = {"steps": [{"spawn": {"new_session": True}}, {"text": "working"}, {"hang": True}], "result": None}
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    with Journal(tmp_path / "host.db") as journal:
        activities = temporal.PhaseActivities(tmp_path, journal, str(standin_cli))
        async with anyio.create_task_group() as tg:
            async def cancel_once_running() -> None:
                await until(lambda: len(leak_guard.live_recorded()) >= 2, 30)
                env.cancel()

            tg.start_soon(cancel_once_running)
            with pytest.raises(BaseException) as raised:
                await env.run(activities.attempt, request({"name": "long", "prompt": "x", "scenario": hang}))
        assert not leak_guard.live_recorded()  # the CLI and its own-session child, gone as the activity ended
        assert "Cancel" in type(raised.value).__name__
        memo = next(d[0] for d in reversed(beats) if d and d[0])
        assert memo["host"] == socket.gethostname() and memo["query_id"] and memo["pid"] > 0
        assert journal.live_processes() == []  # nothing left to reap


async def test_a_retry_ends_the_tree_its_dead_predecessor_left(leak_guard: LeakGuard, standin_cli: Path,
                                                                tmp_path: Path) -> None:
    query_id = uuid.uuid4().hex
    orphan = marked_sleeper(query_id)
    memo = {"host": socket.gethostname(), "pid": orphan.pid, "create_time": psutil.Process(orphan.pid).create_time(),
            "query_id": query_id}
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[memo])
    with Journal(tmp_path / "host.db") as journal:
        activities = temporal.PhaseActivities(tmp_path, journal, str(standin_cli))
        record = await env.run(activities.attempt, request({"name": "again", "prompt": "x", "scenario": "ok"}))
    orphan.wait(timeout=5)
    assert not process_alive(orphan.pid) and record.status == "succeeded"
    other_host = {**memo, "host": "elsewhere"}  # a memo from another host is not ours to act on
    survivor = marked_sleeper(query_id)
    try:
        env.info = dataclasses.replace(env.info, heartbeat_details=[{**other_host, "pid": survivor.pid}])
        with Journal(tmp_path / "host.db") as journal:
            activities = temporal.PhaseActivities(tmp_path, journal, str(standin_cli))
            await env.run(activities.attempt, request({"name": "again", "prompt": "x", "scenario": "ok"}))
        assert process_alive(survivor.pid)
    finally:
        survivor.kill()
        survivor.wait()


async def test_a_variant_that_passed_holds_its_worktree_until_the_race_ends(
        leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A race's variant activity that passes keeps its worktree (journalled, named in its record) and merges
    nothing; ``race_end`` merges the winner and removes every worktree held; a winner whose worktree is gone
    (its worker died and the next reaped it) is an error, not a merge of nothing."""
    from tests.helpers import make_repo
    from tests.orchestrator.test_isolation import git, left_of_ours, writes

    monkeypatch.setenv("CLAUDE_SCOPE_WORKTREES", str(tmp_path / "worktrees"))
    repo = make_repo(tmp_path / "repo")
    phase = {"name": "solve", "prompt": "x", "isolation": "worktree",
             "checks": [{"type": "file_exists", "path": "answer.md"}],
             "variants": [{"name": "a", "scenario": writes("answer.md", "a\n")},
                          {"name": "b", "scenario": writes("answer.md", "b\n")}]}
    env = ActivityEnvironment()
    with Journal(tmp_path / "host.db") as journal:
        activities = temporal.PhaseActivities(repo, journal, str(standin_cli))
        a, b = [await env.run(activities.variant, dataclasses.replace(request(phase, n), variant=v))
                for n, v in ((1, "a"), (2, "b"))]
        assert (a.status, a.attempts, b.attempts, a.variant) == ("succeeded", 1, 2, "a")
        assert [c["name"] for c in a.checks] == ["file_exists:answer.md"]  # no merge: the workflow decides
        assert len(left_of_ours(repo, tmp_path)[0]) == 2 and not (repo / "answer.md").exists()
        assert a.worktree and b.worktree
        assert {s.key for s in journal.git_states()} == {a.worktree["key"], b.worktree["key"]}
        end = await env.run(activities.race_end, RaceEnd("r", "solve", 1, a.worktree, [b.worktree]))
        assert end.error == "" and end.merge and end.merge["passed"] and (repo / "answer.md").read_text() == "a\n"
        assert left_of_ours(repo, tmp_path) == ([], [], []) and journal.git_states() == []
        assert git(repo, "status", "--porcelain") == ""
        gone = await env.run(activities.race_end, RaceEnd("r", "solve", 1, b.worktree, []))
        assert gone.merge is None and "is gone before its merge" in gone.error
