"""Who owns a run or a CLI tree: a process, named by host, pid and start time. psutil only (no SDK), so a
fast command (``status``, ``runs``) can tell a live run from one whose orchestrator died."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    """The process that owns a run or a CLI tree: host, pid and the pid's start time (a reused pid has
    another start time, so a dead owner is never mistaken for a live one)."""

    host: str
    pid: int
    start: float

    @classmethod
    def current(cls) -> Owner:
        import psutil  # here, not at import: ``status`` and ``runs`` need it only for a run still running

        return cls(socket.gethostname(), os.getpid(), psutil.Process().create_time())

    def alive(self) -> bool:
        """Whether the owner still runs. An owner on another host is taken as alive: we cannot see it."""
        return self.host != socket.gethostname() or same_process(self.pid, self.start)


def same_process(pid: int, start: float) -> bool:
    """Whether ``pid`` still names the process that started at ``start`` (psutil's create_time; a reused pid
    has a later start) and that process still runs. A zombie has ended: a ``kill -9``ed orchestrator stays
    one until PID 1 reaps it, which in a container may be never, and its run must be resumable meanwhile."""
    import psutil

    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - start) < 0.05 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
