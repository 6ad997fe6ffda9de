"""What holds a query's process tree on this host, as facts a user (or ``claude-scope doctor``) can check.

The pieces live in their own modules (``_cgroup``, ``_proctree``, ``_guard``); this is the one public view
of them, so nothing outside the package reads their internals.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Any

from claude_code_sdk import ClaudeCodeOptions

from .._options import resolve_cli
from .._outcome import Containment
from ._cgroup import HostCgroup, end_cgroup, host_cgroup, mount_options, rcu_expedited
from ._guard import ensure_guard, guard_status
from ._proctree import enable_subreaper


@dataclass(frozen=True)
class HostContainment:
    """The containment a query started now would get, and why."""

    #: the strongest one in force: cgroup, subreaper or marker
    containment: Containment
    #: why per-query cgroups are (not) in force
    cgroup: str
    #: whether the cgroup2 mount has favordynmods (None without cgroups): without it, or expedited RCU
    #: grace periods, a move into a cgroup may wait for a grace period (10 ms measured); cgroup_move_ms says
    cgroup_favordynmods: bool | None
    #: whether the kernel expedites RCU grace periods (None where it cannot be read)
    rcu_expedited: bool | None
    subreaper: bool
    #: the host guard (ends registered trees if this process dies); None with the reason when not running
    guard_pid: int | None
    guard_spawn_ms: float | None
    guard_problem: str | None
    #: the CLI the SDK's own search finds, or why none
    cli: str

    @property
    def holds_trees(self) -> bool:
        """A query's whole tree is held: by a cgroup, or by the subreaper with the guard running."""
        return self.containment is Containment.CGROUP or (
            self.containment is Containment.SUBREAPER and self.guard_pid is not None)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "containment": self.containment.value}


def host_containment() -> HostContainment:
    """Check (and set up, as the first query would: the cgroup directory, the subreaper, the guard)."""
    support = host_cgroup()
    subreaper = enable_subreaper()
    ensure_guard()
    pid, spawn_s, problem = guard_status()
    if support.host is not None:
        containment = Containment.CGROUP
    else:
        containment = Containment.SUBREAPER if subreaper else Containment.MARKER
    try:
        cli = resolve_cli(None, ClaudeCodeOptions())
    except Exception as exc:  # the SDK's CLINotFoundError, or CLIPathError for a bad CLAUDE_SCOPE_CLI
        cli = f"not found ({type(exc).__name__})"
    return HostContainment(
        containment=containment, cgroup=support.reason,
        cgroup_favordynmods=None if support.host is None else "favordynmods" in mount_options(support.host.path),
        rcu_expedited=rcu_expedited(),
        subreaper=subreaper, guard_pid=pid, guard_spawn_ms=None if spawn_s is None else spawn_s * 1000,
        guard_problem=problem, cli=cli,
    )


def cgroup_move_ms(samples: int = 3) -> float | None:
    """Median milliseconds a move into a query's cgroup takes on this host (the wait each query's CLI has
    before it starts); None without per-query cgroups. For ``doctor``: about ``samples`` x 0.2 s."""
    support = host_cgroup()
    return None if support.host is None else _time_move(support.host, samples)


def _time_move(host: HostCgroup, samples: int = 3, gap_s: float = 0.2) -> float | None:
    """Median milliseconds one write to ``cgroup.procs`` takes here, as each query's shell makes it: a
    sleeping child moved into a throwaway cgroup, ``gap_s`` apart (back-to-back moves share one grace
    period and would hide the wait). None where no cgroup could be made."""
    times: list[float] = []
    for number in range(samples):
        group = host.new_query(f"move-probe-{os.getpid()}-{number}")
        if group is None:
            return None
        try:
            with subprocess.Popen(["sleep", "30"]) as child:
                try:
                    time.sleep(gap_s)
                    started = time.perf_counter()
                    group.procs_file.write_text(str(child.pid))
                    times.append((time.perf_counter() - started) * 1000)
                finally:
                    child.kill()
        except OSError:
            return None
        finally:
            end_cgroup(group, within_s=2.0)
            group.remove()
    return sorted(times)[len(times) // 2]
