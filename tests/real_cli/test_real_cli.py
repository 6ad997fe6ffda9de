"""The real Claude Code CLI (npm, pinned), offline against the loopback Messages API mock.

Runs when scripts/test found or installed the CLI (``CLAUDE_SCOPE_REAL_CLI``); otherwise every test here
is skipped with that reason, shown in pytest's summary.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from claude_code_sdk import AssistantMessage, ClaudeCodeOptions, ResultMessage, SystemMessage, ToolUseBlock, UserMessage

from orchestrator import Orchestrator, Phase, Pipeline, file_exists
from sdk_wrapper import FailureKind, QueryLimits, SpawnedCLI, open_query, run_query, v3
from sdk_wrapper.testing import MessagesAPIMock, process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard

REAL_CLI = os.environ.get("CLAUDE_SCOPE_REAL_CLI", "")
pytestmark = pytest.mark.skipif(
    not (REAL_CLI and Path(REAL_CLI).is_file()),
    reason="REAL CLI TIER SKIPPED: no real claude CLI (scripts/test installs it with npm; npm missing or failed)",
)


@pytest.fixture
def api_factory(tmp_path: Path) -> Iterator[Any]:
    mocks: list[MessagesAPIMock] = []

    def make(turns: list[dict[str, Any]]) -> tuple[MessagesAPIMock, ClaudeCodeOptions]:
        api = MessagesAPIMock(turns).__enter__()
        mocks.append(api)
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        return api, ClaudeCodeOptions(cwd=str(work), env=api.cli_env(tmp_path / "home"),
                                      permission_mode="bypassPermissions", model="claude-sonnet-4-5")

    yield make
    for api in mocks:
        api.close()


@pytest.mark.anyio
async def test_run_query_real_result(leak_guard: LeakGuard, api_factory: Any) -> None:
    api, options = api_factory([{"text": "hello from the mock API"}])
    outcome = await run_query("say hi", options, cli_path=REAL_CLI, limits=QueryLimits(timeout_s=60))
    assert outcome.ok, outcome.failure
    assert outcome.result is not None and outcome.result.result == "hello from the mock API"
    assert outcome.num_turns == 1 and outcome.cost_usd is not None and outcome.cost_usd > 0
    assert outcome.result_raw is not None and outcome.result_raw["terminal_reason"] == "completed"
    assert api.agent_requests()[0]["has_api_key"] and outcome.cleanup.clean


@pytest.mark.anyio
async def test_open_query_with_tools_that_really_run(leak_guard: LeakGuard, api_factory: Any) -> None:
    api, options = api_factory([
        {"tool_use": {"name": "Bash", "input": {"command": "echo hi"}}},
        {"tool_use": {"name": "Write", "input": {"file_path": "report.md", "content": "# Report\n" + "x" * 200}}},
        {"text": "all done"},
    ])
    kinds: list[type] = []
    tools: list[str] = []
    async with open_query("do the work", options, cli_path=REAL_CLI, limits=QueryLimits(timeout_s=60)) as stream:
        async for message in stream:
            kinds.append(type(message))
            if isinstance(message, AssistantMessage):
                tools += [b.name for b in message.content if isinstance(b, ToolUseBlock)]
    assert stream.outcome.ok and stream.outcome.num_turns == 3
    assert kinds[0] is SystemMessage and kinds[-1] is ResultMessage and UserMessage in kinds
    assert tools == ["Bash", "Write"]
    assert api.agent_requests()[1]["tool_results"] == ["hi"]  # the CLI really ran `echo hi`
    work = Path(options.cwd or ".")
    assert (work / "report.md").stat().st_size > 200


def test_v3_drop_in(leak_guard: LeakGuard, api_factory: Any) -> None:
    _, options = api_factory([{"text": "v3 says hi"}])
    previous = os.environ.get("CLAUDE_SCOPE_CLI")
    os.environ["CLAUDE_SCOPE_CLI"] = REAL_CLI
    try:
        items = anyio.run(lambda: _collect_v3(options))
    finally:
        if previous is None:
            del os.environ["CLAUDE_SCOPE_CLI"]
        else:
            os.environ["CLAUDE_SCOPE_CLI"] = previous
    assert items[0]["subtype"] == "init" and items[0]["data"]["session_id"] == items[-1]["session_id"]
    assert (items[-1]["type"], items[-1]["subtype"], items[-1]["result"]) == ("result", "success", "v3 says hi")
    assert items[-1]["cost_usd"] > 0


async def _collect_v3(options: ClaudeCodeOptions) -> list[dict[str, Any]]:
    return [m async for m in v3.query_v3("hi", options, Path(options.cwd or "."))]


def test_orchestrator_pipeline(leak_guard: LeakGuard, api_factory: Any, tmp_path: Path) -> None:
    _, options = api_factory([
        {"tool_use": {"name": "Write", "input": {"file_path": "research.md", "content": "# R\n" + "r" * 150}}},
        {"text": "researched"}, {"text": "planned"},
    ])
    pipeline = Pipeline([Phase("research", "research", options=options, checks=[file_exists("research.md", 100)]),
                         Phase("plan", "plan", options=options)])
    with Orchestrator(tmp_path / "runs.db", project_dir=options.cwd or ".", cli_path=REAL_CLI) as orch:
        report = orch.run_sync(pipeline)
    assert report.ok, report.phases
    assert report.phases["research"].checks[0].passed and report.phases["research"].num_turns == 2


@pytest.mark.anyio
async def test_cancel_during_bash_ends_the_tool_in_its_own_session(leak_guard: LeakGuard, api_factory: Any) -> None:
    """The real CLI starts Bash in a session of its own: killing the CLI's group alone would miss it."""
    _, options = api_factory([{"tool_use": {"name": "Bash", "input": {"command": "sleep 60"}}}])
    spawned: list[SpawnedCLI] = []
    tool: dict[int, int] = {}  # pid -> session id, of every process running "sleep 60"
    async with open_query("sleep", options, cli_path=REAL_CLI, limits=QueryLimits(timeout_s=60),
                          on_spawn=spawned.append) as stream:
        deadline = time.monotonic() + 30
        while not tool and time.monotonic() < deadline:
            await anyio.sleep(0.05)
            for proc in psutil.process_iter(["cmdline"]):
                if "sleep 60" in " ".join(proc.info["cmdline"] or []):
                    with contextlib.suppress(OSError):
                        tool[proc.pid] = os.getsid(proc.pid)
    assert tool, "the Bash tool's sleep never started"
    cli_session = spawned[0].pid  # the wrapper starts the CLI as a session leader
    assert all(sid != cli_session for sid in tool.values())  # the tool left the CLI's session
    assert stream.outcome.failure is not None and stream.outcome.failure.kind is FailureKind.CANCELLED
    assert set(tool) <= set(stream.outcome.cleanup.pids_ended)
    assert not any(process_alive(pid) for pid in tool)


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "kind", "retryable"), [
    (429, FailureKind.RATE_LIMITED, True), (529, FailureKind.API_ERROR, True), (401, FailureKind.AUTH, False),
])
async def test_api_errors(status: int, kind: FailureKind, retryable: bool, leak_guard: LeakGuard,
                          api_factory: Any) -> None:
    _, options = api_factory([{"error": status}])
    outcome = await run_query("hi", options, cli_path=REAL_CLI, limits=QueryLimits(timeout_s=60))
    assert outcome.failure is not None
    assert (outcome.failure.kind, outcome.failure.retryable) == (kind, retryable)
    assert outcome.result_raw is not None and outcome.result_raw["api_error_status"] == status


@pytest.mark.anyio
async def test_api_down_fails_within_seconds(leak_guard: LeakGuard, api_factory: Any) -> None:
    api, options = api_factory([])
    api.close()  # nothing listens on that port any more
    outcome = await run_query("hi", options, cli_path=REAL_CLI, limits=QueryLimits(timeout_s=60))
    assert outcome.failure is not None and not outcome.ok
    assert outcome.duration_s < 15  # CLAUDE_CODE_MAX_RETRIES=0: seconds, not minutes of retries


@pytest.mark.anyio
async def test_stalled_stream_is_stalled(leak_guard: LeakGuard, api_factory: Any) -> None:
    _, options = api_factory([{"stall": "partial answer"}])
    outcome = await run_query("hi", options, cli_path=REAL_CLI, limits=QueryLimits(timeout_s=60, idle_timeout_s=2))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.STALLED
    assert outcome.cleanup.clean




#: a turn the CLI prices at about 0.60 USD (200,000 input tokens of claude-sonnet-4-5), then a tool it must not run
OVER_BUDGET = [
    {"tool_use": {"name": "Bash", "input": {"command": "touch ran-after-the-cap"}},
     "usage": {"input_tokens": 200_000, "output_tokens": 12}},
    {"text": "should never be asked"},
]


@pytest.mark.anyio
async def test_the_real_cli_stops_itself_at_the_budget(leak_guard: LeakGuard, api_factory: Any) -> None:
    """QueryLimits.max_cost_usd reaches the real CLI as --max-budget-usd (claude-code-sdk: extra_args): a turn
    whose usage crosses it ends the query with error_max_budget_usd, classified budget_exceeded; the tool the
    turn asked for is not run and no further turn is asked."""
    api, options = api_factory(OVER_BUDGET)
    outcome = await run_query("go", options, cli_path=REAL_CLI, limits=QueryLimits(timeout_s=60, max_cost_usd=0.5))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.BUDGET_EXCEEDED, outcome.failure
    assert outcome.result_raw is not None and outcome.result_raw["subtype"] == "error_max_budget_usd"
    assert outcome.failure.message == "Reached maximum budget ($0.5)"
    assert outcome.cost_usd is not None and outcome.cost_usd > 0.5  # what the crossing turn cost: it is reported
    assert len(api.agent_requests()) == 1 and not (Path(options.cwd) / "ran-after-the-cap").exists()
    assert outcome.cleanup.clean
