"""Our implementation of the SDK's ``Transport`` seam: one CLI process, owned and ended by us.

Differences from the SDK's ``SubprocessCLITransport`` (each fixes a row of the failure matrix):
- the CLI starts in its own session (its own process group), marked with ``CLAUDE_SCOPE_QUERY_ID``;
- stdout is framed by ``LineFramer`` (no chunk stripping, bounded lines); a non-JSON line is logged and
  skipped; a line that starts like JSON but does not parse is ``InvalidOutputError``;
- stderr is drained into a bounded ring, so a failure carries the CLI's last words (redacted);
- ``close()`` is shielded, bounded and idempotent: stdin EOF, a short wait if the CLI already sent its
  result, SIGTERM to the group and tree, SIGKILL after the grace, then a verification. It returns a
  ``CleanupReport``;
- errors are kept on ``self.error`` with their type, because the SDK's reader flattens any exception
  from a transport into a plain ``Exception(str)``.

The command line itself is built by the SDK (its ``SubprocessCLITransport._build_command``), so options map
to flags exactly as the SDK maps them; which SDK is the query's ``Backend``. Errors are raised as that SDK's
own classes, so its ``Query`` sees the types it expects.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from subprocess import PIPE
from typing import Any, NoReturn

import anyio
import anyio.abc
from claude_code_sdk import Transport

from ._backends import Backend
from ._containment._caps import Caps, CapsError
from ._containment._contained import ContainedTree
from ._containment._proctree import MARKER_ENV
from ._errors import InvalidOutputError
from ._framing import LineFramer
from ._outcome import CleanupReport, QueryLimits
from ._redact import redact, redact_tail

#: json's own C scanner: json.loads is this plus a whitespace match on each side and an encoding sniff.
#: (JSONDecoder sets it in __init__; typeshed does not list it.)
_scan_object: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

_READ_CHUNK = 256 * 1024
#: messages decoded per batch at most (memory stays at one batch, not one 256 KiB read, of parsed dicts)
_BATCH = 64


class TransportState(enum.Enum):
    """Where a transport is in its one life: NEW -> OPEN -> CLOSING -> CLOSED (NEW -> CLOSED if the CLI never
    started). Writing needs OPEN; ``close()`` from any state ends in CLOSED with a ``cleanup`` report."""

    NEW = "new"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class ScopedTransport(Transport):
    """One CLI process for one query. Not reusable: a new query gets a new transport."""

    def __init__(
        self,
        *,
        prompt: str | AsyncIterable[dict[str, Any]],
        options: Any,
        cli_path: str,
        backend: Backend,
        query_id: str,
        limits: QueryLimits,
        log: Any,
    ) -> None:
        self._streaming = backend.always_streaming or not isinstance(prompt, str)
        self._options = options
        self._backend = backend
        self._argv = backend.build_argv(prompt, options, cli_path)
        self._cli_path = cli_path
        self.query_id = query_id
        self._limits = limits
        self._log = log
        self._process: anyio.abc.Process | None = None
        self.state = TransportState.NEW
        #: the CLI's stdin broke under a write: the SDK's is_ready() says so from then on
        self._input_broken = False
        self._stderr = bytearray()
        self._stderr_cut = False
        self._close_lock = anyio.Lock()
        self.cleanup: CleanupReport | None = None
        self.error: BaseException | None = None
        self.result_raw: dict[str, Any] | None = None
        self.pid: int | None = None
        #: for shadow mode's model of V3 on claude-code-sdk 0.0.10, which parsed reads rather than lines
        self.misaligned_reads = 0
        self.longest_line = 0
        self._stderr_done = anyio.Event()
        self._draining = False
        #: the CLI tree's containment, from connect() on
        self._tree: ContainedTree | None = None
        self._lines_read = 0
        #: open_process was entered: a CLI may exist even if we never learnt its pid (``ContainedTree.end_unseen``)
        self._spawning = False

    def caps_hit(self) -> str:
        """The kernel's evidence that the CLI's tree hit a cap of ``QueryLimits`` ("" if none)."""
        return "" if self._tree is None else self._tree.caps_hit()

    def kill_capped(self) -> None:
        """The tree hit a cap: SIGKILL all of it now (``ContainedTree.kill_capped``)."""
        if self._tree is not None:
            self._tree.kill_capped()

    # -- Transport interface -------------------------------------------------------------------------
    async def connect(self) -> None:
        if self.state is not TransportState.NEW:
            return
        limits = self._limits
        caps = None if limits.memory_mb is None and limits.max_pids is None else Caps(limits.memory_mb, limits.max_pids)
        if caps is not None and (self._options.user is not None or not os.access(self._cli_path, os.X_OK)):
            raise CapsError("memory_mb and max_pids cap the CLI in a cgroup of ours: the CLI must be an executable "
                            "run as ourselves (not options.user)")
        self._tree = tree = ContainedTree(self.query_id, caps)
        cwd = str(self._options.cwd) if self._options.cwd else None
        env = self._backend.env(self._options, MARKER_ENV, self.query_id)
        argv = self._argv
        if self._options.user is None and os.access(self._cli_path, os.X_OK):
            # A CLI we may run as ourselves goes into a cgroup of its own (the shell that moves it there
            # cannot move into another user's); a path we cannot execute keeps its plain spawn error.
            argv = tree.wrap(argv)
        self._spawning = True
        try:
            self._process = await anyio.open_process(
                argv, stdin=PIPE, stdout=PIPE, stderr=PIPE, cwd=cwd, env=env,
                start_new_session=True, user=self._options.user,
            )
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            tree.spawn_failed()
            if cwd is not None and not await anyio.Path(cwd).is_dir():
                self.error = self._backend.connection_error(f"Working directory does not exist: {cwd}")
                raise self.error from exc
            self.error = self._backend.not_found_error(f"Claude Code CLI could not be started: {self._cli_path}")
            self.error.__cause__ = exc
            raise self.error from exc
        self.pid = self._process.pid
        tree.spawned(self.pid)
        self._log.debug("cli.spawned", pid=self.pid, cli=self._cli_path)
        if not self._streaming and self._process.stdin is not None:
            await self._process.stdin.aclose()
        self.state = TransportState.OPEN

    async def write(self, data: str) -> None:
        if not self.is_ready() or self._process is None or self._process.stdin is None:
            raise self._backend.connection_error("transport is not ready for writing")
        try:
            await self._process.stdin.send(data.encode())
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self._input_broken = True
            raise self._backend.connection_error("the CLI's stdin is closed") from exc

    async def end_input(self) -> None:
        if self._process is not None and self._process.stdin is not None:
            with contextlib.suppress(Exception):
                await self._process.stdin.aclose()

    def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        return _Messages(self)

    def message_batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        """The same messages a read at a time (never an empty batch): one await per read, not per message,
        for a reader of our own that parses them itself (the code backend's string-prompt path)."""
        return _Batches(_Messages(self))

    def is_ready(self) -> bool:
        return self.state is TransportState.OPEN and not self._input_broken

    async def close(self) -> None:
        """End the process tree (shielded, bounded); later calls wait for the first one's report."""
        with anyio.CancelScope(shield=True):
            async with self._close_lock:
                if self.state is not TransportState.CLOSED:
                    self.state = TransportState.CLOSING
                    self.cleanup = await self._end()
                    self.state = TransportState.CLOSED

    # -- reading ------------------------------------------------------------------------------------
    async def _next_lines(self, framer: LineFramer) -> tuple[list[bytes], InvalidOutputError | None]:
        """The complete lines of the next stdout read (none while a line is incomplete), and the
        ``LineTooLongError`` of an over-long line in it (the lines are those before it). Lines are
        decoded as they are taken, not here: a read of 256 KiB holds thousands of them. Raises
        ``StopAsyncIteration`` at the end of the stream, the SDK's exit error for a non-zero exit, or its
        not-found error when the cgroup shell could not exec the CLI."""
        assert self._process is not None and self._process.stdout is not None
        try:
            chunk = await self._process.stdout.receive(_READ_CHUNK)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            last = framer.tail()
            if last.strip():
                return [last], None
            await self._check_exit()
            raise StopAsyncIteration from None
        lines: list[bytes] = []
        try:
            lines = framer.feed(chunk)
            if len(lines) != 1 or framer.pending:
                self.misaligned_reads += 1  # not one whole line: claude-code-sdk 0.0.10 failed on these
            framer.raise_pending()
        except InvalidOutputError as exc:
            return lines, exc
        return lines, None

    async def _check_exit(self) -> None:
        assert self._process is not None
        code = await self._process.wait()
        if code in (126, 127) and self._tree is not None and self._tree.cgroup is not None and self._lines_read == 0:
            # The cgroup shell could not exec the CLI (126: not executable, 127: not found): the CLI never
            # ran, as a direct spawn would have said with its OSError.
            self.error = self._backend.not_found_error(f"Claude Code CLI could not be started: {self._cli_path}")
            raise self.error
        if code != 0:
            self.error = self._backend.exit_error(code, self.stderr_tail())
            raise self.error

    def _decode(self, line: bytes, line_number: int) -> dict[str, Any] | None:
        if line[:1] == b"{":
            # The CLI's usual line: one object, nothing around it. Scanned once, as json.loads(bytes)
            # would (UTF-8 with surrogatepass), without its copy of the stripped line, its encoding sniff
            # and its two whitespace matches; anything else (space around it, a bad byte, more after the
            # object, not JSON) is read below exactly as before.
            try:
                text = line.decode("utf-8", "surrogatepass")
                data, end = _scan_object(text, 0)
            except (UnicodeDecodeError, StopIteration, ValueError):
                pass
            else:
                if end == len(text) and type(data) is dict:
                    self._lines_read += 1
                    if data.get("type") == "result":
                        self.result_raw = data
                    return data
        stripped = line.strip()
        if not stripped:
            return None
        self._lines_read += 1
        if not stripped.startswith(b"{"):
            # Not the protocol (a stray log line): keep going, but say so.
            excerpt = redact(stripped[:120].decode(errors="replace"))
            self._log.warning("output.skipped", line=line_number, excerpt=excerpt)
            return None
        try:
            data = json.loads(stripped)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # bytes that are not UTF-8 are not JSON
            what = "JSON that is not UTF-8" if isinstance(exc, UnicodeDecodeError) else "malformed JSON"
            raise InvalidOutputError(
                f"{what} from the CLI", excerpt=redact(stripped[:200].decode(errors="replace")),
                line_number=line_number,
            ) from None
        if not isinstance(data, dict):
            raise InvalidOutputError(
                "a JSON line that is not an object", excerpt=redact(stripped[:200].decode(errors="replace")),
                line_number=line_number,
            )
        if data.get("type") == "result":
            self.result_raw = data
        return data

    async def drain_stderr(self) -> None:
        """Keep the last ``stderr_tail_bytes`` of stderr; runs until EOF or cancellation.

        Where the options ask for stderr lines (claude-agent-sdk's ``stderr`` callback, claude-code-sdk's
        ``debug_stderr`` file), each line goes there too, redacted; a sink that raises is logged, not fatal.
        """
        if self._process is None or self._process.stderr is None:
            self._stderr_done.set()
            return
        self._draining = True
        limit = self._limits.stderr_tail_bytes
        sink = self._backend.stderr_sink(self._options)
        pending = bytearray()
        try:
            with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                while True:
                    chunk = await self._process.stderr.receive(65536)
                    self._stderr += chunk
                    if len(self._stderr) > 2 * limit:
                        # Keep whole lines (up to twice the tail): redaction needs a secret whole, so the
                        # cut to ``limit`` happens after it, in stderr_tail.
                        del self._stderr[: len(self._stderr) - 2 * limit]
                        self._stderr_cut = True
                    if sink is not None:
                        pending += chunk
                        *lines, rest = pending.split(b"\n")
                        pending = bytearray(rest if len(rest) <= limit else rest[-limit:])
                        for line in lines:
                            self._emit(sink, line)
        finally:
            if sink is not None and pending:
                self._emit(sink, pending)  # the last words before a stall or a kill
            self._stderr_done.set()

    async def stderr_drained(self, within_s: float) -> None:
        """Wait (shielded, bounded) for stderr's EOF: after the tree is ended it comes at once, unless a
        stranger holds the pipe; then the tail is what arrived in time."""
        if not self._draining:
            return  # never started (no process, or cancelled before the drain ran): nothing to wait for
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + within_s
            await self._stderr_done.wait()

    def _emit(self, sink: Callable[[str], None], line: bytes | bytearray) -> None:
        text = redact(line.decode(errors="replace").rstrip())
        if not text:
            return
        try:
            sink(text)
        except Exception as exc:  # the caller's callback; one bad line must not end the drain
            self._log.debug("stderr.sink_failed", error=type(exc).__name__)

    def stderr_tail(self) -> str:
        return redact_tail(bytes(self._stderr), self._limits.stderr_tail_bytes, self._stderr_cut)

    # -- ending -------------------------------------------------------------------------------------
    async def _end(self) -> CleanupReport:
        started = time.monotonic()
        process = self._process
        if process is None:
            if not self._spawning or self._tree is None:
                return CleanupReport()
            # connect was cancelled inside open_process: a CLI may have been forked unseen (ContainedTree)
            return await self._tree.end_unseen(started=started, terminate_grace_s=self._limits.terminate_grace_s,
                                               kill_grace_s=self._limits.kill_grace_s, log=self._log)
        await self.end_input()
        if self.result_raw is not None and process.returncode is None:
            # The CLI has answered and is exiting; let it finish writing its session files.
            with anyio.move_on_after(self._limits.exit_grace_s):
                await process.wait()
        assert self._tree is not None
        return await self._tree.end(process, started=started, terminate_grace_s=self._limits.terminate_grace_s,
                                    kill_grace_s=self._limits.kill_grace_s, log=self._log)


class _Messages:
    """The CLI's stdout as protocol messages, for ``Transport.read_messages``.

    An async iterator object rather than an async generator: both SDKs' reader tasks iterate it without
    closing it, and an unfinished async generator is left to the garbage collector, which finalizes it
    later in another task (trio reports each one with a ResourceWarning). This holds nothing to finalize.
    A line that is not the protocol ends the stream with ``InvalidOutputError`` once the valid messages
    read before it are delivered; the error is also kept on ``transport.error`` with its type.
    """

    __slots__ = ("_done", "_error", "_framer", "_number", "_queue", "_transport")

    def __init__(self, transport: ScopedTransport) -> None:
        self._transport = transport
        self._framer = LineFramer(transport._limits.max_line_bytes)
        self._queue: deque[bytes] = deque()  # lines read, not yet decoded
        self._number = 0  # of the last line taken
        self._error: InvalidOutputError | None = None
        self._done = False

    def __aiter__(self) -> _Messages:
        return self

    def take(self) -> dict[str, Any] | None:
        """The next message among the lines already read (None when they are used up); raises the
        ``InvalidOutputError`` of a line that is not the protocol (and ends the stream)."""
        queue, transport = self._queue, self._transport
        while queue:
            line = queue.popleft()
            self._number += 1
            if len(line) > transport.longest_line:
                transport.longest_line = len(line)
            try:
                message = transport._decode(line, self._number)
            except InvalidOutputError as exc:
                self._fail(exc)
            if message is not None:
                return message
        return None

    def _fail(self, error: InvalidOutputError) -> NoReturn:
        self._error, self._done = None, True
        self._queue.clear()
        self._transport.error = error
        raise error

    async def __anext__(self) -> dict[str, Any]:
        while True:
            message = self.take()
            if message is not None:
                return message
            if self._error is not None:
                self._fail(self._error)
            if self._done:
                raise StopAsyncIteration
            try:
                found, self._error = await self._transport._next_lines(self._framer)
            except BaseException:
                self._done = True
                raise
            self._queue.extend(found)

    async def aclose(self) -> None:
        self._done = True
        self._queue.clear()


class _Batches:
    """``_Messages`` a read at a time (see ``ScopedTransport.message_batches``)."""

    __slots__ = ("_messages",)

    def __init__(self, messages: _Messages) -> None:
        self._messages = messages

    def __aiter__(self) -> _Batches:
        return self

    async def __anext__(self) -> list[dict[str, Any]]:
        messages = self._messages
        batch = [await messages.__anext__()]  # waits for a read; raises its error or the end
        try:
            while len(batch) < _BATCH:
                message = messages.take()
                if message is None:
                    break
                batch.append(message)
        except InvalidOutputError as exc:
            messages._error, messages._done = exc, False  # raised by the next call, after this batch
        return batch
