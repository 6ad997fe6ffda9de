"""Evidence checks: what a phase must leave behind, verified independently of what the agent claims.

Each check is a frozen dataclass with ``run(ctx) -> CheckResult`` and ``to_dict()``; the result carries the
evidence (sizes, matches, a command's exit code and output tail), so a failed phase says why.
"""

from __future__ import annotations

import glob
import os
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio

from sdk_wrapper import redact, run_contained

from ._model import RunContext

_OUTPUT_TAIL = 4000


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    evidence: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "evidence": self.evidence, "details": self.details}


class Check(Protocol):
    @property
    def name(self) -> str: ...

    async def run(self, ctx: CheckContext) -> CheckResult: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CheckContext:
    """Where a check looks: the phase's working directory, and the run."""

    cwd: Path
    run: RunContext


def _resolve(cwd: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else cwd / candidate


@dataclass(frozen=True)
class FileExists:
    """The file exists and has at least ``min_bytes`` bytes."""

    path: str
    min_bytes: int = 1
    name: str = ""

    async def run(self, ctx: CheckContext) -> CheckResult:
        target = _resolve(ctx.cwd, self.path)
        name = self.name or f"file_exists:{self.path}"
        try:
            size = (await anyio.Path(target).stat()).st_size
        except OSError:
            return CheckResult(name, False, f"{self.path} does not exist", {"path": str(target)})
        passed = size >= self.min_bytes
        return CheckResult(name, passed, f"{self.path}: {size} bytes (need >= {self.min_bytes})",
                           {"path": str(target), "bytes": size})

    def to_dict(self) -> dict[str, Any]:
        return {"type": "file_exists", "path": self.path, "min_bytes": self.min_bytes}


@dataclass(frozen=True)
class GlobMatches:
    """At least ``min_count`` paths match the pattern (relative to the phase's cwd; ``**`` allowed)."""

    pattern: str
    min_count: int = 1
    name: str = ""

    async def run(self, ctx: CheckContext) -> CheckResult:
        pattern = str(_resolve(ctx.cwd, self.pattern))
        def find() -> tuple[list[str], list[str]]:
            found = sorted(glob.glob(pattern, recursive=True))
            return found, [os.path.relpath(m, ctx.cwd) for m in found[:20]]

        matches, shown = await anyio.to_thread.run_sync(find)
        name = self.name or f"glob:{self.pattern}"
        return CheckResult(name, len(matches) >= self.min_count,
                           f"{len(matches)} match(es) for {self.pattern} (need >= {self.min_count})",
                           {"matches": shown})

    def to_dict(self) -> dict[str, Any]:
        return {"type": "glob", "pattern": self.pattern, "min_count": self.min_count}


@dataclass(frozen=True)
class CommandSucceeds:
    """The command exits 0 within ``timeout_s``, run in the phase's cwd; its output tail is kept.

    It runs contained as a query's CLI does (``sdk_wrapper.run_contained``: its own session and cgroup where
    one can be made, the guard's record): when it exits, times out or the run is cancelled, its whole tree
    is ended, a child it left in the background too, and verified gone. The evidence says what that took;
    a tree that could not be ended fails the check."""

    command: str | tuple[str, ...]
    timeout_s: float = 120.0
    name: str = ""

    async def run(self, ctx: CheckContext) -> CheckResult:
        argv = shlex.split(self.command) if isinstance(self.command, str) else list(self.command)
        name = self.name or f"command:{' '.join(argv)[:60]}"
        try:
            done = await run_contained(argv, cwd=ctx.cwd, timeout_s=self.timeout_s, output_bytes=_OUTPUT_TAIL)
        except OSError as exc:
            return CheckResult(name, False, f"could not run: {exc.strerror}", {"argv": argv})
        cleanup = done.cleanup
        details = {"argv": argv, "exit_code": done.exit_code, "output_tail": done.output,
                   "seconds": round(done.duration_s, 3), "timed_out": done.timed_out, "cleanup": cleanup.to_dict()}
        left_behind = [pid for pid in cleanup.pids_ended if pid != done.pid]
        ended = f"; ended {len(left_behind)} process(es) it left running" if left_behind else ""
        if not cleanup.clean:
            return CheckResult(name, False, f"its processes could not be ended: {list(cleanup.leftover_pids)}",
                               details)
        if done.timed_out:
            return CheckResult(name, False, f"timed out after {self.timeout_s}s{ended}", details)
        return CheckResult(name, done.exit_code == 0, f"exit {done.exit_code}{ended}", details)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "command", "command": self.command if isinstance(self.command, str) else list(self.command),
                "timeout_s": self.timeout_s}


@dataclass(frozen=True)
class CallableCheck:
    """Any async callable ``fn(ctx) -> bool | CheckResult``; an exception it raises is a failed check."""

    fn: Callable[[CheckContext], Awaitable[bool | CheckResult]]
    name: str = ""

    async def run(self, ctx: CheckContext) -> CheckResult:
        name = self.name or getattr(self.fn, "__name__", "callable")
        try:
            value = await self.fn(ctx)
        except Exception as exc:
            return CheckResult(name, False, f"raised {type(exc).__name__}: {redact(str(exc))[:500]}")
        if isinstance(value, CheckResult):
            return value
        return CheckResult(name, bool(value), "returned " + repr(bool(value)))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "callable", "name": self.name or getattr(self.fn, "__name__", "callable")}


# The one way to make a check (in code, and from a pipeline file): these four; the classes are their shape.
def file_exists(path: str, min_bytes: int = 1, name: str = "") -> Check:
    """Passes when ``path`` (relative to the phase's cwd) is a file of at least ``min_bytes``."""
    return FileExists(path, min_bytes, name)


def glob_matches(pattern: str, min_count: int = 1, name: str = "") -> Check:
    """Passes when ``pattern`` (relative to the phase's cwd) matches at least ``min_count`` paths."""
    return GlobMatches(pattern, min_count, name)


def command_succeeds(command: str | tuple[str, ...], timeout_s: float = 120.0, name: str = "") -> Check:
    """Passes when ``command`` (a shell string or an argv) exits 0 within ``timeout_s`` in the phase's cwd."""
    return CommandSucceeds(command, timeout_s, name)


def check(fn: Callable[[CheckContext], Awaitable[bool | CheckResult]], name: str = "") -> Check:
    """Your own check: ``fn`` gets the ``CheckContext`` and returns a bool or a ``CheckResult``."""
    return CallableCheck(fn, name)
