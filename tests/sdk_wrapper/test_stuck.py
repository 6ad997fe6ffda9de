"""A stuck agent (``QueryLimits.max_repeats``): the same tool called with the same input N times in a row ends
the query as ``stuck``, with the repeated call as evidence and the tree ended; a different call in between
starts the count over. Both SDKs, against the stand-in's real tool calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Orchestrator, parse_pipeline
from sdk_wrapper import FailureKind, QueryLimits, RetryPolicy, UsageError
from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import SDKS, drive, sdk_options

pytestmark = pytest.mark.anyio


def calls(*commands: str) -> dict[str, Any]:
    """A scenario that runs these Bash commands, one tool call each, then hangs (a loop that never ends)."""
    return {"steps": [*({"tool": {"name": "Bash", "input": {"command": c}}} for c in commands),
                      {"text": "still going"}, {"hang": True}], "result": None}


@pytest.mark.parametrize("sdk", SDKS)
async def test_the_same_call_n_times_in_a_row_is_stuck(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path,
                                                       sdk: str) -> None:
    options = sdk_options(sdk, calls("ls", "ls", "ls", "ls", "ls"), tmp_path)
    outcome = await drive("stream", "loop", options, standin_cli, QueryLimits(max_repeats=3, timeout_s=30))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.STUCK
    assert "same tool call 3 times in a row (max_repeats=3): Bash" in outcome.failure.message
    assert '"command": "ls"' in outcome.failure.message
    assert not outcome.failure.retryable and not RetryPolicy().should_retry(outcome)
    assert RetryPolicy(kinds=frozenset({FailureKind.STUCK}), after_side_effects=True).should_retry(outcome)
    assert outcome.cleanup.leftover_pids == ()
    assert not [pid for pid, role in leak_guard.recorded_pids() if role == "cli" and process_alive(pid)]


@pytest.mark.parametrize("sdk", SDKS)
async def test_a_different_call_in_between_starts_over(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path,
                                                       sdk: str) -> None:
    options = sdk_options(sdk, calls("ls", "ls", "pwd", "ls", "ls", "pwd"), tmp_path)
    outcome = await drive("stream", "loop", options, standin_cli, QueryLimits(max_repeats=3, idle_timeout_s=1))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.STALLED  # never 3 in a row


def test_max_repeats_is_checked() -> None:
    with pytest.raises(UsageError, match="max_repeats"):
        QueryLimits(max_repeats=1)


async def test_a_phase_with_max_repeats_fails_as_stuck(leak_guard: LeakGuard, standin_cli: Path,
                                                       tmp_path: Path) -> None:
    data = {"phases": [{"name": "loops", "prompt": "x", "max_repeats": 4, "scenario": calls(*["make"] * 6)},
                       {"name": "after", "prompt": "x", "scenario": "ok"}]}
    with Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=standin_cli) as orch:
        report = await orch.run(parse_pipeline(data, project_dir=tmp_path, simulate=True))
    loops = report.phases["loops"]
    assert loops.kind is FailureKind.STUCK and "4 times in a row" in loops.message
    assert report.phases["after"].kind is None and report.phases["after"].status.value == "skipped"
