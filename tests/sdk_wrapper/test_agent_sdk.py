"""claude-agent-sdk support: ``ClaudeAgentOptions`` in, that SDK's own messages out, the same scope around it.

The failure matrix itself runs through both SDKs (tests/sdk_wrapper/test_matrix.py); these are the parts
that differ: the agent SDK's classes, its always-streaming input, its option rules, its CLI search, its
environment.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import claude_agent_sdk as agent
import pytest
from claude_agent_sdk import ClaudeAgentOptions
from claude_code_sdk import ClaudeCodeOptions

from sdk_wrapper import FailureKind, open_query, run_query
from sdk_wrapper._backends import agent_backend
from sdk_wrapper._options import resolve_cli
from sdk_wrapper.testing import scenario_env
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import sdk_options

pytestmark = pytest.mark.anyio


def _options(scenario: str | dict[str, Any], cwd: Path, **extra: Any) -> ClaudeAgentOptions:
    options: ClaudeAgentOptions = sdk_options("agent-sdk", scenario, cwd, **extra)
    return options


async def test_every_message_and_block_is_the_agent_sdks_own(leak_guard: LeakGuard, standin_cli: Path,
                                                             tmp_path: Path) -> None:
    seen: list[Any] = []
    async with open_query("work", _options("tools", tmp_path), cli_path=standin_cli) as stream:
        async for message in stream:
            seen.append(message)
    outcome = stream.outcome
    assert outcome.ok, outcome.failure
    assert isinstance(seen[0], agent.SystemMessage) and seen[0].subtype == "init"
    blocks = [block for m in seen if isinstance(m, agent.AssistantMessage) for block in m.content]
    assert {type(b) for b in blocks} == {agent.ThinkingBlock, agent.ToolUseBlock, agent.TextBlock}
    results = [b for m in seen if isinstance(m, agent.UserMessage) and isinstance(m.content, list)
               for b in m.content if isinstance(b, agent.ToolResultBlock)]
    assert len(results) == 2
    assert isinstance(seen[-1], agent.ResultMessage) and outcome.result is seen[-1]
    assert outcome.num_turns == 3 and outcome.session_id == seen[0].data["session_id"]
    assert (tmp_path / "standin-output.md").read_text() == "# Output\n"  # the Write really wrote


async def test_streaming_prompt(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    async def prompts() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "user", "message": {"role": "user", "content": "hi"}, "parent_tool_use_id": None,
               "session_id": "s"}

    outcome = await run_query(prompts(), _options("ok", tmp_path), cli_path=standin_cli)
    assert outcome.ok and isinstance(outcome.result, agent.ResultMessage)
    assert outcome.result.result == "Hello from the stand-in"


async def test_the_agent_sdks_own_rules_raise_before_any_process(leak_guard: LeakGuard, standin_cli: Path,
                                                                 tmp_path: Path) -> None:
    async def allow(*_: Any) -> Any:
        return agent.PermissionResultAllow()

    options = _options("ok", tmp_path, can_use_tool=allow, permission_prompt_tool_name="mcp__x__y")
    with pytest.raises(ValueError, match="permission_prompt_tool_name"):
        open_query("hi", options, cli_path=standin_cli)
    with pytest.raises(ValueError, match="permission_prompt_tool_name"):
        await run_query("hi", options, cli_path=standin_cli)
    assert leak_guard.recorded_pids() == []  # no CLI was started


async def test_options_of_another_kind_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="ClaudeAgentOptions"):
        await run_query("hi", object())  # type: ignore[call-overload]


def test_the_cli_is_found_as_the_agent_sdk_finds_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No explicit path: the agent SDK's search, which takes the CLI bundled in its wheel first."""
    monkeypatch.delenv("CLAUDE_SCOPE_CLI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    found = Path(resolve_cli(None, ClaudeAgentOptions(), agent_backend()))
    assert found.parent.name == "_bundled" and found.parent.parent == Path(agent.__file__).parent


def test_options_become_the_agent_sdks_own_flags() -> None:
    argv = agent_backend().build_argv("hi", ClaudeAgentOptions(max_turns=4, allowed_tools=["Read"]), "/bin/claude")
    assert argv[0] == "/bin/claude"
    assert argv[argv.index("--max-turns") + 1] == "4"
    assert argv[argv.index("--input-format") + 1] == "stream-json"  # the agent SDK streams every prompt
    assert "--print" not in argv


async def test_the_cli_gets_the_agent_sdks_environment(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDECODE", "1")  # as inside a Claude Code session: the CLI must not inherit it
    monkeypatch.setenv("CLAUDE_CODE_SDK_READS_SESSION_STATE", "0")  # the caller's own choice is kept
    dump = 'python3 -c "import json,os; print(json.dumps(dict(os.environ)))" > env.json'
    scenario = {"steps": [{"tool": {"name": "Bash", "input": {"command": dump}}}]}
    options = ClaudeAgentOptions(cwd=str(tmp_path), env={**scenario_env(scenario), "MINE": "x"})
    outcome = await run_query("hi", options, cli_path=standin_cli)
    assert outcome.ok, outcome.failure
    env = json.loads((tmp_path / "env.json").read_text())
    assert "CLAUDECODE" not in env
    assert env["CLAUDE_AGENT_SDK_VERSION"] == agent.__version__ and env["MINE"] == "x"
    assert env["CLAUDE_CODE_ENTRYPOINT"] == "sdk-py" and env["CLAUDE_SCOPE_QUERY_ID"]
    assert env["CLAUDE_CODE_SDK_READS_SESSION_STATE"] == "0"


async def test_exit_after_error_result_keeps_the_result(leak_guard: LeakGuard, standin_cli: Path,
                                                        tmp_path: Path) -> None:
    """The real CLI exits 1 after an error result; the agent SDK would raise ResultError. We keep the result."""
    scenario = {"preset": "execution_error", "exit_code": 1}
    outcome = await run_query("hi", _options(scenario, tmp_path), cli_path=standin_cli)
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.EXECUTION_ERROR
    assert isinstance(outcome.result, agent.ResultMessage) and outcome.result.is_error


@pytest.mark.parametrize("sdk", ["code-sdk", "agent-sdk"])
async def test_stderr_lines_reach_the_options_sink_redacted(sdk: str, leak_guard: LeakGuard, standin_cli: Path,
                                                            tmp_path: Path) -> None:
    """agent SDK: ``stderr=callback``; code SDK: ``debug_stderr`` with ``extra_args`` debug-to-stderr."""
    secret = "sk-ant-api03-" + "k" * 40
    scenario = {"steps": [{"text": "hi"}], "stderr": f"first line\nkey {secret}\nlast line"}
    lines: list[str] = []
    if sdk == "agent-sdk":
        options: Any = ClaudeAgentOptions(cwd=str(tmp_path), env=scenario_env(scenario), stderr=lines.append)
    else:
        sink = io.StringIO()
        options = ClaudeCodeOptions(cwd=str(tmp_path), env=scenario_env(scenario), debug_stderr=sink,
                                    extra_args={"debug-to-stderr": None})
    outcome = await run_query("hi", options, cli_path=standin_cli)
    if sdk == "code-sdk":
        lines = sink.getvalue().splitlines()
    assert outcome.ok, outcome.failure
    assert lines == ["first line", "key [REDACTED]", "last line"]


async def test_a_raising_stderr_callback_is_not_fatal(leak_guard: LeakGuard, standin_cli: Path,
                                                      tmp_path: Path) -> None:
    def boom(_: str) -> None:
        raise RuntimeError("callback bug")

    scenario = {"steps": [{"text": "hi"}], "stderr": "one\ntwo"}
    options = ClaudeAgentOptions(cwd=str(tmp_path), env=scenario_env(scenario), stderr=boom)
    outcome = await run_query("hi", options, cli_path=standin_cli)
    assert outcome.ok, outcome.failure


async def test_session_store_resume_is_refused_not_silently_dropped(leak_guard: LeakGuard, standin_cli: Path,
                                                                   tmp_path: Path) -> None:
    from claude_agent_sdk import InMemorySessionStore

    options = _options("ok", tmp_path, session_store=InMemorySessionStore(),
                       resume="00000000-0000-4000-8000-000000000000")
    with pytest.raises(ValueError, match="session_store"):
        await run_query("hi", options, cli_path=standin_cli)
    assert leak_guard.recorded_pids() == []
