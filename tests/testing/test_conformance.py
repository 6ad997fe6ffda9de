"""The real claude_code_sdk.query(), found by PATH as it finds the real CLI, runs against the stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from claude_code_sdk import (
    AssistantMessage,
    ClaudeCodeOptions,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    query,
)

from sdk_wrapper.testing import scenario_env
from sdk_wrapper.testing.pytest_plugin import LeakGuard

pytestmark = pytest.mark.anyio


async def _collect(prompt: Any, options: ClaudeCodeOptions, guard: LeakGuard | None = None) -> list[Any]:
    if guard is not None:
        guard.tolerate(ResourceWarning)  # the raw SDK never closes Query's memory streams (see test_raw_sdk)
    # Iterated to its natural end: the one raw-SDK pattern that cleans up after itself (matrix row a).
    return [message async for message in query(prompt=prompt, options=options)]


async def test_string_mode_yields_every_message_type(leak_guard: LeakGuard, standin_on_path: Path,
                                                    tmp_path: Path) -> None:
    options = ClaudeCodeOptions(cwd=str(tmp_path), env=scenario_env({"preset": "tools", "session_id": "sess-1"}),
                                permission_mode="bypassPermissions", max_turns=5, model="claude-x")
    messages = await _collect("write the file", options, leak_guard)
    kinds = [type(m) for m in messages]
    assert kinds[0] is SystemMessage and kinds[-1] is ResultMessage
    init = messages[0]
    assert init.subtype == "init" and init.data["session_id"] == "sess-1"
    assert init.data["claude_code_version"] and init.data["permissionMode"] == "bypassPermissions"
    assert init.data["model"] == "claude-standin-1"
    blocks = [b for m in messages if isinstance(m, AssistantMessage) for b in m.content]
    assert {type(b) for b in blocks} == {ThinkingBlock, ToolUseBlock, TextBlock}
    results = [b for m in messages if isinstance(m, UserMessage) for b in m.content]
    assert all(isinstance(b, ToolResultBlock) for b in results) and len(results) == 2
    assert results[1].content == "hi\n"  # the Bash tool really ran `echo hi`
    result = messages[-1]
    assert (result.subtype, result.is_error, result.session_id, result.num_turns) == ("success", False, "sess-1", 3)
    assert result.total_cost_usd == pytest.approx(0.0123)
    assert result.usage is not None and result.usage["output_tokens"] == 5
    assert result.duration_ms >= 0 and result.duration_api_ms >= 0
    assert (tmp_path / "standin-output.md").read_text() == "# Output\n"  # the Write tool really wrote


async def test_streaming_mode_answers_initialize(leak_guard: LeakGuard, standin_on_path: Path,
                                                 tmp_path: Path) -> None:
    async def prompts():  # type: ignore[no-untyped-def]
        yield {"type": "user", "message": {"role": "user", "content": "hi"}, "parent_tool_use_id": None,
               "session_id": "s"}

    messages = await _collect(prompts(), ClaudeCodeOptions(cwd=str(tmp_path), env=scenario_env("ok")), leak_guard)
    assert [type(m) for m in messages] == [SystemMessage, AssistantMessage, ResultMessage]


@pytest.mark.parametrize(("preset", "subtype", "is_error"), [
    ("max_turns", "error_max_turns", True),
    ("execution_error", "error_during_execution", True),
    ("not_logged_in", "success", True),
])
async def test_error_results(preset: str, subtype: str, is_error: bool, leak_guard: LeakGuard,
                             standin_on_path: Path, tmp_path: Path) -> None:
    leak_guard.tolerate(ResourceWarning)
    # These exit 1 after the result, so the raw SDK raises after yielding it; we collect what came first.
    seen: list[Any] = []
    with pytest.raises(Exception):  # noqa: B017 - the raw SDK raises a bare Exception here (row f1/f2)
        async for message in query(prompt="hi", options=ClaudeCodeOptions(cwd=str(tmp_path),
                                                                         env=scenario_env(preset))):
            seen.append(message)
    result = seen[-1]
    assert isinstance(result, ResultMessage)
    assert (result.subtype, result.is_error) == (subtype, is_error)
