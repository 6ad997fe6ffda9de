"""Direct tests of the transport and of ``end_tree``, below the scope: real processes, no SDK ``Query``.

The CLI here is a small shell script (it ignores the flags the SDK builds), so each test controls exactly
which bytes arrive in one read, which signals are ignored and which descendants are started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import anyio
import psutil
import pytest
from claude_code_sdk import ClaudeCodeOptions, CLIConnectionError, ProcessError

from sdk_wrapper import InvalidOutputError, LineTooLongError, QueryLimits, end_query_tree, get_logger
from sdk_wrapper._backends import code_backend
from sdk_wrapper._containment._proctree import MARKER_ENV, end_tree
from sdk_wrapper._transport import ScopedTransport, TransportState
from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import until

pytestmark = pytest.mark.anyio

SECRET = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123"


def cli(tmp_path: Path, body: str) -> str:
    path = tmp_path / "cli.sh"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def transport(cli_path: str, **limits: object) -> ScopedTransport:
    return ScopedTransport(prompt="hi", options=ClaudeCodeOptions(), cli_path=cli_path, backend=code_backend(),
                           query_id=uuid.uuid4().hex, limits=QueryLimits(**limits), log=get_logger())  # type: ignore[arg-type]


async def read_all(t: ScopedTransport) -> tuple[list[dict[str, object]], BaseException | None]:
    seen: list[dict[str, object]] = []
    try:
        async for message in t.read_messages():
            seen.append(message)
    except Exception as exc:
        return seen, exc
    return seen, None


@pytest.mark.parametrize("bad", ["too-long", "malformed"])
async def test_lines_before_a_bad_line_in_the_same_read_are_delivered(
        bad: str, leak_guard: LeakGuard, tmp_path: Path) -> None:
    third = "{bad json " + SECRET + " " + "x" * 40 if bad == "too-long" else "{bad json " + SECRET
    t = transport(cli(tmp_path, f"printf '{{\"type\":\"a\"}}\\n{{\"type\":\"b\"}}\\n{third}\\n'"), max_line_bytes=60)
    await t.connect()
    seen, error = await read_all(t)
    await t.close()
    assert [m["type"] for m in seen] == ["a", "b"]  # one write: all three lines came in one read
    assert isinstance(error, LineTooLongError if bad == "too-long" else InvalidOutputError)
    assert error.line_number == 3 and t.error is error
    assert SECRET not in error.excerpt and SECRET not in str(error) and "[REDACTED]" in error.excerpt


async def test_a_non_json_line_is_skipped_and_the_rest_delivered(leak_guard: LeakGuard, tmp_path: Path) -> None:
    t = transport(cli(tmp_path, "printf '{\"type\":\"a\"}\\nLoading plugins\\n{\"type\":\"b\"}\\n'"))
    await t.connect()
    seen, error = await read_all(t)
    await t.close()
    assert error is None and [m["type"] for m in seen] == ["a", "b"]


#: lines the CLI could send, the usual one first; each is read as json.loads(line.strip()) reads it
LINES = [b'{"type":"a","n":[1,2.5,null,true]}', b'  {"type":"a"}  ', b'{"type":"a"}\r', b'{"type":"a"}\x0b',
         b'{"type":"\xed\xa0\x80"}', b'{"t":NaN}', b'{"type":"a"}{"type":"b"}', b'{"type":"a"} x',
         b'{"type":"\xff"}', b'{"type":"a",}', b'{', b'{"a":"\\ud800"}']


@pytest.mark.parametrize("line", LINES, ids=[repr(line)[2:30] for line in LINES])
async def test_a_line_is_read_as_json_loads_reads_it(line: bytes, leak_guard: LeakGuard, tmp_path: Path) -> None:
    """The usual line takes a shorter path than json.loads; the verdict on every line is still json's."""
    (tmp_path / "out").write_bytes(line + b"\n")
    t = transport(cli(tmp_path, f"cat '{tmp_path / 'out'}'"))
    await t.connect()
    seen, error = await read_all(t)
    await t.close()
    try:
        expected = json.loads(line.strip())
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        assert seen == [] and isinstance(error, InvalidOutputError) and error.line_number == 1
    else:
        assert error is None and seen == [expected] and isinstance(expected, dict)


async def test_states_and_idempotent_close(leak_guard: LeakGuard, tmp_path: Path) -> None:
    never = transport(cli(tmp_path, "exit 0"))
    assert never.state is TransportState.NEW and not never.is_ready()
    with pytest.raises(CLIConnectionError):
        await never.write("{}\n")
    await never.close()  # never connected: nothing to end
    after: TransportState = never.state  # (a fresh read: mypy keeps the narrowed NEW otherwise)
    assert after is TransportState.CLOSED and never.cleanup is not None and never.cleanup.pids_ended == ()

    t = transport(cli(tmp_path, "sleep 30"))
    await t.connect()
    assert t.state is TransportState.OPEN and t.pid is not None and process_alive(t.pid)
    await t.close()
    first = t.cleanup
    await t.close()
    assert t.state is TransportState.CLOSED and t.cleanup is first and first is not None
    assert first.clean and t.pid in first.pids_ended and not process_alive(t.pid)
    assert not t.is_ready()


async def test_non_zero_exit_is_the_sdks_process_error_with_a_redacted_tail(
        leak_guard: LeakGuard, tmp_path: Path) -> None:
    t = transport(cli(tmp_path, f"echo 'fatal: key {SECRET}' >&2; exit 3"))
    await t.connect()
    async with anyio.create_task_group() as tg:
        tg.start_soon(t.drain_stderr)
        seen, error = await read_all(t)
        await t.stderr_drained(within_s=2)
    await t.close()
    assert seen == [] and isinstance(error, ProcessError) and error.exit_code == 3 and t.error is error
    assert "fatal: key [REDACTED]" in t.stderr_tail() and SECRET not in t.stderr_tail()


def _spawn(marker: str, script: str, stdout: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", script], env={**os.environ, MARKER_ENV: marker},
                            start_new_session=True, stdout=stdout, stderr=subprocess.DEVNULL)


def _wait_for_children(pid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [c.pid for c in psutil.Process(pid).children(recursive=True)]
        if len(found) >= count:
            return found
        time.sleep(0.01)
    raise AssertionError(f"{pid} did not start {count} children")


#: a root that starts one child in its session and one that leaves it (setsid), all sleeping
TREE = """
import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(60)"])
time.sleep(60)
"""


async def test_end_tree_ends_the_root_its_group_and_a_setsid_child(leak_guard: LeakGuard) -> None:
    marker = uuid.uuid4().hex
    root = _spawn(marker, TREE)
    children = _wait_for_children(root.pid, 2)
    with anyio.CancelScope(shield=True):
        ending = await end_tree(root.pid, marker, wait_root=None, terminate_grace_s=3, kill_grace_s=2)
    root.wait(timeout=5)
    assert set(ending.pids) == {root.pid, *children} and ending.leftover == ()
    assert (-root.pid, "SIGTERM") in ending.signals and not ending.sigkill_needed
    assert not any(process_alive(p) for p in children)


async def test_end_tree_kills_what_ignores_sigterm(leak_guard: LeakGuard) -> None:
    marker = uuid.uuid4().hex
    root = _spawn(marker, "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "print('ready', flush=True); time.sleep(60)", stdout=subprocess.PIPE)
    assert root.stdout is not None and root.stdout.readline() == b"ready\n"  # SIGTERM is ignored from here
    with anyio.CancelScope(shield=True):
        ending = await end_tree(root.pid, marker, wait_root=None, terminate_grace_s=0.5, kill_grace_s=2)
    root.wait(timeout=5)  # (end_tree reaped it already: its own child's status is collected there)
    root.stdout.close()
    assert not process_alive(root.pid) and ending.sigkill_needed
    assert (-root.pid, "SIGKILL") in ending.signals and ending.leftover == ()


async def test_end_query_tree_finds_an_orphan_by_its_marker_alone(leak_guard: LeakGuard) -> None:
    """An orchestrator's orphan: no root to start from, in a session of its own, found by the marker."""
    marker = uuid.uuid4().hex
    orphan = _spawn(marker, "import time; time.sleep(60)")
    ended = await end_query_tree(marker, terminate_grace_s=2, kill_grace_s=2)
    assert orphan.wait(timeout=5) is not None and orphan.pid in ended
    other = _spawn(uuid.uuid4().hex, "import time; time.sleep(60)")  # another query's process
    try:
        assert await end_query_tree(marker) == () and process_alive(other.pid)
    finally:
        other.kill()
        other.wait()


async def test_a_cli_forked_before_a_cancel_in_open_process_is_ended_with_its_children(
        leak_guard: LeakGuard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancellation inside ``open_process`` after the fork: asyncio kills the child it spawned (and only
    it) and re-raises, so we never learn the CLI's pid. Here ``open_process`` is the real one, followed by
    what asyncio's cancel path does (SIGKILL of the direct child), once the CLI has started a grandchild:
    the transport's cleanup must still end that grandchild, found by the query's cgroup or marker. (Found by
    the soak gate: a ``sleep 3600`` grandchild left once in about 3,000 operations under load.)"""
    pid_file = tmp_path / "grandchild.pid"
    t = transport(cli(tmp_path, f"sleep 3600 & echo $! > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; wait"))
    real_open = anyio.open_process

    async def open_then_cancelled(*args: object, **kwargs: object) -> object:
        process = await real_open(*args, **kwargs)  # type: ignore[arg-type]
        await until(pid_file.exists, 10)
        process.kill()  # asyncio's transp.close() on a cancelled spawn: the child killed, its pipes closed
        with anyio.CancelScope(shield=True):
            await process.aclose()
        await anyio.sleep_forever()  # the cancellation arrives while the spawn is awaited
        raise AssertionError("unreachable")

    monkeypatch.setattr("sdk_wrapper._transport.anyio.open_process", open_then_cancelled)
    with anyio.move_on_after(5) as scope:
        await t.connect()
    assert scope.cancelled_caught and t.pid is None
    grandchild = int(pid_file.read_text())
    assert process_alive(grandchild)
    await t.close()
    assert not process_alive(grandchild)
    assert grandchild in t.cleanup.pids_ended and t.cleanup.leftover_pids == ()
