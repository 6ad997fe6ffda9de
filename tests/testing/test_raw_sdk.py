"""The "before" picture: what raw claude-code-sdk 0.0.25 does on each failure-matrix row, today.

Each row runs in a fresh interpreter (tests/testing/raw_probe.py) against the stand-in, and the test
asserts the raw SDK's real behaviour, then ends whatever it left behind. These are the defects the wrapper
exists to fix (tests/sdk_wrapper/test_matrix.py shows the same rows fixed). When a future SDK release
fixes a row, its test here fails and says so: update the row, and the claim in the README.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard

PROBE = Path(__file__).with_name("raw_probe.py")
CANCEL_SCOPE_ERROR = "Attempted to exit cancel scope in a different task than it was entered in"


def probe(row: str, guard: LeakGuard) -> tuple[dict[str, Any], str, dict[str, bool]]:
    """Run the row; return the probe's findings, its stderr, and which recorded roles were alive after."""
    # Files, not pipes: a CLI the raw SDK orphans inherits the probe's stderr and would hold a pipe open.
    out, err = guard.pid_file.with_name(f"{row}.out"), guard.pid_file.with_name(f"{row}.err")
    with out.open("w") as out_fh, err.open("w") as err_fh:
        subprocess.run([sys.executable, str(PROBE), row], stdout=out_fh, stderr=err_fh, timeout=60,
                       env=os.environ.copy(), check=True)
    found = json.loads(out.read_text().strip().splitlines()[-1])
    time.sleep(0.3)  # let a process that is exiting by itself finish, so "alive" means left running
    alive: dict[str, bool] = {}
    for pid, role in guard.recorded_pids():
        running = process_alive(pid)
        alive[role] = alive.get(role, False) or running
        if running:
            _end(pid)
    return found, err.read_text(), alive


def _end(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # ours if this process is a subreaper and the orphan came to us
        if not process_alive(pid):
            return
        time.sleep(0.01)


@pytest.fixture
def raw(leak_guard: LeakGuard, standin_on_path: Path) -> LeakGuard:
    return leak_guard


def test_a_normal_run_is_clean(raw: LeakGuard) -> None:
    found, stderr, alive = probe("a", raw)
    assert found["result"] and found["exception"] is None and found["fds_leaked"] == 0
    assert not any(alive.values()) and stderr == ""


@pytest.mark.parametrize("row", ["b1", "b2", "b4", "d3"])
def test_b_d_early_exit_raises_cancel_scope_error_in_a_finalizer(row: str, raw: LeakGuard) -> None:
    found, stderr, alive = probe(row, raw)
    assert CANCEL_SCOPE_ERROR in stderr  # raised in the GC/shutdown finalizer, where no caller can catch it
    assert found["exception"] is None  # ... so the caller saw nothing
    assert found["fds_leaked"] >= 1
    if row in ("b2", "b4"):
        assert found["cancelled_after"] > 1000  # the caller's task is cancelled at every later await
    if row in ("b4", "d3"):
        assert alive["cli"]  # a hanging CLI was never signalled (b1/b2's CLI dies of EPIPE at its next write)


def test_d4_interpreter_exit_orphans_a_hanging_cli(raw: LeakGuard) -> None:
    _, stderr, alive = probe("d4", raw)
    assert CANCEL_SCOPE_ERROR in stderr and alive["cli"]


@pytest.mark.parametrize("row", ["c2", "c3"])
def test_c_fail_after_leaves_the_cli_unsignalled(row: str, raw: LeakGuard) -> None:
    found, _, alive = probe(row, raw)
    assert found["exception"] == "TimeoutError" and found["fds_leaked"] >= 1
    if row == "c3":
        assert alive["cli"]  # hanging: alive forever (c2's CLI dies of EPIPE at its next write)


def test_e2_cli_ignoring_sigterm_blocks_the_timeout(raw: LeakGuard) -> None:
    found, _, alive = probe("e2", raw)
    # asyncio.timeout(1.0) never surfaced: only the probe's own 6 s bound ended the wait (by cancelling it).
    assert found["exception"] == "CancelledError" and found["seconds"] >= 5.9
    assert alive["cli"]


def test_f1_exit_code_error_loses_its_type_and_stderr(raw: LeakGuard) -> None:
    found, _, _ = probe("f1", raw)
    assert found["exception"] == "Exception"  # not ProcessError
    assert "Check stderr output for details" in found["exception_text"]
    assert "failed on purpose" not in found["exception_text"]


@pytest.mark.parametrize("row", ["f3", "f4"])
def test_f3_f4_bad_lines_silently_drop_the_rest(row: str, raw: LeakGuard) -> None:
    found, _, _ = probe(row, raw)
    assert found["exception"] is None and not found["result"]  # no error, and no result either
    assert found["texts"] == [len("before")]


def test_f5_text_with_many_spaces_is_corrupted(raw: LeakGuard) -> None:
    found, _, _ = probe("f5", raw)
    assert found["result"] and found["texts"] != [200_008]


def test_f6_long_line_is_a_plain_exception(raw: LeakGuard) -> None:
    found, _, _ = probe("f6", raw)
    assert found["exception"] == "Exception" and not found["result"]


def test_g1_grandchild_holding_stdout_hangs_the_iterator(raw: LeakGuard) -> None:
    found, _, alive = probe("g1", raw)
    assert found["iterator_hung_after_result"] and alive["grandchild"]


def test_g2_grandchild_survives_a_normal_run(raw: LeakGuard) -> None:
    found, _, alive = probe("g2", raw)
    assert found["result"] and alive["grandchild"]


def test_b3_aclosing_the_inner_generator_is_clean(raw: LeakGuard) -> None:
    found, stderr, _ = probe("b3", raw)
    assert CANCEL_SCOPE_ERROR not in stderr and found["exception"] is None
    assert found["cancelled_after"] == 0  # closing InternalClient().process_query() in its own task works


@pytest.mark.parametrize("row", ["c1", "e1"])
def test_c1_e1_asyncio_timeout_is_handled(row: str, raw: LeakGuard) -> None:
    # The rows the raw SDK gets right: asyncio's timeout cancels through the generator, whose finally
    # terminates a CLI that honours SIGTERM (compare c4/e2, where it does not).
    found, _, alive = probe(row, raw)
    assert found["exception"] == "TimeoutError"
    assert found["seconds"] < (1.5 if row == "c1" else 3.0)
    assert not alive.get("cli", False)


def test_c4_second_cancel_leaves_a_cli_that_ignores_sigterm(raw: LeakGuard) -> None:
    found, _, alive = probe("c4", raw)
    assert found.get("victim_cancelled") and alive["cli"]  # terminate() without SIGKILL: it never ends


def test_d1_aclose_from_another_task_raises_in_a_finalizer(raw: LeakGuard) -> None:
    found, stderr, _ = probe("d1", raw)
    assert found["messages"] == 2 and found["exception"] is None  # the caller saw nothing...
    assert CANCEL_SCOPE_ERROR in stderr or found["cancelled_after"] > 0  # ...but the scope broke


def test_f2_max_turns_result_then_a_plain_exception(raw: LeakGuard) -> None:
    found, _, _ = probe("f2", raw)
    assert found["result"] and found["exception"] == "Exception"  # exit 1 after the result: type lost


def test_g3_grandchild_with_null_fds_survives_a_timeout(raw: LeakGuard) -> None:
    _, _, alive = probe("g3", raw)
    assert alive["grandchild"]
