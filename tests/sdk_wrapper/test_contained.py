"""run_contained: any command, contained as a query's CLI is, with real processes. A check command that exits
0 while a child it started runs on in the background (in its session or a new one), one that times out,
one cancelled from outside: each time the whole tree is ended, verified gone, and the cleanup reported.
Each leftover is looked for by its pid after the call, and the leak guard counts processes and descriptors."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from sdk_wrapper import CommandOutcome, SpawnedCLI, run_contained
from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard

pytestmark = pytest.mark.anyio


def child_pid(outcome: CommandOutcome) -> int:
    """The pid the command printed on its last line (``echo $!``)."""
    return int(outcome.output.split()[-1])


@pytest.mark.parametrize("start", ["sleep 3600 &", "setsid sleep 3600 &", "nohup sleep 3600 >/dev/null 2>&1 &"],
                         ids=["background", "own-session", "nohup-no-stdout"])
async def test_a_command_that_exits_0_leaves_nothing(start: str, leak_guard: LeakGuard, tmp_path: Path) -> None:
    outcome = await run_contained(["sh", "-c", f"{start} echo $!"], cwd=tmp_path, timeout_s=30)
    child = child_pid(outcome)
    assert outcome.exit_code == 0 and not outcome.timed_out
    assert child in outcome.cleanup.pids_ended and outcome.cleanup.clean
    assert not process_alive(child), f"the check's child {child} outlived it"


async def test_a_timed_out_command_is_ended_with_its_tree(leak_guard: LeakGuard, tmp_path: Path) -> None:
    outcome = await run_contained(["sh", "-c", "setsid sleep 3600 & echo $!; exec sleep 3600"], cwd=tmp_path,
                                  timeout_s=0.5)
    assert outcome.timed_out and outcome.exit_code is not None and outcome.exit_code < 0  # ended by a signal
    assert outcome.cleanup.clean and not process_alive(child_pid(outcome))
    assert 0.5 <= outcome.duration_s < 10


async def test_a_command_cancelled_from_outside_is_ended_before_the_cancel_goes_on(
        leak_guard: LeakGuard, tmp_path: Path) -> None:
    spawned: list[SpawnedCLI] = []
    with anyio.move_on_after(1):
        await run_contained(["sh", "-c", "setsid sleep 3600 & exec sleep 3600"], cwd=tmp_path, timeout_s=60,
                            on_spawn=spawned.append)
    (root,) = spawned
    assert not process_alive(root.pid)
    assert not leak_guard.new_descendants()


async def test_stdin_output_and_a_failing_exit(leak_guard: LeakGuard, tmp_path: Path) -> None:
    outcome = await run_contained(["sh", "-c", "read name; echo hello $name; exit 3"], cwd=tmp_path, timeout_s=30,
                                  stdin=b"world\n")
    assert (outcome.exit_code, outcome.output.strip()) == (3, "hello world") and outcome.cleanup.clean


async def test_output_is_bounded_and_redacted(leak_guard: LeakGuard, tmp_path: Path) -> None:
    secret = "sk-ant-api03-" + "x" * 40
    outcome = await run_contained(["sh", "-c", f"yes line | head -n 100000; echo {secret}"], cwd=tmp_path,
                                  timeout_s=30, output_bytes=500)
    assert len(outcome.output) <= 500 and secret not in outcome.output and outcome.exit_code == 0


async def test_a_command_that_cannot_start_raises(leak_guard: LeakGuard, tmp_path: Path) -> None:
    with pytest.raises(OSError):
        await run_contained([str(tmp_path / "missing")], cwd=tmp_path, timeout_s=5)
