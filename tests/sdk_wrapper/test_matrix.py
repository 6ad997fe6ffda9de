"""Acceptance: every row of the failure matrix (docs/failures.md), through run_query and open_query.

Each test runs the real claude-code-sdk, and again the real claude-agent-sdk (``ClaudeAgentOptions``),
against the stand-in CLI under ``leak_guard``: no process of the tree survives, descriptors return to
baseline, asyncio logs no error.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import anyio
import claude_agent_sdk
import claude_code_sdk
import pytest
import trio

from sdk_wrapper import FailureKind, QueryLimits, open_query, run_query
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import SDKS, drive, sdk_options

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("sdk", SDKS)]
MODES = ["run", "open"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_normal_run(sdk: str, mode: str, leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    outcome = await drive(mode, "hi", sdk_options(sdk, {"preset": "ok", "session_id": "sess-a"}, tmp_path), standin_cli)
    assert outcome.ok, outcome.failure
    assert outcome.result is not None and outcome.result.result == "Hello from the stand-in"
    assert outcome.session_id == "sess-a"
    assert outcome.cost_usd == pytest.approx(0.0123)
    assert outcome.num_turns == 1 and outcome.message_count == 3
    assert outcome.cleanup.clean and outcome.cleanup.exit_code == 0
    # The result is the options' own SDK's class, as that SDK's query() would have yielded it.
    package = {"code-sdk": claude_code_sdk, "agent-sdk": claude_agent_sdk}[sdk]
    assert isinstance(outcome.result, package.ResultMessage)


@pytest.mark.parametrize("hanging", [False, True], ids=["b1-slow", "b4-hanging"])
async def test_b_break_after_two_messages(sdk: str, hanging: bool, leak_guard: LeakGuard, standin_cli: Path,
                                          tmp_path: Path) -> None:
    scenario = {"preset": "hang_ignore_term" if hanging else "slow"}
    started = time.monotonic()
    seen = 0
    async with open_query("hi", sdk_options(sdk, scenario, tmp_path), cli_path=standin_cli,
                          limits=QueryLimits(terminate_grace_s=0.5)) as stream:
        async for _ in stream:
            seen += 1
            if seen == 2:
                break
    outcome = stream.outcome
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.CANCELLED
    assert outcome.cleanup.clean
    assert outcome.cleanup.sigkill_needed is hanging
    # The caller's task is not cancelled afterwards (row b1: "cancelled at every await").
    await anyio.sleep(0.01)
    await anyio.sleep(0.01)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["c1-native-timeout", "c2-fail_after", "c3-hanging"])
async def test_c_caller_timeout(sdk: str, mode: str, how: str, leak_guard: LeakGuard, standin_cli: Path,
                                tmp_path: Path, anyio_backend: str) -> None:
    scenario = "hang" if how == "c3-hanging" else "slow"
    started = time.monotonic()
    with pytest.raises((TimeoutError, trio.TooSlowError)):
        if how == "c1-native-timeout" and anyio_backend == "asyncio":  # the event loop's own timeout
            async with asyncio.timeout(0.5):
                await drive(mode, "hi", sdk_options(sdk, scenario, tmp_path), standin_cli)
        elif how == "c1-native-timeout":
            with trio.fail_after(0.5):  # trio's TooSlowError is not a TimeoutError
                await drive(mode, "hi", sdk_options(sdk, scenario, tmp_path), standin_cli)
        else:
            with anyio.fail_after(0.5):
                await drive(mode, "hi", sdk_options(sdk, scenario, tmp_path), standin_cli)
    elapsed = time.monotonic() - started
    assert elapsed < 3, f"cancellation took {elapsed:.2f}s"  # generous: catches a hang, not a speed claim


async def test_c4_second_cancel_does_not_break_cleanup(sdk: str, leak_guard: LeakGuard, standin_cli: Path,
                                                       tmp_path: Path) -> None:
    outcomes = []

    async def victim() -> None:
        async with open_query("hi", sdk_options(sdk, "hang_ignore_term", tmp_path), cli_path=standin_cli,
                              limits=QueryLimits(terminate_grace_s=1.5)) as stream:
            outcomes.append(stream)
            async for _ in stream:
                pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(victim)
        await anyio.sleep(0.5)
        tg.cancel_scope.cancel()
        await anyio.sleep(0.5)
        tg.cancel_scope.cancel()  # the second cancel lands while cleanup waits out SIGTERM's grace
    stream = outcomes[0]
    assert stream.outcome.failure is not None and stream.outcome.failure.kind is FailureKind.CANCELLED
    assert stream.outcome.cleanup.sigkill_needed and stream.outcome.cleanup.clean


async def test_d1_iterate_in_another_task(sdk: str, leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    got: list[object] = []
    async with open_query("hi", sdk_options(sdk, "hang", tmp_path), cli_path=standin_cli) as stream:

        async def reader() -> None:
            async for message in stream:
                got.append(message)

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.sleep(0.5)
            tg.cancel_scope.cancel()
    assert got, "the reader task saw the first messages"
    assert stream.outcome.cleanup.clean


def test_d3_never_awaited_task_at_asyncio_run_shutdown(sdk: str, leak_guard: LeakGuard, standin_cli: Path,
                                                       tmp_path: Path) -> None:
    async def main() -> None:
        asyncio.get_running_loop().create_task(
            run_query("hi", sdk_options(sdk, "hang", tmp_path), cli_path=standin_cli))
        await asyncio.sleep(0.5)  # the CLI is running; main returns without awaiting the task

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ignore_term", [False, True], ids=["e1-hang", "e2-ignores-sigterm"])
async def test_e_timeout_limit(sdk: str, mode: str, ignore_term: bool, leak_guard: LeakGuard, standin_cli: Path,
                               tmp_path: Path) -> None:
    scenario = "hang_ignore_term" if ignore_term else "hang"
    limits = QueryLimits(timeout_s=1.0, terminate_grace_s=0.5)
    outcome = await drive(mode, "hi", sdk_options(sdk, scenario, tmp_path), standin_cli, limits)
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.TIMEOUT
    assert outcome.cleanup.sigkill_needed is ignore_term
    assert outcome.cleanup.clean
    assert outcome.duration_s < 1.0 + 0.5 + 2.0


@pytest.mark.parametrize("mode", MODES)
async def test_f1_exit_mid_stream(sdk: str, mode: str, leak_guard: LeakGuard, standin_cli: Path,
                                  tmp_path: Path) -> None:
    outcome = await drive(mode, "hi", sdk_options(sdk, "exit_error", tmp_path), standin_cli)
    failure = outcome.failure
    assert failure is not None and failure.kind is FailureKind.PROCESS_EXIT
    assert failure.exit_code == 1
    assert "the stand-in failed on purpose" in failure.stderr_tail  # the real stderr, not a placeholder
    assert type(failure.cause).__name__ == "ProcessError"


@pytest.mark.parametrize("mode", MODES)
async def test_f2_max_turns_keeps_the_real_result(sdk: str, mode: str, leak_guard: LeakGuard, standin_cli: Path,
                                                  tmp_path: Path) -> None:
    outcome = await drive(mode, "hi", sdk_options(sdk, "max_turns", tmp_path), standin_cli)
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.MAX_TURNS
    assert outcome.result is not None and outcome.result.subtype == "error_max_turns"
    assert not outcome.ok and outcome.num_turns == 3


@pytest.mark.parametrize("mode", MODES)
async def test_f3_malformed_json(sdk: str, mode: str, leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    outcome = await drive(mode, "hi", sdk_options(sdk, "malformed_json", tmp_path), standin_cli)
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.INVALID_OUTPUT
    assert "trunc" in outcome.failure.message  # the excerpt of the bad line


@pytest.mark.parametrize("mode", MODES)
async def test_f4_non_json_line_is_skipped(sdk: str, mode: str, leak_guard: LeakGuard, standin_cli: Path,
                                           tmp_path: Path) -> None:
    outcome = await drive(mode, "hi", sdk_options(sdk, "non_json", tmp_path), standin_cli)
    assert outcome.ok and outcome.message_count == 4  # init, before, after, result


@pytest.mark.parametrize("mode", MODES)
async def test_f5_spaces_intact(sdk: str, mode: str, leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    texts: list[str] = []
    async with open_query("hi", sdk_options(sdk, "spaces", tmp_path), cli_path=standin_cli) as stream:
        async for message in stream:
            if isinstance(message, claude_code_sdk.AssistantMessage | claude_agent_sdk.AssistantMessage):
                texts += [b.text for b in message.content
                          if isinstance(b, claude_code_sdk.TextBlock | claude_agent_sdk.TextBlock)]
    assert stream.outcome.ok
    assert texts == ["start" + " " * 200_000 + "end"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("limit", [8 * 1024 * 1024, 1024 * 1024], ids=["default-8MiB", "1MiB"])
async def test_f6_long_line(sdk: str, mode: str, limit: int, leak_guard: LeakGuard, standin_cli: Path,
                            tmp_path: Path) -> None:
    outcome = await drive(mode, "hi", sdk_options(sdk, "long_line", tmp_path), standin_cli,
                          QueryLimits(max_line_bytes=limit))
    if limit > 1_500_100:
        assert outcome.ok
    else:
        assert outcome.failure is not None and outcome.failure.kind is FailureKind.INVALID_OUTPUT
        assert type(outcome.failure.cause).__name__ == "LineTooLongError"


async def test_f7_never_answers_initialize(sdk: str, leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    async def prompts():  # type: ignore[no-untyped-def]
        yield {"type": "user", "message": {"role": "user", "content": "hi"}, "parent_tool_use_id": None,
               "session_id": "s"}

    outcome = await run_query(prompts(), sdk_options(sdk, "no_initialize", tmp_path), cli_path=standin_cli,
                              limits=QueryLimits(idle_timeout_s=1.0))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.STALLED
    assert outcome.duration_s < 5  # not the SDK's 60 s control-request timeout


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("preset", ["grandchild_stdout", "grandchild_devnull"], ids=["g1-holds-stdout", "g2-devnull"])
async def test_g_grandchild_after_result(sdk: str, mode: str, preset: str, leak_guard: LeakGuard, standin_cli: Path,
                                         tmp_path: Path) -> None:
    outcome = await drive(mode, "hi", sdk_options(sdk, preset, tmp_path), standin_cli, QueryLimits(timeout_s=20))
    assert outcome.ok, outcome.failure
    grandchildren = [pid for pid, role in leak_guard.recorded_pids() if role == "grandchild"]
    assert len(grandchildren) == 1 and grandchildren[0] in outcome.cleanup.pids_ended


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("preset", ["grandchild_devnull", "grandchild_setsid"], ids=["g3-devnull", "own-session"])
async def test_g_grandchild_on_timeout(sdk: str, mode: str, preset: str, leak_guard: LeakGuard, standin_cli: Path,
                                       tmp_path: Path) -> None:
    scenario = {"preset": preset, "steps": [{"spawn": {"new_session": preset.endswith("setsid")}}, {"hang": True}],
                "result": None}
    outcome = await drive(mode, "hi", sdk_options(sdk, scenario, tmp_path), standin_cli, QueryLimits(timeout_s=1.0))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.TIMEOUT
    grandchildren = [pid for pid, role in leak_guard.recorded_pids() if role == "grandchild"]
    assert len(grandchildren) == 1 and grandchildren[0] in outcome.cleanup.pids_ended


async def test_children_forked_during_teardown_are_ended(sdk: str, leak_guard: LeakGuard, standin_cli: Path,
                                                         tmp_path: Path) -> None:
    """The fork race: a CLI spawning session-leaving children in a tight loop, cancelled mid-spawn. A child
    forked after the tree snapshot escapes both snapshot and group signal; found by marker and ended."""
    spawner = {"steps": [{"spawn": {"new_session": True}}] * 60 + [{"hang": True}], "result": None}
    rng = random.Random(99)
    for _ in range(20):
        with anyio.move_on_after(rng.uniform(0.06, 0.2)):
            async with open_query("spawn", sdk_options(sdk, spawner, tmp_path), cli_path=standin_cli,
                                  limits=QueryLimits(terminate_grace_s=0.2)) as stream:
                async for _ in stream:
                    pass
        assert stream.outcome.cleanup.clean, stream.outcome.cleanup
    grandchildren = [pid for pid, role in leak_guard.recorded_pids() if role == "grandchild"]
    assert len(grandchildren) > 20  # the cancels really landed while children were being spawned
