"""``claude-scope doctor``: which process containment is in force here, proved by a real query.

It reports the facts (cgroup v2 and whether this process may use it, the subreaper, the host guard, the
CLI the SDK would run) and then runs one query against the stand-in CLI whose scenario starts a descendant
that sheds every mark (double fork, ``setsid``, ``execve`` with an empty environment): the verdict says
whether that descendant was ended and whether the cleanup could be verified. Exit 0 when a query's tree
is held (cgroup, or subreaper with the guard running), 1 when containment is weaker than that.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from claude_code_sdk import ClaudeCodeOptions

from sdk_wrapper import Containment, HostContainment, QueryLimits, cgroup_move_ms, host_containment, run_query
from sdk_wrapper.lowlevel import cap_support
from sdk_wrapper.standin import PID_FILE_ENV, install_standin, process_alive, read_pids, scenario_env

#: a move into a cgroup slower than this waits for an RCU grace period (without one it takes about 0.1 ms)
MOVE_WAIT_MS = 2.0


@dataclass(frozen=True)
class Diagnosis:
    """The host's containment (``sdk_wrapper.host_containment``) and what the probe query proved."""

    host: HostContainment
    #: what the probe query actually got (it may differ from the host's view, e.g. a CLI run as another user)
    containment: Containment
    probe_ok: bool
    probe_verified: bool
    probe_escapee_ended: bool | None
    probe_cpu_s: float | None
    probe_ms: float
    #: median milliseconds a move into a query's cgroup took here (None without cgroups)
    cgroup_move_ms: float | None = None
    #: how each cap (``memory_mb``, ``max_pids``) can be enforced here, or why not
    caps: dict[str, str] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.containment is Containment.CGROUP or (
            self.containment is Containment.SUBREAPER and self.host.guard_pid is not None)

    def to_dict(self) -> dict[str, Any]:
        probe = {key: value for key, value in asdict(self).items() if key.startswith("probe_")}
        return {**self.host.to_dict(), "containment": self.containment.value, **probe, "healthy": self.healthy,
                "cgroup_move_ms": self.cgroup_move_ms, "caps": dict(self.caps)}


async def diagnose() -> Diagnosis:
    host = host_containment()
    with tempfile.TemporaryDirectory(prefix="claude-scope-doctor-") as tmp:
        pid_file = Path(tmp, "pids")
        previous = os.environ.get(PID_FILE_ENV)
        os.environ[PID_FILE_ENV] = str(pid_file)
        try:
            scenario = {"steps": [{"spawn": {"escape": True, "seconds": 60}}, {"text": "probe"}]}
            started = time.perf_counter()
            outcome = await run_query("doctor", ClaudeCodeOptions(cwd=tmp, env=scenario_env(scenario)),
                                      cli_path=install_standin(Path(tmp, "bin")), limits=QueryLimits(timeout_s=30))
            probe_ms = (time.perf_counter() - started) * 1000
        finally:
            if previous is None:
                os.environ.pop(PID_FILE_ENV, None)
            else:
                os.environ[PID_FILE_ENV] = previous
        escaped = [pid for pid, role in read_pids(pid_file) if role == "escaped"]
        ended = None if not escaped else not process_alive(escaped[0])
        for escapee in escaped:  # the probe's own descendant: never left behind by the doctor itself
            if process_alive(escapee):
                os.kill(escapee, signal.SIGKILL)
    return Diagnosis(
        host=host, containment=outcome.cleanup.containment or Containment.MARKER, probe_ok=outcome.ok,
        probe_verified=outcome.cleanup.verified, probe_escapee_ended=ended, probe_cpu_s=outcome.cpu_s,
        probe_ms=probe_ms, cgroup_move_ms=cgroup_move_ms(), caps=cap_support(),
    )


def render(d: Diagnosis) -> str:
    host = d.host
    lines = [f"containment: {d.containment.value}" + ("" if d.healthy else "  (WEAKER THAN NEEDED, see below)"),
             f"  cgroup v2: {host.cgroup}"]
    if d.cgroup_move_ms is not None:
        lines.append(f"  moving a CLI into its cgroup: {d.cgroup_move_ms:.2f} ms (median of 3, measured now)")
        if d.cgroup_move_ms > MOVE_WAIT_MS:
            lines.append("  note: that move waits for an RCU grace period, before each query's CLI can start. Either "
                         "of two system-wide settings removes the wait: `mount -o remount,favordynmods <mount>` "
                         "(Linux 6.0+) or `echo 1 > /sys/kernel/rcu_expedited`")
    lines.append(f"  subreaper: {'yes' if host.subreaper else 'no'}")
    if host.guard_pid is not None:
        spawn = "" if host.guard_spawn_ms is None else f", started in {host.guard_spawn_ms:.2f} ms"
        lines.append(f"host guard: running (pid {host.guard_pid}{spawn}): CLI trees end if this process dies")
    else:
        lines.append(f"host guard: NOT running ({host.guard_problem}): CLI trees outlive a killed host")
    lines.append(f"claude CLI (claude-code-sdk's search): {host.cli}")
    escapee = {True: "ended", False: "STILL RUNNING (reported, not verified)", None: "not started"}
    lines.append(f"probe: a query whose descendant sheds every mark: result {'ok' if d.probe_ok else 'FAILED'}, "
                 f"descendant {escapee[d.probe_escapee_ended]}, cleanup "
                 f"{'verified' if d.probe_verified else 'NOT verified'}"
                 + ("" if d.probe_cpu_s is None else f", CPU {d.probe_cpu_s:.3f} s") + f", {d.probe_ms:.0f} ms")
    for controller, key in (("memory", "memory_mb"), ("pids", "max_pids")):
        lines.append(f"{key}: {d.caps.get(controller, 'not checked')}")
    return "\n".join(lines)


def render_json(d: Diagnosis) -> str:
    return json.dumps(d.to_dict())
