"""Ending a CLI's whole process tree, and proving it ended.

The CLI starts in its own session, so its process group holds the CLI and whatever it spawns directly.
Descendants can leave that group (the real CLI runs its Bash tool in a new session), and when the CLI dies
they are reparented away from it. Two measures keep them findable:

- every CLI gets ``CLAUDE_SCOPE_QUERY_ID`` in its environment, which descendants inherit;
- on Linux this process becomes a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``), so orphans of the
  tree are reparented to us rather than to init, and are found among our children by that marker.

The tree is recorded before any signal is sent (signals change it), then: SIGTERM to the group and every
recorded pid, SIGKILL after the grace, and a final check with psutil. Orphans that come back to us are
reaped by pid (only pids recorded here, so asyncio's own child watcher is never robbed).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import anyio
import psutil

from . import _procfs
from ._cgroup import QueryCgroup

MARKER_ENV = _procfs.MARKER_ENV
SUBREAPER_ENV = "CLAUDE_SCOPE_SUBREAPER"
_PR_SET_CHILD_SUBREAPER = 36
_subreaper_lock = threading.Lock()
_subreaper_state: bool | None = None


def enable_subreaper() -> bool:
    """Make this process a child subreaper (Linux); idempotent. ``CLAUDE_SCOPE_SUBREAPER=0`` opts out.

    Returns whether this process is a subreaper. Elsewhere orphans are still found by their marker,
    with a scan of all processes (slower, same result).
    """
    global _subreaper_state
    with _subreaper_lock:
        if _subreaper_state is not None:
            return _subreaper_state
        _subreaper_state = False
        if sys.platform.startswith("linux") and os.environ.get(SUBREAPER_ENV, "1") != "0":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
                _subreaper_state = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
            except (OSError, AttributeError):
                _subreaper_state = False
        return _subreaper_state


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def descendants(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid`` (empty if it is gone)."""
    pending = _procfs.children(pid)
    if pending is None:
        with contextlib.suppress(psutil.Error):
            return psutil.Process(pid).children(recursive=True)
        return []
    out: list[psutil.Process] = []
    seen: set[int] = set()
    while pending:
        child = pending.pop()
        if child in seen:
            continue
        seen.add(child)
        with contextlib.suppress(psutil.Error):
            out.append(psutil.Process(child))
        more = _procfs.children(child)
        if more is None:
            with contextlib.suppress(psutil.Error):
                out += [p for p in psutil.Process(child).children(recursive=True) if p.pid not in seen]
        else:
            pending += more
    return out


def snapshot_tree(root_pid: int | None, marker: str, *, everywhere: bool = False,
                  cgroup: QueryCgroup | None = None) -> dict[int, psutil.Process]:
    """Every live process of the tree: descendants of the root, marked orphans (see module doc), and
    everything in the query's cgroup.

    ``everywhere`` scans every process for the marker, for trees whose owner died (their orphans went
    to init, not to us)."""
    found: dict[int, psutil.Process] = {}
    if cgroup is not None:
        for pid in cgroup.pids():
            with contextlib.suppress(psutil.Error):
                found[pid] = psutil.Process(pid)
    if root_pid is not None:
        with contextlib.suppress(psutil.Error):
            found[root_pid] = psutil.Process(root_pid)
            for child in descendants(root_pid):
                found[child.pid] = child
    # As subreaper, orphans of the tree are among our own descendants; otherwise they may be anywhere.
    mine = _subreaper_state and not everywhere
    candidates = descendants(os.getpid()) if mine else list(psutil.process_iter())
    for proc in candidates:
        if proc.pid not in found and proc.pid != os.getpid() and _procfs.has_marker(proc.pid, marker):
            found[proc.pid] = proc
            for child in descendants(proc.pid):
                found[child.pid] = child
    return {pid: p for pid, p in found.items() if _alive(p)}


@dataclass
class TreeEnding:
    """What ``end_tree`` did; turned into a CleanupReport by the transport."""

    pids: tuple[int, ...]
    signals: list[tuple[int, str]]
    sigkill_needed: bool
    leftover: tuple[int, ...]


def _signal(pid: int, sig: signal.Signals, sent: list[tuple[int, str]], group: bool = False) -> None:
    try:
        if group:
            os.killpg(pid, sig)
            sent.append((-pid, sig.name))
        else:
            os.kill(pid, sig)
            sent.append((pid, sig.name))
    except (ProcessLookupError, PermissionError):
        pass


def _signal_tree(tree: Iterable[int], group_of: int | None, sig: signal.Signals, sent: list[tuple[int, str]]) -> None:
    """``sig`` to the root's process group (``group_of``, when it has one) and to every other pid of ``tree``."""
    if group_of is not None:
        _signal(group_of, sig, sent, group=True)
    for pid in tree:
        if pid != group_of:
            _signal(pid, sig, sent)


def _reap(pids: list[int]) -> None:
    """Collect zombies among recorded pids that are our own children (orphans handed to the subreaper)."""
    me = os.getpid()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.ppid() == me and proc.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError, OSError):
            pass


async def _wait_gone(procs: dict[int, psutil.Process], skip: int | None, within_s: float) -> list[int]:
    """Poll until every process (but ``skip``, waited for by its owner) is gone; return the survivors."""
    deadline = time.monotonic() + within_s
    delay = 0.002
    while True:
        _reap([pid for pid in procs if pid != skip])
        alive = [pid for pid, p in procs.items() if pid != skip and _alive(p)]
        if not alive or time.monotonic() >= deadline:
            _reap([pid for pid in procs if pid != skip])  # those that died since the reap just above
            return alive
        await anyio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.05)


async def end_tree(
    root_pid: int | None,
    marker: str,
    *,
    wait_root: Callable[[], Awaitable[object]] | None,
    terminate_grace_s: float,
    kill_grace_s: float,
    everywhere: bool = False,
    cgroup: QueryCgroup | None = None,
) -> TreeEnding:
    """SIGTERM, then SIGKILL, the whole tree; return what was sent and what (if anything) survived.

    Must run shielded: it is cleanup. ``wait_root`` waits for the root through its owner (anyio's
    ``process.wait()``), which reaps it; psutil would only see a zombie. With a ``cgroup``, its members
    are part of the tree whatever their session or environment, SIGKILL is ``cgroup.kill``, and the tree
    has ended only once the cgroup is empty.
    """
    tree = snapshot_tree(root_pid, marker, everywhere=everywhere, cgroup=cgroup)
    sent: list[tuple[int, str]] = []
    if not tree:
        return TreeEnding((), sent, False, ())
    root_alive = root_pid in tree
    group = root_pid is not None and (root_alive or _group_has_members(tree, root_pid))
    _signal_tree(tree, root_pid if group else None, signal.SIGTERM, sent)
    survivors = await _wait_phase(tree, root_pid, wait_root if root_alive else None, terminate_grace_s)
    sigkill = bool(survivors)
    if survivors:
        # New children may have appeared while SIGTERM was handled; record again before killing.
        tree.update(snapshot_tree(root_pid, marker, everywhere=everywhere, cgroup=cgroup))
        if cgroup is not None:
            cgroup.kill()
            sent.append((0, "cgroup.kill"))
        _signal_tree(tree, root_pid if group else None, signal.SIGKILL, sent)
        survivors = await _wait_phase(tree, root_pid, wait_root if root_alive else None, kill_grace_s)
    late = await _end_stragglers(tree, marker, sent, kill_grace_s, everywhere, cgroup)
    if cgroup is not None:
        survivors = sorted(set(survivors) | set(await _cgroup_emptied(cgroup, sent, kill_grace_s)))
    return TreeEnding(tuple(tree), sent, sigkill or bool(late), tuple(survivors))


async def end_query_tree(query_id: str, root_pid: int | None = None, *, terminate_grace_s: float = 3.0,
                         kill_grace_s: float = 2.0) -> tuple[int, ...]:
    """End every process of the query ``query_id`` still running anywhere on this host (its root, if
    ``root_pid`` is given and still that process, and whatever carries its ``CLAUDE_SCOPE_QUERY_ID``);
    return the pids ended. Shielded. For a query whose owner is gone (an orchestrator's orphaned CLI):
    a live query's own scope ends its tree itself."""
    with anyio.CancelScope(shield=True):
        ending = await end_tree(root_pid, query_id, wait_root=None, terminate_grace_s=terminate_grace_s,
                                kill_grace_s=kill_grace_s, everywhere=True)
    return ending.pids


async def _cgroup_emptied(cgroup: QueryCgroup, sent: list[tuple[int, str]], within_s: float) -> list[int]:
    """Wait until the cgroup is empty (``cgroup.kill`` first if anything is in it); return what is not gone."""
    if not cgroup.populated():
        return []
    if cgroup.pids():
        cgroup.kill()
        sent.append((0, "cgroup.kill"))
    deadline = time.monotonic() + within_s
    delay = 0.001
    while cgroup.populated() and time.monotonic() < deadline:
        _reap(cgroup.pids())
        await anyio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return [pid for pid in cgroup.pids() if _procfs.alive(pid)]


async def _end_stragglers(tree: dict[int, psutil.Process], marker: str, sent: list[tuple[int, str]],
                          kill_grace_s: float, everywhere: bool, cgroup: QueryCgroup | None,
                          rounds: int = 3) -> list[int]:
    """SIGKILL processes of the tree born while it was being ended, and return them.

    A fork can land between the snapshot and the signals: a child that then leaves the session (as the
    real CLI's Bash tool does) is in neither the snapshot nor the group, and comes back to us, marked,
    when the CLI dies. Found by the marker, each round; bounded.
    """
    late: list[int] = []
    for _ in range(rounds):
        found = {pid: p for pid, p in snapshot_tree(None, marker, everywhere=everywhere, cgroup=cgroup).items()
                 if pid not in tree}
        if not found:
            break
        for pid in found:
            _signal(pid, signal.SIGKILL, sent)
        tree.update(found)
        late += list(found)
        await _wait_gone(found, None, kill_grace_s)
    return late


def _group_has_members(tree: dict[int, psutil.Process], pgid: int) -> bool:
    # Once the root is reaped its pid may be reused; signal the group only while our tree is in it.
    for pid in tree:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pgid:
                return True
    return False


async def _wait_phase(
    tree: dict[int, psutil.Process],
    root_pid: int | None,
    wait_root: Callable[[], Awaitable[object]] | None,
    within_s: float,
) -> list[int]:
    start = time.monotonic()
    survivors: list[int] = []
    if wait_root is not None and root_pid is not None:
        done = False
        with anyio.move_on_after(within_s):
            await wait_root()
            done = True
        if not done:
            survivors.append(root_pid)
    remaining = max(0.0, within_s - (time.monotonic() - start))
    survivors += await _wait_gone(tree, root_pid if wait_root is not None else None, remaining)
    return survivors


#: CLI roots this process started and has not finished ending (for ``unattributed_children``).
live_roots: set[int] = set()


def unattributed_children(since_ticks: int, exclude: set[int]) -> list[int]:
    """Processes reparented to us (the subreaper) since ``since_ticks`` that nothing proves are ours.

    Without a cgroup, a descendant that left the CLI's session *and* dropped the marker (``setsid`` and an
    ``execve`` with an empty environment) cannot be told from anything else that became our child. We do
    not kill what we cannot prove is ours; we report it, so a cleanup is never called verified on faith.
    Excluded: ``exclude``; processes of our own session (subprocesses the host started itself); live CLI
    roots and their sessions (other queries'); anything carrying a query id (ours were ended; others
    belong to their own query); anything started before ``since_ticks``.
    """
    me, my_sid = os.getpid(), os.getsid(0)
    found = []
    for pid in _procfs.children(me) or []:
        ids = _procfs.stat_ids(pid)
        if pid in exclude or pid in live_roots or ids is None or ids[0] in ("Z", "X"):
            continue
        if ids[3] == my_sid or ids[3] in live_roots:
            continue
        ticks = _procfs.start_ticks(pid)
        if ticks is None or ticks < since_ticks or _procfs.marker_of(pid) is not None:
            continue
        found.append(pid)
    return found
