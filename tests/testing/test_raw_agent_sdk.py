"""The "before" picture for raw claude-agent-sdk 0.2.189: what its own ``query()`` does when cancelled.

In-process (its tasks are detached asyncio tasks, so no cancel-scope error reaches a finalizer here, unlike
claude-code-sdk's rows in test_raw_sdk.py). What it leaves is ended after the assertions.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
from claude_agent_sdk import ClaudeAgentOptions, query

from sdk_wrapper.testing import process_alive, scenario_env
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.testing.test_raw_sdk import _end

pytestmark = pytest.mark.anyio


async def test_cancel_waits_for_a_hung_cli_and_leaves_its_own_session_child(leak_guard: LeakGuard, standin_cli: Path,
                                                                            tmp_path: Path) -> None:
    scenario = {"steps": [{"spawn": {"new_session": True}}, {"text": "spawned"}, {"hang": True}], "result": None}
    options = ClaudeAgentOptions(cwd=str(tmp_path), env=scenario_env(scenario), cli_path=str(standin_cli))
    started = time.monotonic()
    with anyio.move_on_after(1.0):
        async for _ in query(prompt="hi", options=options):
            pass
    waited = time.monotonic() - started - 1.0
    await anyio.sleep(0.3)
    alive = {role: process_alive(pid) for pid, role in leak_guard.recorded_pids()}
    for pid, _ in leak_guard.recorded_pids():
        if process_alive(pid):
            _end(pid)
    assert waited > 4.5  # it waits up to 5 s for the hung CLI to exit on its own before SIGTERM
    assert alive == {"cli": False, "grandchild": True}  # the CLI is ended; the child in its own session is not
