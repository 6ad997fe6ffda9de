"""pytest plugin: the ``leak_guard`` fixture and the stand-in fixtures.

Enable with ``-p sdk_wrapper.testing.pytest_plugin`` (or ``pytest_plugins = [...]`` in a conftest).

``leak_guard`` fails a test when, after it:
- a process the stand-in recorded (``$CLAUDE_STANDIN_PID_FILE``, set per test) or a new descendant of the
  test process is still alive (left processes are then killed, so one leak does not spoil later tests);
- the test process has more open descriptors than before it;
- asyncio's exception handler logged anything ("Task exception was never retrieved", an error while
  closing an async generator, a cancel-scope RuntimeError in a finalizer), or an exception was raised
  where nobody could catch it (``sys.unraisablehook``).
A short settle time (``leak_guard.settle_s``) lets the kernel and asyncio's child watcher finish reaping.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from .._containment._guard import ensure_guard
from ..standin import PID_FILE_ENV, install_standin, process_alive, read_pids


def fd_count() -> int:
    """Open descriptors of this process."""
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else psutil.Process().num_fds()


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage() + (f" [{record.exc_info[1]!r}]" if record.exc_info else ""))


@dataclass
class LeakGuard:
    """Handle given to the test: where the stand-in records pids, and the baselines taken."""

    pid_file: Path
    baseline_fds: int
    baseline_children: set[int]
    settle_s: float = 2.0
    unraisable: list[str] = field(default_factory=list)
    tolerated: list[str] = field(default_factory=list)
    _tolerate: tuple[tuple[type[BaseException], str], ...] = ()

    def tolerate(self, *types: type[BaseException], matching: str = "") -> None:
        """Accept unraisable exceptions of these types (kept in ``tolerated``), only those whose text contains
        ``matching`` if given: for tests of the raw SDK, whose known leaks are the subject of the test, and
        for a named defect of an SDK that no caller can reach."""
        self._tolerate += tuple((t, matching) for t in types)

    def is_tolerated(self, exc_type: type[BaseException], text: str) -> bool:
        return any(issubclass(exc_type, t) and matching in text for t, matching in self._tolerate)

    def recorded_pids(self) -> list[tuple[int, str]]:
        return read_pids(self.pid_file)

    def live_recorded(self) -> list[tuple[int, str]]:
        return [(pid, role) for pid, role in self.recorded_pids() if process_alive(pid)]

    def new_descendants(self) -> list[int]:
        try:
            children = psutil.Process().children(recursive=True)
        except psutil.Error:
            return []
        return [c.pid for c in children if c.pid not in self.baseline_children and process_alive(c.pid)]

    def problems(self) -> list[str]:
        out = []
        if live := self.live_recorded():
            out.append(f"processes the stand-in recorded are alive: {live}")
        if desc := self.new_descendants():
            out.append(f"new descendant processes are alive: {desc}")
        if (fds := fd_count()) > self.baseline_fds:
            out.append(f"open descriptors {fds} > baseline {self.baseline_fds}: {_fd_targets()}")
        return out

    def kill_leftovers(self) -> None:
        for pid in {p for p, _ in self.live_recorded()} | set(self.new_descendants()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, os.WNOHANG)


def _fd_targets() -> list[str]:
    targets = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int) if os.path.isdir("/proc/self/fd") else []:
        with contextlib.suppress(OSError):
            targets.append(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
    return targets


@pytest.fixture
def leak_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LeakGuard]:
    pid_file = tmp_path / "standin-pids"
    monkeypatch.setenv(PID_FILE_ENV, str(pid_file))
    collector = _Collector()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(collector)
    # The host guard (one per process, for its whole life, see sdk_wrapper._containment._guard) is started before the
    # baselines: its one pipe and its one process are by design, not a test's leak.
    ensure_guard()
    guard = LeakGuard(pid_file, fd_count(), {c.pid for c in psutil.Process().children(recursive=True)})
    previous_hook = sys.unraisablehook

    def hook(info: Any) -> None:
        text = f"{info.exc_type.__name__}: {info.exc_value!r} in {info.object!r}"
        (guard.tolerated if guard.is_tolerated(info.exc_type, text) else guard.unraisable).append(text)

    sys.unraisablehook = hook
    try:
        yield guard
    finally:
        gc.collect()  # finalizer-time errors (async generators, unclosed streams) belong to this test
        sys.unraisablehook = previous_hook
        asyncio_logger.removeHandler(collector)
    deadline = time.monotonic() + guard.settle_s
    problems = guard.problems()
    while problems and time.monotonic() < deadline:
        time.sleep(0.02)
        problems = guard.problems()
    problems += [f"asyncio logged an error: {r}" for r in collector.records]
    problems += [f"unraisable exception: {u}" for u in guard.unraisable]
    if problems:
        guard.kill_leftovers()
        pytest.fail("leak_guard: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def standin_cli(tmp_path: Path) -> Path:
    """An executable stand-in ``claude`` in a fresh directory; pass it as ``cli_path``."""
    return install_standin(tmp_path / "standin-bin")


@pytest.fixture
def standin_on_path(standin_cli: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in first on PATH, so the raw SDK (which searches PATH) runs it."""
    monkeypatch.setenv("PATH", f"{standin_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return standin_cli
