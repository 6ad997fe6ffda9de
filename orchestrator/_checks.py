"""Evidence checks: what a phase must leave behind, verified independently of what the agent claims.

Each check is a frozen dataclass with ``run(ctx) -> CheckResult`` and ``to_dict()``; the result carries the
evidence (sizes, matches, a command's exit code and output tail), so a failed phase says why.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from xml.etree import ElementTree

import anyio

from sdk_wrapper import CommandOutcome, redact, run_contained
from sdk_wrapper.lowlevel import Caps

from ._context import RunContext
from ._evidence import CheckResult as CheckResult  # lives in a light module; used here with the checks

_OUTPUT_TAIL = 4000
#: how much output ``expect_output`` is matched against
_EXPECT_TAIL = 64 * 1024
#: a grep check does not read files larger than this
_GREP_MAX_BYTES = 5 * 1024 * 1024



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
    #: the phase's caps (``memory_mb``, ``max_pids``): a command check's tree gets them too
    caps: Caps | None = None


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
    """At least ``min_count`` paths match the pattern (relative to the phase's cwd; ``**`` allowed); with
    ``min_bytes``, each match must be a file of at least that size."""

    pattern: str
    min_count: int = 1
    name: str = ""
    min_bytes: int = 0

    async def run(self, ctx: CheckContext) -> CheckResult:
        pattern = str(_resolve(ctx.cwd, self.pattern))

        def find() -> tuple[list[str], list[str], list[str]]:
            found = sorted(glob.glob(pattern, recursive=True))
            small = [m for m in found
                     if self.min_bytes and (not os.path.isfile(m) or os.path.getsize(m) < self.min_bytes)]
            def rel(paths: list[str]) -> list[str]:
                return [os.path.relpath(m, ctx.cwd) for m in paths]

            return found, rel(found[:20]), rel(small)

        matches, shown, small = await anyio.to_thread.run_sync(find)
        name = self.name or f"glob:{self.pattern}"
        evidence = f"{len(matches)} match(es) for {self.pattern} (need >= {self.min_count})"
        if small:
            evidence += f"; {len(small)} under {self.min_bytes} bytes: {', '.join(small[:10])}"
        return CheckResult(name, len(matches) >= self.min_count and not small, evidence,
                           {"matches": shown, "too_small": small[:20]})

    def to_dict(self) -> dict[str, Any]:
        return {"type": "glob", "pattern": self.pattern, "min_count": self.min_count, "min_bytes": self.min_bytes}


@dataclass(frozen=True)
class GrepFiles:
    """A regular expression must be present in (``absent``: in none of) the files matching ``files`` (a
    glob relative to the phase's cwd). V3 refused ``TODO``, ``mock`` and ``NotImplementedError`` in src/."""

    pattern: str
    files: str = "**/*"
    absent: bool = False
    name: str = ""

    async def run(self, ctx: CheckContext) -> CheckResult:
        regex = re.compile(self.pattern)
        root = str(_resolve(ctx.cwd, self.files))

        def scan() -> tuple[int, list[str]]:
            found: list[str] = []
            paths = [p for p in sorted(glob.glob(root, recursive=True)) if os.path.isfile(p)]
            for path in paths:
                if os.path.getsize(path) > _GREP_MAX_BYTES:
                    continue
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for number, line in enumerate(fh, 1):
                        if regex.search(line):
                            found.append(f"{os.path.relpath(path, ctx.cwd)}:{number}: {line.strip()[:200]}")
            return len(paths), found

        scanned, found = await anyio.to_thread.run_sync(scan)
        name = self.name or f"grep:{'!' if self.absent else ''}{self.pattern}"
        where = f"{len(found)} line(s) in {scanned} file(s) matching {self.files}"
        passed = not found if self.absent else bool(found)
        need = "must be absent" if self.absent else "must be present"
        return CheckResult(name, passed, f"{where} match {self.pattern!r} ({need})",
                           {"matches": [redact(m) for m in found[:20]], "files": scanned})

    def to_dict(self) -> dict[str, Any]:
        return {"type": "grep", "pattern": self.pattern, "files": self.files, "absent": self.absent}


@dataclass(frozen=True)
class PytestPasses:
    """pytest runs and passes: tests ran, none failed or errored. Judged from its JUnit XML report, not its
    text; contained as a command check is. ``python``: the interpreter (default: ``python`` on the phase's
    PATH, else ``python3``), which must have pytest. Evidence: the counts and the first failures."""

    args: tuple[str, ...] = ()
    python: str = ""
    timeout_s: float = 600.0
    name: str = ""

    async def run(self, ctx: CheckContext) -> CheckResult:
        python = self.python or shutil.which("python") or "python3"
        name = self.name or f"pytest:{' '.join(self.args)[:60]}"
        report = Path(tempfile.mkdtemp(prefix="claude-scope-pytest-")) / "junit.xml"
        argv = [python, "-m", "pytest", *self.args, f"--junitxml={report}", "-q", "-p", "no:cacheprovider"]
        try:
            done = await run_contained(argv, cwd=ctx.cwd, timeout_s=self.timeout_s, output_bytes=_OUTPUT_TAIL,
                                       caps=ctx.caps)
            counts, failures = await anyio.to_thread.run_sync(_junit, report)
        except OSError as exc:
            return CheckResult(name, False, f"could not run {python}: {exc.strerror}", {"argv": argv})
        finally:
            shutil.rmtree(report.parent, ignore_errors=True)
        details = {**_ran(argv, done), **({} if counts is None else counts), "first_failures": failures}
        if done.cap_hit:
            return CheckResult(name, False, done.cap_hit, details)
        if counts is None:
            return CheckResult(name, False, f"pytest wrote no report (exit {done.exit_code}"
                               f"{', timed out' if done.timed_out else ''}): is pytest installed for {python}?",
                               details)
        ran = counts["tests"] - counts["skipped"]
        passed = ran > 0 and counts["failures"] == 0 and counts["errors"] == 0 and done.cleanup.clean
        evidence = (f"{ran} ran: {ran - counts['failures'] - counts['errors']} passed, {counts['failures']} failed, "
                    f"{counts['errors']} errors, {counts['skipped']} skipped")
        if failures:
            evidence += "; first: " + failures[0][:300]
        return CheckResult(name, passed, evidence if ran else "no tests ran", details)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "pytest", "args": list(self.args), "python": self.python, "timeout_s": self.timeout_s}


def _ran(argv: list[str], done: CommandOutcome) -> dict[str, Any]:
    """The evidence a contained command leaves in its check: argv, exit, output tail, time, and its tree."""
    return {"argv": argv, "exit_code": done.exit_code, "output_tail": done.output,
            "seconds": round(done.duration_s, 3), "timed_out": done.timed_out, "cleanup": done.cleanup.to_dict(),
            "cap_hit": done.cap_hit}


def _junit(path: Path) -> tuple[dict[str, int] | None, list[str]]:
    """A JUnit XML report's counts (every testsuite's, summed) and its first failures, or (None, []) when
    there is no readable report."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return None, []
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    failures = []
    for case in root.iter("testcase"):
        for problem in (*case.findall("failure"), *case.findall("error")):
            failures.append(redact(f"{case.get('classname', '')}::{case.get('name', '')}: "
                                   f"{problem.get('message', '') or (problem.text or '').strip()[:300]}"))
    return counts, failures[:10]


@dataclass(frozen=True)
class CommandSucceeds:
    """The command exits 0 within ``timeout_s``, run in the phase's cwd; its output tail is kept. ``stdin`` is
    written to it (V3 ran main.py with scripted input); ``expect_output``: a regular expression its output
    (stdout and stderr, the last 64 KiB) must also match.

    It runs contained as a query's CLI does (``sdk_wrapper.run_contained``: its own session and cgroup where
    one can be made, the guard's record): when it exits, times out or the run is cancelled, its whole tree
    is ended, a child it left in the background too, and verified gone. The evidence says what that took;
    a tree that could not be ended fails the check."""

    command: str | tuple[str, ...]
    timeout_s: float = 120.0
    name: str = ""
    stdin: str | None = None
    expect_output: str | None = None

    async def run(self, ctx: CheckContext) -> CheckResult:
        argv = shlex.split(self.command) if isinstance(self.command, str) else list(self.command)
        name = self.name or f"command:{' '.join(argv)[:60]}"
        try:
            done = await run_contained(argv, cwd=ctx.cwd, timeout_s=self.timeout_s,
                                       stdin=None if self.stdin is None else self.stdin.encode(),
                                       output_bytes=_EXPECT_TAIL if self.expect_output else _OUTPUT_TAIL,
                                       caps=ctx.caps)
        except OSError as exc:
            return CheckResult(name, False, f"could not run: {exc.strerror}", {"argv": argv})
        cleanup = done.cleanup
        details = _ran(argv, done)
        left_behind = [pid for pid in cleanup.pids_ended if pid != done.pid]
        ended = f"; ended {len(left_behind)} process(es) it left running" if left_behind else ""
        if not cleanup.clean:
            return CheckResult(name, False, f"its processes could not be ended: {list(cleanup.leftover_pids)}",
                               details)
        if done.cap_hit:
            return CheckResult(name, False, f"{done.cap_hit}{ended}", details)
        if done.timed_out:
            return CheckResult(name, False, f"timed out after {self.timeout_s}s{ended}", details)
        if self.expect_output is not None:
            details["output_tail"] = done.output[-_OUTPUT_TAIL:]
            if not re.search(self.expect_output, done.output, re.MULTILINE):
                return CheckResult(name, False, f"exit {done.exit_code}; output does not match "
                                   f"{self.expect_output!r}{ended}", details)
        return CheckResult(name, done.exit_code == 0, f"exit {done.exit_code}{ended}", details)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "command", "command": self.command if isinstance(self.command, str) else list(self.command),
                "timeout_s": self.timeout_s, "stdin": self.stdin, "expect_output": self.expect_output}


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


def glob_matches(pattern: str, min_count: int = 1, name: str = "", min_bytes: int = 0) -> Check:
    """Passes when ``pattern`` (relative to the phase's cwd) matches at least ``min_count`` paths, each a file of
    at least ``min_bytes`` when that is set."""
    return GlobMatches(pattern, min_count, name, min_bytes)


def command_succeeds(command: str | tuple[str, ...], timeout_s: float = 120.0, name: str = "",
                     stdin: str | None = None, expect_output: str | None = None) -> Check:
    """Passes when ``command`` (a shell-like string or an argv) exits 0 within ``timeout_s`` in the phase's cwd,
    given ``stdin``, and its output matches ``expect_output`` (a regular expression) when that is set."""
    if expect_output is not None:
        re.compile(expect_output)  # a bad expression is the caller's error, raised now
    return CommandSucceeds(command, timeout_s, name, stdin, expect_output)


def grep(pattern: str, files: str = "**/*", absent: bool = False, name: str = "") -> Check:
    """Passes when the regular expression ``pattern`` is found in a file matching ``files`` (``absent``: in
    none of them). Files over 5 MB are not read."""
    re.compile(pattern)
    return GrepFiles(pattern, files, absent, name)


def pytest_passes(*args: str, python: str = "", timeout_s: float = 600.0, name: str = "") -> Check:
    """Passes when ``python -m pytest ARGS`` ran tests and none failed or errored (from its JUnit XML)."""
    return PytestPasses(tuple(args), python, timeout_s, name)


def check(fn: Callable[[CheckContext], Awaitable[bool | CheckResult]], name: str = "") -> Check:
    """Your own check: ``fn`` gets the ``CheckContext`` and returns a bool or a ``CheckResult``."""
    return CallableCheck(fn, name)
