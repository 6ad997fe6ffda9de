"""Failure kinds end to end (stand-in result fields and real exceptions), retries, budgets, bad input."""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import anyio
import pytest
from claude_code_sdk import ClaudeCodeOptions

from sdk_wrapper import (
    FailureKind,
    QueryLimits,
    ResourceTracker,
    RetryPolicy,
    open_query,
    run_query,
)
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import SDKS, options_for, sdk_options

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize(("preset", "kind", "retryable"), [
    ("not_logged_in", FailureKind.API_ERROR, False),
    ("auth_error", FailureKind.AUTH, False),
    ("rate_limited", FailureKind.RATE_LIMITED, True),
    ("overloaded", FailureKind.API_ERROR, True),
    ("execution_error", FailureKind.EXECUTION_ERROR, False),
    ("max_turns", FailureKind.MAX_TURNS, False),
])
async def test_error_results_are_never_ok(sdk: str, preset: str, kind: FailureKind, retryable: bool,
                                          leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    outcome = await run_query("hi", sdk_options(sdk, preset, tmp_path), cli_path=standin_cli)
    assert not outcome.ok and outcome.result is not None  # the CLI's own result is kept
    assert outcome.failure is not None
    assert (outcome.failure.kind, outcome.failure.retryable) == (kind, retryable)


@pytest.mark.parametrize("sdk", SDKS)
async def test_is_error_with_success_subtype_is_a_failure(sdk: str, leak_guard: LeakGuard, standin_cli: Path,
                                                          tmp_path: Path) -> None:
    scenario = {"result": {"is_error": True, "result": "something went wrong"}}
    outcome = await run_query("hi", sdk_options(sdk, scenario, tmp_path), cli_path=standin_cli)
    assert outcome.result is not None and outcome.result.subtype == "success"
    assert not outcome.ok and outcome.failure is not None
    assert outcome.failure.kind is FailureKind.EXECUTION_ERROR


@pytest.mark.parametrize("sdk", SDKS)
async def test_no_result_and_exit_zero_is_not_success(sdk: str, leak_guard: LeakGuard, standin_cli: Path,
                                                      tmp_path: Path) -> None:
    outcome = await run_query("hi", sdk_options(sdk, {"result": None}, tmp_path), cli_path=standin_cli)
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.PROCESS_EXIT
    assert outcome.result is None and outcome.cost_usd is None  # unknown, not 0.0


@pytest.mark.parametrize("sdk", SDKS)
async def test_missing_cli_is_cli_not_found(sdk: str, leak_guard: LeakGuard, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = await run_query("hi", sdk_options(sdk, "ok", tmp_path), cli_path=tmp_path / "no-such-claude")
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.CLI_NOT_FOUND
    if sdk == "agent-sdk":
        return  # its search finds the CLI bundled in its wheel first; that case is test_agent_sdk's
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing called claude on PATH, nor in the SDK's locations
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CLAUDE_SCOPE_CLI", raising=False)
    outcome = await run_query("hi", sdk_options(sdk, "ok", tmp_path))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.CLI_NOT_FOUND


async def test_cli_from_environment_variable(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_SCOPE_CLI", str(standin_cli))
    assert (await run_query("hi", options_for("ok", tmp_path))).ok


@pytest.mark.parametrize("sdk", SDKS)
async def test_missing_cwd_is_a_typed_failure(sdk: str, leak_guard: LeakGuard, standin_cli: Path,
                                              tmp_path: Path) -> None:
    outcome = await run_query("hi", sdk_options(sdk, "ok", tmp_path / "nope"), cli_path=standin_cli)
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.PROCESS_EXIT
    assert type(outcome.failure.cause).__name__ == "CLIConnectionError"


async def test_wrong_argument_types_raise_at_once() -> None:
    with pytest.raises(TypeError, match="prompt"):
        await run_query(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="options"):
        await run_query("hi", {"cwd": "."})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="limits"):
        open_query("hi", limits={"timeout_s": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="retry"):
        await run_query("hi", retry=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout_s"):
        QueryLimits(timeout_s=0)
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


@pytest.mark.parametrize("sdk", SDKS)
async def test_budget_exceeded_keeps_the_result(sdk: str, leak_guard: LeakGuard, standin_cli: Path,
                                                tmp_path: Path) -> None:
    outcome = await run_query("hi", sdk_options(sdk, {"result": {"total_cost_usd": 2.5}}, tmp_path),
                              cli_path=standin_cli, limits=QueryLimits(max_cost_usd=1.0))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.BUDGET_EXCEEDED
    assert outcome.cost_usd == 2.5 and outcome.result is not None


@pytest.mark.parametrize("sdk", SDKS)
async def test_the_cli_is_told_the_budget_and_stops_itself(sdk: str, leak_guard: LeakGuard, standin_cli: Path,
                                                           tmp_path: Path) -> None:
    """max_cost_usd reaches the CLI as --max-budget-usd (claude-code-sdk: extra_args; the agent SDK: its
    max_budget_usd option), so it stops itself mid-query with its error_max_budget_usd result: budget_exceeded,
    in the CLI's words, with what it spent. A lower cap the caller set on the options stays."""
    options = sdk_options(sdk, {"result": {"total_cost_usd": 0.75}}, tmp_path)
    outcome = await run_query("hi", options, cli_path=standin_cli, limits=QueryLimits(max_cost_usd=0.5))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.BUDGET_EXCEEDED
    assert outcome.failure.message == "Reached maximum budget ($0.5)" and not outcome.failure.retryable
    assert outcome.result_raw is not None and outcome.result_raw["subtype"] == "error_max_budget_usd"
    assert outcome.cost_usd == 0.75
    lower = (dataclasses.replace(options, extra_args={"max-budget-usd": "0.25"}) if sdk == "code-sdk"
             else dataclasses.replace(options, max_budget_usd=0.25))
    outcome = await run_query("hi", lower, cli_path=standin_cli, limits=QueryLimits(max_cost_usd=0.5))
    assert outcome.failure is not None and outcome.failure.message == "Reached maximum budget ($0.25)"


async def test_retry_rate_limit_until_attempts_run_out(leak_guard: LeakGuard, standin_cli: Path,
                                                       tmp_path: Path) -> None:
    outcome = await run_query("hi", options_for("rate_limited", tmp_path), cli_path=standin_cli,
                              retry=RetryPolicy(attempts=3, wait=False))
    assert [a.failure_kind for a in outcome.attempts] == [FailureKind.RATE_LIMITED] * 3
    clis = [pid for pid, role in leak_guard.recorded_pids() if role == "cli"]
    assert len(clis) == 3  # three real CLI processes, each ended


async def test_retry_stops_at_first_success(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    # The first attempt is rate limited; the scenario file is then swapped for a good one.
    scenario_file = tmp_path / "scenario.json"
    scenario_file.write_text('{"preset": "rate_limited"}')
    options = ClaudeCodeOptions(cwd=str(tmp_path), env={"CLAUDE_STANDIN_SCENARIO": str(scenario_file)})
    calls = 0

    async def once_then_fix() -> None:
        nonlocal calls
        while calls == 0:
            await anyio.sleep(0.01)
            if leak_guard.recorded_pids():
                scenario_file.write_text('{"preset": "ok"}')
                calls = 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(once_then_fix)
        outcome = await run_query("hi", options, cli_path=standin_cli, retry=RetryPolicy(attempts=5, wait=False))
    assert outcome.ok
    assert 2 <= len(outcome.attempts) <= 5 and outcome.attempts[-1].ok


async def test_no_retry_after_side_effects(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    scenario = {"steps": [{"tool": {"name": "Write", "input": {"file_path": "a.txt", "content": "x"}}}],
                "result": {"is_error": True, "api_error_status": 529, "terminal_reason": "api_error"}}
    outcome = await run_query("hi", options_for(scenario, tmp_path), cli_path=standin_cli,
                              retry=RetryPolicy(attempts=3, wait=False))
    assert outcome.failure is not None and outcome.failure.side_effects and outcome.failure.retryable
    assert len(outcome.attempts) == 1
    opted_in = await run_query("hi", options_for(scenario, tmp_path), cli_path=standin_cli,
                               retry=RetryPolicy(attempts=2, wait=False, after_side_effects=True))
    assert len(opted_in.attempts) == 2


async def test_stderr_tail_is_bounded_and_redacted(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    secret = "sk-ant-api03-" + "A" * 40
    scenario = {"steps": [{"stderr": "x" * 50_000}, {"stderr": f"auth failed for key {secret}"}],
                "result": None, "exit_code": 3}
    outcome = await run_query("hi", options_for(scenario, tmp_path), cli_path=standin_cli,
                              limits=QueryLimits(stderr_tail_bytes=1000))
    failure = outcome.failure
    assert failure is not None and failure.exit_code == 3
    assert len(failure.stderr_tail) <= 1000
    assert secret not in failure.stderr_tail and "[REDACTED]" in failure.stderr_tail
    assert secret not in repr(failure.to_dict())


async def test_resource_tracker_sees_everything_closed(leak_guard: LeakGuard, standin_cli: Path,
                                                       tmp_path: Path) -> None:
    tracker = ResourceTracker()
    for preset in ("ok", "hang"):
        await run_query("hi", options_for(preset, tmp_path), cli_path=standin_cli, tracker=tracker,
                        limits=QueryLimits(timeout_s=0.5))
    assert tracker.opened == 2
    assert tracker.verify() == []


@pytest.mark.parametrize("sdk", SDKS)
async def test_two_hundred_random_cancellations(sdk: str, leak_guard: LeakGuard, standin_cli: Path,
                                                tmp_path: Path) -> None:
    """200 queries cancelled at random points (before spawn, mid-stream, during cleanup): all clean."""
    rng = random.Random(1234)
    fds_before = len(os.listdir("/proc/self/fd"))
    outcomes = []
    for _ in range(200):
        scenario = rng.choice(["slow", "hang", "hang_ignore_term", "ok"])
        with anyio.move_on_after(rng.uniform(0.0, 0.15)):
            async with open_query("hi", sdk_options(sdk, scenario, tmp_path), cli_path=standin_cli,
                                  limits=QueryLimits(terminate_grace_s=0.05, kill_grace_s=1)) as stream:
                async for _ in stream:
                    pass
        outcomes.append(stream.outcome)
    assert all(o.cleanup.clean for o in outcomes)
    assert all(o.ok or o.failure is not None for o in outcomes)
    assert len(os.listdir("/proc/self/fd")) <= fds_before
    # Most cancellations hit a running CLI that cleanup had to end (not only ones cancelled before spawn).
    # Counted from the cleanup reports: the stand-in records its pid only once its interpreter is up.
    assert sum(1 for o in outcomes if o.cleanup.pids_ended) > 100


async def test_relative_cli_path_works_from_another_cwd(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative path is checked against our cwd; the CLI starts in options.cwd, so it must go absolute."""
    monkeypatch.chdir(standin_cli.parent.parent)
    work = tmp_path / "work"
    work.mkdir()
    relative = Path(standin_cli.parent.name) / standin_cli.name
    assert (await run_query("hi", options_for("ok", work), cli_path=relative)).ok


async def test_the_query_id_is_known_while_messages_flow(leak_guard: LeakGuard, standin_cli: Path,
                                                          tmp_path: Path) -> None:
    """Before the outcome exists, the stream's query_id already names the CLI's tree (its marker)."""
    from sdk_wrapper._containment._procfs import has_marker

    async with open_query("hi", options_for("slow", tmp_path), cli_path=standin_cli) as stream:
        async for _ in stream:
            pids = [pid for pid, role in leak_guard.recorded_pids() if role == "cli"]
            assert pids and has_marker(pids[-1], stream.query_id)
            break
    assert stream.outcome.query_id == stream.query_id
