"""The host guard: one small process per host process that ends every running CLI tree if the host dies.

A host killed by SIGKILL, the OOM killer or a container stop runs no ``finally``; its CLIs (in sessions of
their own) would run on, and for a library user nothing would ever reap them. So on the first query this
process starts a guard (``python -I -S _guard.py``, standard library only, a few MB) in a session of its
own, holding the read end of a pipe whose only write end is ours. Each query registers its CLI (pid, start
time, query id, cgroup) before the CLI can do anything and unregisters once its tree is gone. When the
host dies the kernel closes the pipe; on that EOF the guard ends every tree still registered (SIGTERM,
1 s grace, SIGKILL or ``cgroup.kill``), removes the host's cgroup directory and exits. A host that exits
normally closes the pipe with nothing registered: the guard just exits.

Not ``PR_SET_PDEATHSIG``: anyio's ``open_process`` takes no ``preexec_fn`` (and one would rule out
``posix_spawn``), the signal follows the *thread* that forked (an event loop in a worker thread that ends
would kill live CLIs), and it reaches only the CLI, not the descendants that left its session.

The guard is process-wide state by nature (one per host process, shared by every event loop and thread;
it holds no loop object). After ``fork`` the child drops its copy of the pipe, so a forked child never keeps
the guard from seeing its host die, and starts its own guard if it runs queries. ``CLAUDE_SCOPE_GUARD=0``
turns the guard off.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

if __package__:
    from . import _cgroup, _procfs
else:  # the guard process: python -I -S path/_guard.py
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _cgroup  # type: ignore[no-redef,import-not-found,unused-ignore]
    import _procfs  # type: ignore[no-redef,import-not-found,unused-ignore]

GUARD_ENV = "CLAUDE_SCOPE_GUARD"
TERM_GRACE_S = 1.0


# -- host side ---------------------------------------------------------------------------------------------
class _HostGuard:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.entries: dict[str, str] = {}
        self.spawn_s: float | None = None
        self.error: str | None = None

    def _start(self) -> tuple[IO[bytes] | None, bool]:
        """The pipe to a running guard (started if need be), and whether it was just started (then it has
        been sent every entry already)."""
        if self.proc is not None and self.proc.poll() is None and self.proc.stdin is not None:
            return self.proc.stdin, False
        self._drop()  # a guard that died: close our end of its pipe before starting another
        if os.environ.get(GUARD_ENV, "1") == "0":
            self.error = f"{GUARD_ENV}=0"
            return None, False
        started = time.perf_counter()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid())],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True, cwd="/",
            )
        except OSError as exc:
            self.error = f"the guard could not start: {exc.strerror}"
            return None, False
        self.spawn_s = time.perf_counter() - started
        self.error = None
        assert self.proc.stdin is not None
        for line in self.entries.values():  # a guard that died: the new one learns what is running
            self.proc.stdin.write(line.encode())
        return self.proc.stdin, True

    def send(self, key: str, line: str | None) -> bool:
        with self.lock:
            if line is None:
                if self.entries.pop(key, None) is None:
                    return True
                line = f"- {key}\n"
            else:
                if self.entries.get(key) == line and self.proc is not None and self.proc.poll() is None:
                    return True  # already told
                self.entries[key] = line
            for _ in range(2):  # a dead guard is replaced once
                pipe, fresh = self._start()
                if pipe is None:
                    return False
                try:
                    if not fresh:  # a fresh guard was sent every entry, this one included, by _start
                        pipe.write(line.encode())
                    pipe.flush()
                    return True
                except (BrokenPipeError, ValueError, OSError):
                    self._drop()
            return False

    def _drop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                self.proc.wait(timeout=0)
        self.proc = None

    def pid(self) -> int | None:
        with self.lock:
            return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def forget_after_fork(self) -> None:
        # The child must not hold the parent's pipe (the guard would not see the parent die), nor reap or
        # signal the parent's guard: it only closes its copy of the write end.
        self.lock = threading.Lock()
        if self.proc is not None:
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()  # the child's copy of the write end, through its own file object
            _inherited.append(self.proc)  # the parent's guard: never waited for or collected here
        self.proc = None
        self.entries = {}
        self.spawn_s = None


_inherited: list[subprocess.Popen[bytes]] = []
_host = _HostGuard()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_host.forget_after_fork)


def guard_register(query_id: str, pid: int, ticks: int, cgroup: str | None) -> bool:
    """Tell the guard about a running CLI; False if no guard runs (its reason: ``guard_status()``)."""
    return _host.send(query_id, f"+ {query_id} {pid} {ticks} {cgroup or '-'}\n")


def guard_unregister(query_id: str) -> None:
    _host.send(query_id, None)


def guard_host_cgroup(path: str) -> bool:
    """Have the guard remove this host's cgroup directory when the host dies."""
    return _host.send("host-cgroup", f"c {path}\n")


def guard_pid() -> int | None:
    """The running guard's pid (None before the first query, or when the guard is off)."""
    return _host.pid()


def guard_status() -> tuple[int | None, float | None, str | None]:
    """(pid, seconds its start took, why there is none)."""
    return _host.pid(), _host.spawn_s, _host.error


def ensure_guard() -> int | None:
    """Start the guard now rather than at the first query; return its pid."""
    with _host.lock:
        _host._start()  # returns the pipe; nothing to send yet
    return _host.pid()


# -- guard side --------------------------------------------------------------------------------------------
def _tree(query_id: str, pid: int, ticks: int) -> set[int]:
    roots: set[int] = set()
    if _procfs.start_ticks(pid) == ticks:
        roots.add(pid)
    for other in _procfs.all_pids():
        ids = _procfs.stat_ids(other)
        if ids is None:
            continue
        same_session = ids[3] == pid and (_procfs.start_ticks(other) or 0) >= ticks
        if same_session or _procfs.has_marker(other, query_id):
            roots.add(other)
    return _procfs.with_descendants(roots)


def _signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def end_registered(entries: dict[str, tuple[int, int, str | None]], grace_s: float = TERM_GRACE_S) -> set[int]:
    """End every registered tree: SIGTERM, ``grace_s`` to exit, then SIGKILL (``cgroup.kill`` where there is a
    cgroup), and a last search for stragglers. Returns the pids signalled."""
    groups = [_cgroup.QueryCgroup(Path(cg)) for _, _, cg in entries.values() if cg]
    found: set[int] = set()
    for query_id, (pid, ticks, _) in entries.items():
        found |= _tree(query_id, pid, ticks)
    for group in groups:
        found |= set(group.pids())
    _signal_all(found, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_procfs.alive(p) for p in found):
        time.sleep(0.01)
    for group in groups:
        group.kill()
    _signal_all({p for p in found if _procfs.alive(p)}, signal.SIGKILL)
    for query_id, (pid, ticks, _) in entries.items():  # born while we were ending the rest
        late = {p for p in _tree(query_id, pid, ticks) if p not in found}
        _signal_all(late, signal.SIGKILL)
        found |= late
    for group in groups:
        _cgroup.end_cgroup(group, 1.0)
        group.remove()
    return found


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is for the host, not for its guard
    entries: dict[str, tuple[int, int, str | None]] = {}
    host_dirs: list[str] = []
    for raw in sys.stdin.buffer:
        parts = raw.decode(errors="replace").split()
        if len(parts) == 5 and parts[0] == "+":
            entries[parts[1]] = (int(parts[2]), int(parts[3]), None if parts[4] == "-" else parts[4])
        elif len(parts) == 2 and parts[0] == "-":
            entries.pop(parts[1], None)
        elif len(parts) == 2 and parts[0] == "c":
            host_dirs.append(parts[1])
    if entries:
        end_registered(entries)
    for directory in host_dirs:  # also a CLI the host started but had no time to register
        for query in Path(directory).glob("q-*"):
            _cgroup.end_cgroup(_cgroup.QueryCgroup(query), 1.0)
        _cgroup.HostCgroup(Path(directory)).remove()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
