"""Resource caps per query, against real cgroups and real processes: a real fork bomb started by the agent's
Bash is held by ``max_pids`` and a real memory hog is killed by ``memory_mb``; either ends the query as
``resource_limit`` with the kernel's evidence and the whole tree gone. Where this host cannot enforce the
caps, the query is refused before any process starts (tested by pointing the lookup at nothing writable),
and these tests skip saying why."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Orchestrator, parse_pipeline
from sdk_wrapper import FailureKind, QueryLimits, run_contained
from sdk_wrapper._containment._caps import Caps, CapsError
from sdk_wrapper._containment._caps import support as cap_support
from sdk_wrapper._containment._cgroup import host_cgroup
from sdk_wrapper._options import check_caps
from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import SDKS, drive, sdk_options

pytestmark = pytest.mark.anyio

#: the classic bash fork bomb: held by the process cap, or this host would be in trouble (it is never started
#: where the cap cannot be enforced: the query is refused first)
FORK_BOMB = "bash -c ':(){ :|:& };:'; sleep 5"
HOG = "python3 -c \"x = b'x' * (400 * 1024 * 1024); import time; time.sleep(30)\""


def _enforceable() -> dict[str, str]:
    host = host_cgroup().host
    return cap_support(None if host is None else host.path)


needs_caps = pytest.mark.skipif(any(v.startswith("not enforceable") for v in _enforceable().values()),
                                reason=f"this host cannot enforce the caps: {_enforceable()}")


def bash(command: str) -> dict[str, Any]:
    return {"steps": [{"tool": {"name": "Bash", "input": {"command": command}}}, {"text": "done"}]}


def _cap_dirs(query_id: str | None) -> list[str]:
    import glob

    return [p for root in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified")
            for p in glob.glob(f"{root}/**/q-{query_id}", recursive=True)]


def _cli_gone(leak_guard: LeakGuard) -> bool:
    return not [pid for pid, role in leak_guard.recorded_pids() if role == "cli" and process_alive(pid)]


@needs_caps
@pytest.mark.parametrize("sdk", SDKS)
async def test_a_fork_bomb_is_held_by_max_pids_and_ended(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path,
                                                         sdk: str) -> None:
    started = time.monotonic()
    outcome = await drive("stream", "bomb", sdk_options(sdk, bash(FORK_BOMB), tmp_path), standin_cli,
                          QueryLimits(max_pids=64, timeout_s=60))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.RESOURCE_LIMIT, outcome.failure
    assert "process cap (pids.max 64) hit" in outcome.failure.message and "pids.events max" in outcome.failure.message
    assert outcome.cleanup.leftover_pids == () and _cli_gone(leak_guard)
    assert time.monotonic() - started < 30  # generous: catches a bomb that was never ended


@needs_caps
async def test_a_memory_hog_is_killed_by_memory_mb(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    outcome = await drive("run", "hog", sdk_options("code-sdk", bash(HOG), tmp_path), standin_cli,
                          QueryLimits(memory_mb=96, timeout_s=60))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.RESOURCE_LIMIT, outcome.failure
    assert "memory cap (96 MB) hit" in outcome.failure.message and "oom_kill" in outcome.failure.message
    assert outcome.cleanup.leftover_pids == () and _cli_gone(leak_guard)


@needs_caps
async def test_under_the_caps_nothing_changes(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    outcome = await drive("run", "fine", sdk_options("code-sdk", bash("echo fine"), tmp_path), standin_cli,
                          QueryLimits(memory_mb=512, max_pids=256))
    assert outcome.ok, outcome.failure
    assert _cap_dirs(outcome.query_id) == []  # its cap cgroups are removed


@needs_caps
async def test_a_check_command_gets_the_same_caps(leak_guard: LeakGuard, tmp_path: Path) -> None:
    done = await run_contained(["bash", "-c", FORK_BOMB], cwd=tmp_path, timeout_s=60, caps=Caps(max_pids=32))
    assert "process cap (pids.max 32) hit" in done.cap_hit
    assert done.cleanup.leftover_pids == ()


@needs_caps
async def test_a_phase_with_caps_fails_as_resource_limit(leak_guard: LeakGuard, standin_cli: Path,
                                                         tmp_path: Path) -> None:
    data = {"phases": [{"name": "start", "prompt": "x", "scenario": "ok"},
                       {"name": "bomb", "prompt": "x", "max_pids": 48, "scenario": bash(FORK_BOMB),
                        "depends_on": ["start"]},
                       {"name": "hog", "prompt": "x", "memory_mb": 96, "scenario": bash(HOG), "depends_on": ["start"]},
                       {"name": "checked", "prompt": "x", "max_pids": 32, "scenario": "ok", "depends_on": ["start"],
                        "checks": [{"type": "command", "command": ["bash", "-c", FORK_BOMB]}]}]}
    with Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=standin_cli) as orch:
        report = await orch.run(parse_pipeline(data, project_dir=tmp_path, simulate=True))
    assert report.phases["bomb"].kind is FailureKind.RESOURCE_LIMIT
    assert report.phases["hog"].kind is FailureKind.RESOURCE_LIMIT
    checked = report.phases["checked"]
    assert not checked.succeeded and "process cap (pids.max 32) hit" in checked.message


def test_caps_that_cannot_be_enforced_are_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sdk_wrapper._containment._caps._v1_mounts", lambda: {})
    monkeypatch.setattr("sdk_wrapper._containment._caps._v2_enable", lambda host, controller: False)
    with pytest.raises(CapsError, match="max_pids=10 cannot be enforced here"):
        check_caps(None, 10)
    with pytest.raises(CapsError, match="memory_mb=64"):
        check_caps(64, None)
