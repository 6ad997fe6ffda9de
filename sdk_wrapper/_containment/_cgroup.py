"""A cgroup (v2) per query: containment that no descendant can leave.

A process can leave a process group, a session and its environment (``setsid`` + ``execve`` with an empty
environment), but not its cgroup: only a write to ``cgroup.procs`` by someone allowed to moves it. So where
cgroup v2 is mounted and writable (root, or a delegated subtree on systemd hosts), each query's CLI starts
inside a cgroup of its own, ``cgroup.kill`` ends everything in it at once, an empty ``cgroup.procs`` proves
that nothing is left, and ``cpu.stat`` says how much CPU the whole tree used.

Layout: ``<parent>/claude-scope-<hostpid>-<hoststart>/q-<query_id>``, where ``<parent>`` is this process's own
cgroup (or ``CLAUDE_SCOPE_CGROUP=/path``, a delegated subtree; ``CLAUDE_SCOPE_CGROUP=0`` turns this off).
The host directory names its owner by pid and start time, so a later host can tell a dead owner's
directory (kill what is in it, remove it) from a live one's (never touched).

The CLI enters its cgroup before it runs a single instruction of its own: it is started through
``/bin/sh -c 'echo $$ > cgroup.procs && exec "$@"'``, so no child can be forked outside it.

Standard library only: the guard process (``_guard.py``) uses this module too.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

try:
    from . import _procfs
except ImportError:  # loaded by path in the guard process (python -I -S), beside _procfs.py
    import _procfs  # type: ignore[no-redef,import-not-found,unused-ignore]

CGROUP_ENV = "CLAUDE_SCOPE_CGROUP"
_HOST_DIR = re.compile(r"^claude-scope-(\d+)-(\d+)$")
_SHIM = ("/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"')


@dataclass(frozen=True)
class CpuUsage:
    """CPU time the query's whole process tree used (from its cgroup's ``cpu.stat``)."""

    user_s: float
    system_s: float

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s


def _cgroup2_mounts() -> list[tuple[str, str, set[str]]]:
    """(root within the hierarchy, mount point, super options) of each cgroup2 mount, from mountinfo."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(rest) >= 3 and rest[0] == "cgroup2" and len(fields) > 4:
            found.append((fields[3], fields[4], set(rest[2].split(","))))
    return found


def own_cgroup_dir() -> Path | None:
    """This process's directory in the cgroup v2 hierarchy, or None where there is none."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None:
        return None
    for root, point, _ in _cgroup2_mounts():
        if own == root or own.startswith(root.rstrip("/") + "/"):
            return Path(point) / own[len(root):].lstrip("/")
    return None


def mount_options(directory: Path) -> set[str]:
    """The cgroup2 mount options in force for ``directory`` (e.g. ``favordynmods``): the deepest mount."""
    inside = [(point, options) for _, point, options in _cgroup2_mounts()
              if (str(directory) + "/").startswith(point.rstrip("/") + "/")]
    return max(inside, key=lambda m: len(m[0]))[1] if inside else set()


def rcu_expedited() -> bool | None:
    """Whether the kernel expedites RCU grace periods (``/sys/kernel/rcu_expedited``; None if unreadable).

    Either this or the mount's ``favordynmods`` spares a move into a cgroup its wait for a normal grace
    period; whether a move waits here is measured (``sdk_wrapper.cgroup_move_ms``), not inferred from them."""
    try:
        return Path("/sys/kernel/rcu_expedited").read_text().strip() not in ("", "0")
    except OSError:
        return None


def _parent_dir() -> tuple[Path | None, str]:
    setting = os.environ.get(CGROUP_ENV, "")
    if setting == "0":
        return None, f"{CGROUP_ENV}=0"
    if setting:
        return Path(setting), f"{CGROUP_ENV}={setting}"
    own = own_cgroup_dir()
    if own is None:
        return None, "no cgroup v2 hierarchy is mounted"
    return own, "this process's own cgroup"


class QueryCgroup:
    """One query's cgroup. Its methods never raise for a cgroup that is already gone."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def spawn_prefix(self) -> list[str]:
        """argv to put before the CLI's own: the shell moves itself into the cgroup, then execs the CLI."""
        return [*_SHIM, str(self.procs_file)]

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in self.procs_file.read_text().split()]
        except (OSError, ValueError):
            return []

    def populated(self) -> bool:
        try:
            for line in (self.path / "cgroup.events").read_text().splitlines():
                if line.startswith("populated "):
                    return line.split()[1] != "0"
        except OSError:
            return False
        return bool(self.pids())

    def kill(self) -> bool:
        """SIGKILL every process in the cgroup, in one write (``cgroup.kill``, Linux 5.14+)."""
        try:
            (self.path / "cgroup.kill").write_text("1")
            return True
        except OSError:
            return False

    def cpu(self) -> CpuUsage | None:
        try:
            stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines() if " " in line)
            return CpuUsage(int(stat["user_usec"]) / 1e6, int(stat["system_usec"]) / 1e6)
        except (OSError, KeyError, ValueError):
            return None

    def remove(self) -> bool:
        """Remove the (empty) cgroup; False while a process is still in it."""
        try:
            self.path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False


def end_cgroup(group: QueryCgroup, within_s: float) -> list[int]:
    """Kill everything in ``group`` and wait (bounded) until it is empty; return the pids still in it.

    Synchronous: for the guard and for a dead owner's leftovers; the wrapper's own ending is in _proctree.
    """
    group.kill()
    deadline = time.monotonic() + within_s
    while group.populated() and time.monotonic() < deadline:
        time.sleep(0.005)
    return group.pids()


class HostCgroup:
    """This host process's cgroup directory, holding one cgroup per running query."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def new_query(self, query_id: str) -> QueryCgroup | None:
        path = self.path / f"q-{query_id}"
        try:
            path.mkdir()
        except OSError:
            return None
        return QueryCgroup(path)

    def remove(self) -> None:
        for child in self.path.glob("q-*"):
            QueryCgroup(child).remove()
        with contextlib.suppress(OSError):
            self.path.rmdir()


def host_dir_name(pid: int, ticks: int) -> str:
    return f"claude-scope-{pid}-{ticks}"


def dead_host_dirs(parent: Path) -> list[Path]:
    """The host directories under ``parent`` whose owner (pid and start time in the name) is gone; a live
    owner's directory (another process on this host) is never among them."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return []
    dead = []
    for entry in entries:
        match = _HOST_DIR.match(entry.name)
        if match is not None and _procfs.start_ticks(int(match.group(1))) != int(match.group(2)):
            dead.append(entry)
    return dead


def reap_dead_hosts(parent: Path, within_s: float = 2.0) -> list[int]:
    """End what is left in the cgroup directories of dead hosts under ``parent`` and remove them; return the
    pids killed."""
    killed: list[int] = []
    for entry in dead_host_dirs(parent):
        for query in entry.glob("q-*"):
            group = QueryCgroup(query)
            killed += group.pids()
            end_cgroup(group, within_s)
            group.remove()
        with contextlib.suppress(OSError):
            entry.rmdir()
    return killed


@dataclass(frozen=True)
class CgroupSupport:
    """Whether per-query cgroups are in force here, and why (or why not)."""

    host: HostCgroup | None
    reason: str
    reaped: tuple[int, ...] = ()


_lock = threading.Lock()
_support: dict[int, CgroupSupport] = {}


def host_cgroup() -> CgroupSupport:
    """This process's cgroup directory, created on first use (per process: a fork gets its own).

    First use also ends what dead hosts left under the same parent. Not available where cgroup v2 is
    missing, read-only, lacks ``cgroup.kill`` (Linux < 5.14), or ``CLAUDE_SCOPE_CGROUP=0``.
    """
    if os.environ.get(CGROUP_ENV, "") == "0":  # read at each query: the switch works at any time
        return CgroupSupport(None, f"{CGROUP_ENV}=0")
    me = os.getpid()
    with _lock:
        found = _support.get(me)
        if found is None:
            found = _support[me] = _create_host()
        return found


def _create_host() -> CgroupSupport:
    parent, why = _parent_dir()
    if parent is None:
        return CgroupSupport(None, why)
    if not Path(_SHIM[0]).exists():
        return CgroupSupport(None, f"{_SHIM[0]} is missing")
    ticks = _procfs.start_ticks(os.getpid())
    if ticks is None:
        return CgroupSupport(None, "/proc is not readable")
    reaped = tuple(reap_dead_hosts(parent))
    path = parent / host_dir_name(os.getpid(), ticks)
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        return CgroupSupport(None, f"{parent} is not writable ({exc.strerror})")
    if not (path / "cgroup.kill").exists():
        with contextlib.suppress(OSError):
            path.rmdir()
        return CgroupSupport(None, "cgroup.kill is missing (Linux 5.14 or newer is needed)")
    host = HostCgroup(path)
    atexit.register(_remove_at_exit, host, os.getpid())  # a host that dies instead: the guard removes it
    return CgroupSupport(host, f"cgroup v2 under {parent} ({why})", reaped)


def _remove_at_exit(host: HostCgroup, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked child that inherited the handler
        host.remove()
