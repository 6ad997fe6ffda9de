"""claude-agent-sdk with the real CLI its wheel bundles (a native binary, no Node), offline against the mock.

Where the installed wheel bundles no CLI for this platform, every test here is skipped with that reason.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import claude_agent_sdk as agent
import psutil
import pytest

from sdk_wrapper import FailureKind, QueryLimits, SpawnedCLI, open_query, run_query
from sdk_wrapper.testing import MessagesAPIMock, process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard

BUNDLED = Path(agent.__file__).parent / "_bundled" / "claude"
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not BUNDLED.is_file(),
                       reason=f"AGENT REAL CLI SKIPPED: claude-agent-sdk bundles no CLI for this platform ({BUNDLED})"),
]


@pytest.fixture
def api_factory(tmp_path: Path) -> Iterator[Any]:
    mocks: list[MessagesAPIMock] = []

    def make(turns: list[dict[str, Any]]) -> tuple[MessagesAPIMock, agent.ClaudeAgentOptions]:
        api = MessagesAPIMock(turns).__enter__()
        mocks.append(api)
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        # No cli_path: the wrapper finds the bundled CLI as the agent SDK does.
        return api, agent.ClaudeAgentOptions(cwd=str(work), env=api.cli_env(tmp_path / "home"),
                                             permission_mode="bypassPermissions", model="claude-sonnet-4-5")

    yield make
    for api in mocks:
        api.close()


async def test_tools_really_run(leak_guard: LeakGuard, api_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAUDE_SCOPE_CLI", raising=False)
    api, options = api_factory([
        {"tool_use": {"name": "Bash", "input": {"command": "echo hi"}}},
        {"tool_use": {"name": "Write", "input": {"file_path": "report.md", "content": "# Report\n" + "x" * 200}}},
        {"text": "all done"},
    ])
    spawned: list[SpawnedCLI] = []
    tools: list[str] = []
    async with open_query("do the work", options, limits=QueryLimits(timeout_s=60), on_spawn=spawned.append) as s:
        async for message in s:
            if isinstance(message, agent.AssistantMessage):
                tools += [b.name for b in message.content if isinstance(b, agent.ToolUseBlock)]
    outcome = s.outcome
    assert outcome.ok, outcome.failure
    assert isinstance(outcome.result, agent.ResultMessage) and outcome.result.result == "all done"
    assert outcome.num_turns == 3 and outcome.cost_usd is not None and outcome.cost_usd > 0
    assert tools == ["Bash", "Write"]
    assert api.agent_requests()[1]["tool_results"][0].startswith("hi")  # the CLI really ran `echo hi`
    assert (Path(options.cwd) / "report.md").stat().st_size > 200
    assert psutil.Process().pid != spawned[0].pid and outcome.cleanup.clean


async def test_cancel_during_bash_ends_the_tool(leak_guard: LeakGuard, api_factory: Any) -> None:
    # This CLI refuses a standalone `sleep 60` ("use run_in_background"); a sleep inside a script it runs.
    script = "echo waiting; sleep 60; echo slept"
    _, options = api_factory([{"tool_use": {"name": "Bash", "input": {"command": script}}}])
    tool: list[int] = []
    async with open_query("sleep", options, limits=QueryLimits(timeout_s=60)) as stream:
        deadline = time.monotonic() + 30
        while not tool and time.monotonic() < deadline:
            await anyio.sleep(0.05)
            for proc in psutil.process_iter(["cmdline"]):
                with contextlib.suppress(psutil.Error):
                    if "sleep 60" in " ".join(proc.info["cmdline"] or []) and proc.pid != os.getpid():
                        tool.append(proc.pid)
    assert tool, "the Bash tool's sleep never started"
    assert stream.outcome.failure is not None and stream.outcome.failure.kind is FailureKind.CANCELLED
    assert set(tool) <= set(stream.outcome.cleanup.pids_ended)
    assert not any(process_alive(pid) for pid in tool)


async def test_rate_limit_is_rate_limited(leak_guard: LeakGuard, api_factory: Any) -> None:
    _, options = api_factory([{"error": 429}])
    outcome = await run_query("hi", options, limits=QueryLimits(timeout_s=60))
    assert outcome.failure is not None
    assert (outcome.failure.kind, outcome.failure.retryable) == (FailureKind.RATE_LIMITED, True)


async def test_the_bundled_cli_stops_itself_at_the_budget(leak_guard: LeakGuard, api_factory: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent SDK's own max_budget_usd option carries QueryLimits.max_cost_usd to its bundled CLI: it
    stops after the turn that crosses the cap and asks for no further turn. Unlike the npm CLI 2.1.197
    (test_real_cli: never, 10 of 10 runs), the bundled CLI 2.1.332 sometimes runs the crossing turn's own
    tool before it stops (3 of 30 runs here): a cap bounds the turns, not the tools of the last one."""
    monkeypatch.delenv("CLAUDE_SCOPE_CLI", raising=False)
    api, options = api_factory([
        {"tool_use": {"name": "Bash", "input": {"command": "touch ran-after-the-cap"}},
         "usage": {"input_tokens": 200_000, "output_tokens": 12}},
        {"text": "should never be asked"}])
    outcome = await run_query("go", options, limits=QueryLimits(timeout_s=60, max_cost_usd=0.5))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.BUDGET_EXCEEDED, outcome.failure
    assert outcome.cost_usd is not None and outcome.cost_usd > 0.5
    assert len(api.agent_requests()) == 1  # no turn after the crossing one, whether or not its tool ran
