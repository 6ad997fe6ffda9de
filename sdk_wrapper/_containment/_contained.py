"""One process tree we start and must end, contained as a query's CLI is: the CLI's own, and a check's.

``ContainedTree`` holds what containment needs: the tree's marker (its processes carry it in their
environment as ``CLAUDE_SCOPE_QUERY_ID``), a cgroup of its own where one can be made (else our
subreaper, else the marker alone), the guard's record of it (so a ``kill -9`` of this process does not
leave it running), and ``end``: SIGTERM, SIGKILL, ``cgroup.kill``, then a check that nothing is left,
as a ``CleanupReport``. The transport starts the CLI through it; ``run_contained`` runs any command
through it to its end (the orchestrator's check commands), so a check's background child is ended and
verified gone as a query's would be.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from subprocess import DEVNULL, PIPE, STDOUT
from typing import Any

import anyio
import anyio.abc
import psutil

from .._logging import get_logger
from .._outcome import CleanupReport, Containment, SpawnedCLI
from .._redact import redact_tail
from . import _procfs
from ._caps import CapGroups, Caps, join_script, make_caps
from ._cgroup import CpuUsage, QueryCgroup, host_cgroup, host_dir_name
from ._guard import guard_host_cgroup, guard_pid, guard_register, guard_unregister
from ._proctree import MARKER_ENV, enable_subreaper, end_tree, live_roots, snapshot_tree, unattributed_children


class ContainedTree:
    """The containment of one tree, from before its root is spawned until it is verified gone."""

    def __init__(self, marker: str, caps: Caps | None = None) -> None:
        self.marker = marker
        self.caps = caps
        self.capped: CapGroups | None = None
        #: the caps' evidence as read when the tree was ended, before their cgroups were removed
        self.final_hit = ""
        self.cgroup: QueryCgroup | None = None
        self.containment = Containment.SUBREAPER if enable_subreaper() else Containment.MARKER
        self.spawn_ticks = 0

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` to spawn: moved into a cgroup of its own first, where one can be made (the shell that
        moves it cannot move into another user's cgroup: run as ourselves only)."""
        support = host_cgroup()
        self.cgroup = None if support.host is None else support.host.new_query(self.marker)
        if self.caps is not None:  # CapsError when they cannot be set: nothing has been spawned yet
            host = support.host.path.name if support.host is not None else host_dir_name(
                os.getpid(), _procfs.start_ticks(os.getpid()) or 0)
            try:
                self.capped = make_caps(self.caps, self.marker, host, None if self.cgroup is None else self.cgroup.path)
            except BaseException:
                self.spawn_failed()
                raise
        extra = [] if self.capped is None else self.capped.procs_files()
        if support.host is not None and self.cgroup is not None:
            guard_host_cgroup(str(support.host.path))
            self.containment = Containment.CGROUP
            if not extra:
                return [*self.cgroup.spawn_prefix(), *argv]
        if not extra and self.cgroup is None:
            return argv
        # the shell joins every cgroup (its v2 one, each cap's v1 one), then becomes the CLI
        joined = [*([] if self.cgroup is None else [self.cgroup.procs_file]), *extra]
        return ["/bin/sh", "-c", join_script(joined) + ' && exec "$@"', "claude-scope-join", *argv]

    def caps_hit(self) -> str:
        """The kernel's evidence that the tree hit a cap ("" if none; see ``_caps``)."""
        return self.final_hit if self.capped is None else self.capped.hit()

    def kill_capped(self, within_s: float = 1.0) -> None:
        """The tree hit a cap: SIGKILL all of it at once (a fork bomb refills a tree that is ended politely,
        one process at a time): ``cgroup.kill`` where it has a v2 cgroup, else every pid in its caps' cgroups
        until they are empty. The ending that follows then finds nothing left, and verifies it."""
        if self.cgroup is not None and self.cgroup.kill():
            return
        if self.capped is None:
            return
        deadline = time.monotonic() + within_s
        while (pids := self.capped.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)
            time.sleep(0.002)

    def _release_caps(self, leftover: set[int]) -> set[int]:
        """The tree is ended: keep the caps' evidence, then remove their cgroups (anything still in one is
        left over: it holds only this tree)."""
        if self.capped is None:
            return leftover
        self.final_hit = self.capped.hit()
        leftover = leftover | set(self.capped.pids())
        if not leftover:
            self.capped.remove()
            self.capped = None
        return leftover

    def spawn_failed(self) -> None:
        """The root could not be spawned: its cgroup is removed and containment falls back."""
        if self.capped is not None:
            self.capped.remove()
            self.capped = None
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
            self.containment = Containment.SUBREAPER if enable_subreaper() else Containment.MARKER

    def spawned(self, pid: int) -> None:
        """The root is running: the guard ends its tree should this process die before ``end``."""
        live_roots.add(pid)
        self.spawn_ticks = _procfs.start_ticks(pid) or 0
        guard_register(self.marker, pid, self.spawn_ticks, None if self.cgroup is None else str(self.cgroup.path))

    async def end(self, process: anyio.abc.Process, *, started: float, terminate_grace_s: float,
                  kill_grace_s: float, log: Any, close: bool = True) -> CleanupReport:
        """End the tree rooted at ``process`` and verify it is gone. Must run shielded: it is cleanup.
        ``close``: also close the process's pipes (a caller still reading them closes them itself)."""
        ending = await end_tree(
            process.pid if process.returncode is None else None,
            self.marker,
            wait_root=process.wait,
            terminate_grace_s=terminate_grace_s,
            kill_grace_s=kill_grace_s,
            cgroup=self.cgroup,
        )
        if process.pid not in ending.pids and process.returncode is None:
            # The root had just exited between checks; collect its status.
            with anyio.move_on_after(kill_grace_s):
                await process.wait()
        for target, sig in ending.signals:
            log.info("cleanup.signal", target=target, signal=sig)
        if close:
            with anyio.move_on_after(kill_grace_s):
                await process.aclose()
        leftover = set(ending.leftover) | set(snapshot_tree(None, self.marker, cgroup=self.cgroup))
        leftover = self._release_caps(leftover)
        cpu: CpuUsage | None = None
        unattributed: tuple[int, ...] = ()
        if self.cgroup is not None:
            cpu = self.cgroup.cpu()
            if not leftover:
                self.cgroup.remove()
        else:
            exclude = set(ending.pids) | {p for p in (guard_pid(),) if p is not None}
            unattributed = tuple(unattributed_children(self.spawn_ticks, exclude))
        live_roots.discard(process.pid)
        if not leftover:
            guard_unregister(self.marker)  # a tree that is not gone stays the guard's, should we die
        report = CleanupReport(
            pids_ended=tuple(sorted(ending.pids)),
            signals_sent=tuple(ending.signals),
            sigkill_needed=ending.sigkill_needed,
            leftover_pids=tuple(sorted(leftover)),
            exit_code=process.returncode,
            duration_s=time.monotonic() - started,
            containment=self.containment,
            cpu=cpu,
            unattributed_pids=unattributed,
        )
        if unattributed:
            log.warning("cleanup.unattributed", pids=list(unattributed), containment=self.containment.value)
        log.info("cleanup.verified", clean=report.clean, verified=report.verified, leftover=list(leftover),
                 containment=self.containment.value, seconds=round(report.duration_s, 4))
        return report

    async def end_unseen(self, *, started: float, terminate_grace_s: float, kill_grace_s: float,
                         log: Any) -> CleanupReport:
        """The spawn was cancelled inside ``open_process``: the root may have been forked, and have forked
        children of its own, before we got its pid; the event loop kills only the child it spawned
        (asyncio: ``transp.close()``). Its descendants carry the marker and sit in the cgroup: end what is
        there, looking everywhere (without our pid they may have gone to init), and report it."""
        ending = await end_tree(None, self.marker, wait_root=None, terminate_grace_s=terminate_grace_s,
                                kill_grace_s=kill_grace_s, everywhere=True, cgroup=self.cgroup)
        leftover = set(ending.leftover) | set(snapshot_tree(None, self.marker, everywhere=True, cgroup=self.cgroup))
        leftover = self._release_caps(leftover)
        if self.cgroup is not None and not leftover:
            self.cgroup.remove()
        if ending.pids:
            log.warning("cleanup.unseen_cli", pids=list(ending.pids), leftover=sorted(leftover))
        return CleanupReport(pids_ended=tuple(sorted(ending.pids)), signals_sent=tuple(ending.signals),
                             sigkill_needed=ending.sigkill_needed, leftover_pids=tuple(sorted(leftover)),
                             duration_s=time.monotonic() - started, containment=self.containment)


@dataclass(frozen=True)
class CommandOutcome:
    """How a contained command ended. ``exit_code`` is the root's (negative: the signal that ended it);
    ``output`` the tail of its stdout and stderr together, secrets redacted; ``cleanup`` what ending its
    whole tree took (a background child it left is in ``pids_ended``; ``leftover_pids`` must be empty)."""

    argv: tuple[str, ...]
    #: the root's pid: anything else in ``cleanup.pids_ended`` was left running by it
    pid: int
    exit_code: int | None
    output: str
    timed_out: bool
    duration_s: float
    cleanup: CleanupReport = field(default_factory=CleanupReport)
    #: the kernel's evidence that the tree hit a cap (``caps``), "" if none
    cap_hit: str = ""


async def run_contained(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    timeout_s: float | None = None,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    output_bytes: int = 4000,
    terminate_grace_s: float = 3.0,
    kill_grace_s: float = 2.0,
    on_spawn: Callable[[SpawnedCLI], None] | None = None,
    log: Any = None,
    caps: Caps | None = None,
) -> CommandOutcome:
    """Run ``argv`` as a query's CLI runs: its own session, the marker, its own cgroup where possible,
    the guard's record. When its root exits, or ``timeout_s`` passes, or the caller is cancelled, its whole
    tree is ended and verified gone (a child it left in the background is ended, not waited for).

    ``stdin`` is written and closed (None: no input). Raises ``OSError`` when ``argv`` cannot be started."""
    log = log or get_logger()
    tree = ContainedTree(uuid.uuid4().hex, caps)
    started = time.monotonic()
    full_env = {**os.environ, **(env or {}), MARKER_ENV: tree.marker}
    # Only a program we can see is executable goes through the cgroup's shell: for any other, the spawn's
    # own OSError says what is wrong (the shell would turn it into an exit 127).
    spawn_argv = tree.wrap(list(argv)) if argv and _runnable(argv[0], cwd, full_env.get("PATH")) else list(argv)
    try:
        process = await anyio.open_process(
            spawn_argv, stdin=DEVNULL if stdin is None else PIPE, stdout=PIPE, stderr=STDOUT, cwd=cwd,
            env=full_env, start_new_session=True)
    except OSError:
        tree.spawn_failed()
        raise
    tree.spawned(process.pid)
    if on_spawn is not None:
        try:
            created = psutil.Process(process.pid).create_time()
        except psutil.Error:
            created = 0.0
        on_spawn(SpawnedCLI(process.pid, created, tree.marker))
    output = bytearray()
    eof = anyio.Event()
    cleanup: CleanupReport | None = None
    timed_out = False

    async def read() -> None:
        assert process.stdout is not None
        with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            async for chunk in process.stdout:
                output.extend(chunk)
                del output[:-output_bytes * 2]
        eof.set()

    async def feed() -> None:
        assert process.stdin is not None and stdin is not None
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await process.stdin.send(stdin)
        with contextlib.suppress(OSError):
            await process.stdin.aclose()

    async def end_tree() -> CleanupReport:
        with anyio.CancelScope(shield=True):  # cleanup: a cancellation from outside waits for it
            report = await tree.end(process, started=started, terminate_grace_s=terminate_grace_s,
                                    kill_grace_s=kill_grace_s, log=log, close=False)
        return report

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            if stdin is not None:
                tg.start_soon(feed)
            with anyio.move_on_after(timeout_s) as waiting:
                async with anyio.create_task_group() as watching:
                    if caps is not None:
                        watching.start_soon(_stop_when_capped, tree, watching.cancel_scope)
                    await process.wait()
                    watching.cancel_scope.cancel()
            timed_out = waiting.cancelled_caught
            cleanup = await end_tree()
            with anyio.move_on_after(kill_grace_s):  # its writers are gone: the rest of its output
                await eof.wait()
            tg.cancel_scope.cancel()
    finally:
        if cleanup is None:  # cancelled from outside: end the tree all the same
            cleanup = await end_tree()
        with anyio.CancelScope(shield=True), anyio.move_on_after(kill_grace_s):
            await process.aclose()
    assert cleanup is not None
    return CommandOutcome(tuple(argv), process.pid, process.returncode, redact_tail(bytes(output), output_bytes, False),
                          timed_out, time.monotonic() - started, cleanup, tree.caps_hit())


async def until_capped(hit: Callable[[], str], kill: Callable[[], None], every_s: float = 0.1) -> str:
    """Poll a tree's caps (the kernel offers no event for this that a task can wait on); at the first hit,
    SIGKILL the whole tree at once (``kill``: a fork bomb refills a tree that is ended politely) and return
    the kernel's evidence. Used by the query pump and by ``run_contained``."""
    while True:
        found = hit()
        if found:
            kill()
            return found
        await anyio.sleep(every_s)


async def _stop_when_capped(tree: ContainedTree, scope: anyio.CancelScope) -> None:
    await until_capped(tree.caps_hit, tree.kill_capped)
    scope.cancel()  # stop waiting for it: it is ended as at any other end


def _runnable(program: str, cwd: str | os.PathLike[str] | None, path: str | None) -> bool:
    if os.sep in program:
        target = os.path.join(cwd or ".", program)
        return os.path.isfile(target) and os.access(target, os.X_OK)
    return shutil.which(program, path=path) is not None
