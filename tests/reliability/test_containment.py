"""Containment that does not depend on an environment marker (issue: descendants that shed their marks).

A descendant that double-forks, calls ``setsid`` and ``execve``s with an empty environment leaves the
CLI's process group, session and marker. With a cgroup per query it is still ended, and the cleanup is
verified by an empty ``cgroup.procs``; without one it is reported as unattributed, never called verified.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from sdk_wrapper import Containment, FailureKind, QueryLimits, run_query
from sdk_wrapper._containment._cgroup import host_cgroup
from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import SDKS, cgroups_or_skip, sdk_options

pytestmark = [pytest.mark.anyio]

ESCAPE_THEN_ANSWER = {"steps": [{"spawn": {"escape": True, "seconds": 600}}, {"text": "done"}]}
ESCAPE_THEN_HANG = {"steps": [{"spawn": {"escape": True, "seconds": 600}}, {"hang": True}], "result": None}


def _escaped(leak_guard: LeakGuard) -> list[int]:
    return [pid for pid, role in leak_guard.recorded_pids() if role == "escaped"]


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize("scenario", [ESCAPE_THEN_ANSWER, ESCAPE_THEN_HANG], ids=["after-result", "on-timeout"])
async def test_cgroup_ends_a_descendant_that_shed_every_mark(sdk: str, scenario: dict[str, object],
                                                             leak_guard: LeakGuard, standin_cli: Path,
                                                             tmp_path: Path) -> None:
    cgroups_or_skip()
    outcome = await run_query("go", sdk_options(sdk, scenario, tmp_path), cli_path=standin_cli,
                              limits=QueryLimits(timeout_s=3, terminate_grace_s=0.5))
    escaped = _escaped(leak_guard)
    assert len(escaped) == 1, leak_guard.recorded_pids()
    assert not process_alive(escaped[0])
    cleanup = outcome.cleanup
    assert cleanup.containment is Containment.CGROUP and cleanup.verified
    assert escaped[0] in cleanup.pids_ended
    assert outcome.cpu_s is not None and outcome.cpu_s > 0  # the stand-in's own Python start costs CPU
    if scenario is ESCAPE_THEN_ANSWER:
        assert outcome.ok, outcome.failure
    else:
        assert outcome.failure is not None and outcome.failure.kind is FailureKind.TIMEOUT
    assert not any(p.name == f"q-{outcome.query_id}" for p in host_cgroup().host.path.iterdir())  # type: ignore[union-attr]


async def test_without_cgroups_an_unmarked_orphan_is_reported_not_verified(
        leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_SCOPE_CGROUP", "0")
    outcome = await run_query("go", sdk_options("code-sdk", ESCAPE_THEN_ANSWER, tmp_path), cli_path=standin_cli)
    escaped = _escaped(leak_guard)
    assert len(escaped) == 1
    try:
        assert outcome.ok  # the CLI's own answer is real; only the cleanup claim is in doubt
        cleanup = outcome.cleanup
        assert cleanup.containment is Containment.SUBREAPER
        assert process_alive(escaped[0])  # nothing ties it to the query: it is not ours to kill
        assert cleanup.unattributed_pids == (escaped[0],)
        assert cleanup.clean and not cleanup.verified
    finally:
        os.kill(escaped[0], signal.SIGKILL)
        os.waitpid(escaped[0], 0)  # noqa: ASYNC222 (reparented to us, the subreaper: ours to reap; instant)


def test_doctor_reports_the_containment_in_force_and_proves_it(leak_guard: LeakGuard, tmp_path: Path) -> None:
    """`claude-scope doctor` runs a probe query whose descendant sheds every mark; its verdict must match the
    containment: with cgroups the descendant is ended and the cleanup verified; without, it is reported."""
    import json
    import subprocess
    import sys

    from sdk_wrapper._containment._cgroup import host_cgroup

    def doctor(**env: str) -> tuple[int, dict[str, object]]:
        run = subprocess.run([sys.executable, "-m", "orchestrator._cli", "doctor", "--json"], capture_output=True,
                             text=True, timeout=60, cwd=tmp_path, env={**os.environ, **env})
        return run.returncode, json.loads(run.stdout)

    code, found = doctor(CLAUDE_SCOPE_CGROUP="0")
    assert found["containment"] == "subreaper" and found["probe_escapee_ended"] is False
    assert found["probe_ok"] is True and found["probe_verified"] is False and code == 0
    code, found = doctor(CLAUDE_SCOPE_CGROUP="0", CLAUDE_SCOPE_SUBREAPER="0")
    assert found["containment"] == "marker" and found["probe_verified"] is False and code == 1
    if host_cgroup().host is not None:
        code, found = doctor()
        assert found["containment"] == "cgroup" and code == 0
        assert found["probe_escapee_ended"] is True and found["probe_verified"] is True
        assert isinstance(found["probe_cpu_s"], float) and found["guard_pid"] is not None
        assert isinstance(found["cgroup_move_ms"], float) and found["cgroup_move_ms"] > 0
        assert isinstance(found["cgroup_favordynmods"], bool) and "rcu_expedited" in found
        text = subprocess.run([sys.executable, "-m", "orchestrator._cli", "doctor"], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path).stdout
        assert "moving a CLI into its cgroup: " in text, text
