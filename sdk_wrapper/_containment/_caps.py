"""Resource caps per query (``QueryLimits.memory_mb``, ``max_pids``): a memory cap and a process-count cap on
the query's whole tree, so that a fork bomb or a runaway test suite one agent starts cannot take the host,
and every other phase, down.

Where the caps live: the query's cgroup v2 directory (``_cgroup``) when the memory and pids controllers are
delegated to it; else the cgroup v1 ``memory`` and ``pids`` hierarchies where they are mounted and writable
(a hybrid host, such as a container whose cgroup2 has no controllers): ``<hierarchy>/<own path>/claude-scope-
<hostpid>-<hoststart>/q-<id>``. Where neither is writable the caps are refused (``CapsError``) before any
process starts: never silently ignored. The CLI joins every cap's cgroup before its first instruction (the
same shell that moves it into its v2 cgroup writes its pid into each).

``hit`` reads the kernel's evidence (v2 ``memory.events`` ``oom_kill`` and ``pids.events`` ``max``; v1
``memory.oom_control`` ``oom_kill`` and ``pids.events`` ``max``): the pump polls it while the query runs and
ends the query at the first hit, and reads it again once the tree is gone, before anything else decides
the outcome (a capped CLI often just exits non-zero). ``max_pids`` counts threads as well as processes: the
real CLI (node) runs about a dozen threads before it runs a tool.

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .._errors import UsageError
from ._cgroup import host_cgroup

_V2_FILES = {"memory": "memory.max", "pids": "pids.max"}
_V1_FILES = {"memory": "memory.limit_in_bytes", "pids": "pids.max"}


class CapsError(UsageError):
    """The caps asked for cannot be enforced on this host; the message says what is missing."""


@dataclass(frozen=True)
class Caps:
    memory_mb: int | None = None
    max_pids: int | None = None

    def wanted(self) -> dict[str, int]:
        """controller -> the value to write (bytes for memory)."""
        out = {}
        if self.memory_mb is not None:
            out["memory"] = self.memory_mb * 1024 * 1024
        if self.max_pids is not None:
            out["pids"] = self.max_pids
        return out


def _v1_mounts() -> dict[str, Path]:
    """controller -> mount point of each cgroup v1 hierarchy."""
    found: dict[str, Path] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, rest = left.split(), right.split()
            if len(rest) >= 3 and rest[0] == "cgroup" and len(fields) > 4:
                for option in rest[2].split(","):
                    if option in ("memory", "pids"):
                        found[option] = Path(fields[4])
    return found


def _v1_own(controller: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return path
    return None


def _v1_parent(controller: str) -> Path | None:
    mount, own = _v1_mounts().get(controller), _v1_own(controller)
    if mount is None or own is None:
        return None
    return mount / own.lstrip("/")


def _v2_enable(host: Path, controller: str) -> bool:
    """Whether ``controller`` is (or could be made) available to the query cgroups under ``host``."""
    try:
        if controller not in (host / "cgroup.controllers").read_text().split():
            return False
        if controller not in (host / "cgroup.subtree_control").read_text().split():
            (host / "cgroup.subtree_control").write_text(f"+{controller}")
        return True
    except OSError:
        return False


def cap_support() -> dict[str, str]:
    """How each cap (``memory``, ``pids``) can be enforced on this host: where, or why not."""
    host = host_cgroup().host
    return support(None if host is None else host.path)


def support(host_v2: Path | None) -> dict[str, str]:
    """How each cap can be enforced here (``memory``, ``pids``): where, or why not (``doctor``)."""
    out = {}
    for controller in ("memory", "pids"):
        if host_v2 is not None and _v2_enable(host_v2, controller):
            out[controller] = f"cgroup v2 ({host_v2})"
            continue
        parent = _v1_parent(controller)
        if parent is not None and os.access(parent, os.W_OK):
            out[controller] = f"cgroup v1 {controller} hierarchy ({parent})"
        else:
            why = "no cgroup v2 controller delegated"
            out[controller] = f"not enforceable: {why}, and no writable cgroup v1 {controller} hierarchy"
    return out


class CapGroups:
    """The cgroups capping one tree: (controller, directory, v2?) each."""

    def __init__(self, groups: list[tuple[str, Path, bool]]) -> None:
        self.groups = groups

    def procs_files(self) -> list[Path]:
        """The v1 directories' ``cgroup.procs`` (a v2 cap is in the query's own cgroup, joined already)."""
        return [path / "cgroup.procs" for _, path, v2 in self.groups if not v2]

    def hit(self) -> str:
        """The kernel's evidence of a cap hit, as words ("" while none was hit)."""
        said = []
        for controller, path, v2 in self.groups:
            if controller == "memory":
                events = _counts(path / ("memory.events" if v2 else "memory.oom_control"))
                if events.get("oom_kill", 0) > 0:
                    limit = _read(path / ("memory.max" if v2 else "memory.limit_in_bytes"))
                    said.append(f"memory cap ({_mb(limit)}) hit: {events['oom_kill']} process(es) killed by the "
                                f"kernel's OOM killer ({'memory.events' if v2 else 'memory.oom_control'} "
                                f"oom_kill {events['oom_kill']})")
            else:
                events = _counts(path / "pids.events")
                if events.get("max", 0) > 0:
                    said.append(f"process cap (pids.max {_read(path / 'pids.max')}) hit: {events['max']} fork(s) "
                                f"refused (pids.events max {events['max']})")
        return "; ".join(said)

    def pids(self) -> list[int]:
        found: set[int] = set()
        for procs in self.procs_files():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(x) for x in procs.read_text().split())
        return sorted(found)

    def remove(self, within_s: float = 2.0) -> None:
        """Remove the v1 directories (whatever is still in them is killed first: ours, by construction)."""
        deadline = time.monotonic() + within_s
        for pid in self.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for _, path, v2 in self.groups:
            if v2:
                continue
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.005)
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # the host directory, once its last query is gone


def make_caps(caps: Caps, marker: str, host_name: str, v2_query: Path | None) -> CapGroups:
    """The cgroups that enforce ``caps`` for the query ``marker``; ``CapsError`` when one cannot be."""
    groups: list[tuple[str, Path, bool]] = []
    try:
        for controller, value in caps.wanted().items():
            if v2_query is not None and _v2_enable(v2_query.parent, controller) \
                    and (v2_query / _V2_FILES[controller]).exists():
                (v2_query / _V2_FILES[controller]).write_text(str(value))
                groups.append((controller, v2_query, True))
                continue
            parent = _v1_parent(controller)
            if parent is None or not os.access(parent, os.W_OK):
                raise CapsError(f"QueryLimits asks for a {controller} cap, which cannot be enforced here: no cgroup "
                                f"v2 {controller} controller is delegated and no cgroup v1 {controller} hierarchy is "
                                "writable (claude-scope doctor says what is)")
            path = parent / host_name / f"q-{marker}"
            path.mkdir(parents=True, exist_ok=True)
            groups.append((controller, path, False))
            (path / _V1_FILES[controller]).write_text(str(value))
            swap = path / "memory.memsw.limit_in_bytes"
            if controller == "memory" and swap.exists():  # swap must not be a way around the cap
                with contextlib.suppress(OSError):
                    swap.write_text(str(value))
    except OSError as exc:
        CapGroups(groups).remove()
        raise CapsError(f"could not set the caps ({exc})") from None
    except CapsError:
        CapGroups(groups).remove()
        raise
    return CapGroups(groups)


def join_script(files: list[Path]) -> str:
    """Shell words that write the shell's own pid into each of ``files``."""
    return " && ".join(f"echo $$ > {shlex.quote(str(f))}" for f in files)


def _counts(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return "?"


def _mb(value: str) -> str:
    return f"{int(value) // (1024 * 1024)} MB" if value.isdigit() else value
