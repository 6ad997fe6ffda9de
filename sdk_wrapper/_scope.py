"""``open_query``: one query in a task the wrapper owns, messages handed over a bounded stream.

Shape (every cancel scope is left by the task that entered it):

    consumer task                      pump task (owned by the task group entered in __aenter__)
    async with open_query(...) as s:   with CancelScope() as stop_scope:          <- __aexit__ cancels this
        async for m in s: ...  <------   with CancelScope(deadline) as limit:     <- timeout + idle timeout
                                           async with aclosing(process_query()):  <- SDK generator, same task
                                             send(m)  (bounded: backpressure)
                                         finally: shielded transport.close()      <- tree ended, verified

The SDK's ``Query.start()`` enters a task group inside whatever scope is current at the first
``__anext__``; so the idle timeout is not a ``move_on_after`` around each ``__anext__`` (that is the
"exit cancel scope in a different task / not the current scope" bug), but one scope around the generator's
whole life whose deadline moves on after every message.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import AsyncIterable, Callable
from contextlib import aclosing, nullcontext
from dataclasses import dataclass
from os import PathLike
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

import anyio
import anyio.abc
import psutil
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from claude_code_sdk import ClaudeCodeOptions, Message

from ._backends import Backend, Channel
from ._classify import QueryFacts, Stop, cli_cost, decide
from ._containment._contained import until_capped
from ._errors import StateError
from ._logging import get_logger
from ._options import Checked, check_arguments, resolve_cli
from ._outcome import CleanupReport, QueryLimits, QueryOutcome, SpawnedCLI
from ._tracker import ResourceTracker
from ._transport import ScopedTransport
from ._webhook import ResultWebhook, deliver

if TYPE_CHECKING:
    from claude_agent_sdk import ClaudeAgentOptions
    from claude_agent_sdk import Message as AgentMessage

    from ._outcome import AnyResultMessage

M = TypeVar("M")


class _IdleWatch:
    """Cancels the limit scope once the CLI has been silent for ``idle`` seconds.

    A watchdog task with one timer per idle period, rather than moving the scope's deadline on every
    message (each move reschedules a loop timer: measured at more than half the per-message cost).
    Time spent handing a message to a slow consumer (``handing``) does not count as the CLI's silence.
    """

    def __init__(self, idle: float | None, scope: anyio.CancelScope) -> None:
        self.idle, self.scope = idle, scope
        self.last = anyio.current_time()
        self.handing = False
        self.fired = False

    def beat(self) -> None:
        if self.idle is not None:
            self.last = anyio.current_time()

    async def run(self) -> None:
        assert self.idle is not None
        while True:
            await anyio.sleep_until(self.last + self.idle)
            if self.handing:
                self.last = anyio.current_time()
            elif anyio.current_time() >= self.last + self.idle:
                self.fired = True
                self.scope.cancel()
                return


class QueryTransport(Channel, Protocol):
    """What the pump needs of the transport, besides the backend's ``Channel``: ``ScopedTransport``, or a
    test's fake, which needs no process (``tests/sdk_wrapper/test_scope.py``)."""

    pid: int | None
    error: BaseException | None
    cleanup: CleanupReport | None
    result_raw: dict[str, Any] | None

    async def connect(self) -> None: ...

    async def drain_stderr(self) -> None: ...

    async def close(self) -> None: ...

    async def stderr_drained(self, within_s: float) -> None: ...

    def stderr_tail(self) -> str: ...

    def caps_hit(self) -> str: ...

    def kill_capped(self) -> None: ...


#: builds the transport of one query: (prompt, options, cli_path, backend, query_id, limits, log) by keyword
TransportFactory = Callable[..., QueryTransport]


@dataclass
class _Seen:
    """What the messages said as they passed: all the outcome needs of them."""

    count: int = 0
    #: a tool was called: retrying could repeat what it did
    side_effects: bool = False
    result: AnyResultMessage | None = None
    session_id: str | None = None
    #: the last tool call (name and input, as JSON) and how many times in a row it was made
    last_call: str = ""
    repeats: int = 0
    #: why the agent is stuck (set once a call is repeated ``max_repeats`` times in a row)
    stuck: str = ""
    #: the kernel's evidence that the tree hit a cap (``memory_mb``, ``max_pids``)
    capped: str = ""


class _Pump:
    """Runs the SDK generator to its end in one task, then decides the outcome from what it saw."""

    def __init__(
        self,
        *,
        prompt: str | AsyncIterable[dict[str, Any]],
        options: Any,
        limits: QueryLimits,
        backend: Backend,
        cli_path: str | PathLike[str] | None = None,
        tracker: ResourceTracker | None = None,
        on_spawn: Callable[[SpawnedCLI], None] | None = None,
        webhook: ResultWebhook | None = None,
        transport: TransportFactory = ScopedTransport,
    ) -> None:
        self.prompt, self.options, self.limits, self.backend = prompt, options, limits, backend
        self.make_transport = transport
        self.cli_path, self.tracker, self.on_spawn, self.webhook = cli_path, tracker, on_spawn, webhook
        self.query_id = uuid.uuid4().hex
        self.log = get_logger(query_id=self.query_id)
        self.stop_scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.outcome: QueryOutcome | None = None
        self.seen = _Seen()
        self.transport: QueryTransport | None = None
        #: the query's tree is capped (``memory_mb``, ``max_pids``): watched while it runs, judged at the end
        self._capped = limits.memory_mb is not None or limits.max_pids is not None

    async def run(self, send: MemoryObjectSendStream[Any] | None) -> None:
        """Drive the query to its outcome. ``send``: where messages go to the consumer (``QueryStream``);
        None when there is none (``run_query``): messages are still parsed and observed, not handed over."""
        started = time.monotonic()
        stop, error = Stop.END, None
        self.log.info("query.start", sdk=self.backend.name)
        try:
            with send or nullcontext(), self.stop_scope:
                self.transport = self.make_transport(
                    prompt=self.prompt, options=self.options,
                    cli_path=resolve_cli(self.cli_path, self.options, self.backend),
                    backend=self.backend, query_id=self.query_id, limits=self.limits, log=self.log,
                )
                stop, error = await self._drive(self.transport, send)
            if self.stop_scope.cancelled_caught and stop is Stop.END:
                stop = Stop.CONSUMER_LEFT
        except anyio.get_cancelled_exc_class():
            stop = Stop.CANCELLED
            raise
        except Exception as exc:  # becomes data: the caller gets a Failure, never this exception
            stop, error = Stop.ERROR, exc
        finally:
            outcome = self._finish(stop, error, started)  # synchronous: nothing here can be cancelled
            try:
                if self.webhook is not None:
                    outcome = await deliver(self.webhook, outcome, log=self.log, tracker=self.tracker)
            finally:
                self.outcome = outcome
                self.done.set()

    async def _drive(
        self, transport: QueryTransport, send: MemoryObjectSendStream[Any] | None
    ) -> tuple[Stop, BaseException | None]:
        limits = self.limits
        overall = anyio.current_time() + limits.timeout_s if limits.timeout_s is not None else math.inf
        stop, error = Stop.END, None
        async with anyio.create_task_group() as tg:
            try:
                with anyio.CancelScope(deadline=overall) as limit:
                    watch = _IdleWatch(limits.idle_timeout_s, limit)
                    if watch.idle is not None:
                        tg.start_soon(watch.run)
                    if self._capped:
                        tg.start_soon(self._watch_caps, transport, limit)
                    await transport.connect()
                    if transport.pid is not None:
                        self._spawned(transport.pid)
                    tg.start_soon(transport.drain_stderr)
                    generator = self.backend.messages(self.prompt, self.options, transport)
                    async with aclosing(generator):
                        async for message in generator:
                            is_result = self._observe(message)
                            if send is not None:
                                try:
                                    send.send_nowait(message)
                                except anyio.WouldBlock:
                                    watch.handing = True  # the consumer's pace is not the CLI's idleness
                                    await send.send(message)
                                    watch.handing = False
                            watch.beat()
                            if is_result:
                                break  # a result ends the stream, even if a grandchild holds stdout
                            if self.seen.stuck:
                                stop = Stop.STUCK
                                break  # the tree is ended below, as on any other way out
                if limit.cancelled_caught:
                    stop = Stop.RESOURCE_LIMIT if self.seen.capped else Stop.STALL if watch.fired else Stop.TIMEOUT
            except anyio.BrokenResourceError:
                stop = Stop.CONSUMER_LEFT  # the consumer closed its end; same as leaving the block
            except Exception as exc:
                stop, error = Stop.ERROR, _typed(transport.error, exc)
            finally:
                await transport.close()
                await transport.stderr_drained(within_s=0.2)  # the CLI is gone: its last stderr bytes are due
                tg.cancel_scope.cancel()
        return stop, error

    def _spawned(self, pid: int) -> None:
        if self.tracker is not None:
            self.tracker.add_process(pid, f"claude cli (query {self.query_id})")
        if self.on_spawn is not None:
            try:
                started = psutil.Process(pid).create_time()
            except psutil.Error:
                started = 0.0
            self.on_spawn(SpawnedCLI(pid, started, self.query_id))

    def _observe(self, message: Any) -> bool:
        """Record what ``message`` tells about the query; return whether it is the result. Once per
        message: the common case (an assistant message) is tested first, its blocks by a plain loop."""
        seen, backend = self.seen, self.backend
        seen.count += 1
        if isinstance(message, backend.assistant_type):
            if not seen.side_effects or self.limits.max_repeats is not None:
                tool_use = backend.tool_use_type
                for block in message.content:
                    if isinstance(block, tool_use):
                        seen.side_effects = True
                        if self.limits.max_repeats is None:
                            break
                        self._count_repeat(block.name, block.input)
        elif isinstance(message, backend.result_type):
            seen.result = message
            seen.session_id = message.session_id or seen.session_id
            return True
        elif isinstance(message, backend.system_type) and message.subtype == "init":
            sid = message.data.get("session_id")
            seen.session_id = sid if isinstance(sid, str) else seen.session_id
        return False

    async def _watch_caps(self, transport: QueryTransport, limit: anyio.CancelScope) -> None:
        """At the first cap hit, end the query (its tree already SIGKILLed by ``until_capped``): the outcome is
        ``resource_limit``."""
        self.seen.capped = await until_capped(transport.caps_hit, transport.kill_capped)
        limit.cancel()

    def _count_repeat(self, name: str, tool_input: Any) -> None:
        """One more tool call: the same name and input as the last one counts up, any other starts over."""
        seen, most = self.seen, self.limits.max_repeats
        call = f"{name} {json.dumps(tool_input, sort_keys=True, default=str)}"
        seen.repeats = seen.repeats + 1 if call == seen.last_call else 1
        seen.last_call = call
        if most is not None and seen.repeats >= most and not seen.stuck:
            shown = call if len(call) <= 500 else call[:497] + "..."
            seen.stuck = (f"the agent made the same tool call {seen.repeats} times in a row (max_repeats={most}): "
                          f"{shown}")

    def _finish(self, stop: Stop, error: BaseException | None, started: float) -> QueryOutcome:
        transport, seen, result = self.transport, self.seen, self.seen.result
        cleanup = CleanupReport() if transport is None or transport.cleanup is None else transport.cleanup
        raw = None if transport is None else transport.result_raw
        cost = None
        if result is not None:
            cost = result.total_cost_usd if result.total_cost_usd is not None else cli_cost(raw)
        failure = decide(QueryFacts(
            stop=stop, error=error, result_raw=raw, got_result=result is not None, cost_usd=cost,
            limits=self.limits, cleanup=cleanup, side_effects=seen.side_effects,
            stderr_tail="" if transport is None else transport.stderr_tail(), stuck=seen.stuck,
            # read again now the tree is gone: a capped CLI often just exits non-zero, before the watch saw it
            capped=seen.capped or (transport.caps_hit() if transport is not None and self._capped else ""),
        ))
        if self.tracker is not None and transport is not None and transport.pid is not None \
                and transport.pid not in cleanup.leftover_pids:
            self.tracker.discard_process(transport.pid)
        outcome = QueryOutcome(
            result=result, failure=failure, session_id=seen.session_id, cost_usd=cost,
            num_turns=None if result is None else result.num_turns,
            duration_s=time.monotonic() - started, message_count=seen.count, cleanup=cleanup, result_raw=raw,
            query_id=self.query_id,
        )
        self.log.info("query.end", ok=outcome.ok, kind=None if failure is None else failure.kind.value,
                      session_id=seen.session_id, messages=seen.count, cost_usd=cost)
        return outcome


def _typed(kept: BaseException | None, raised: Exception) -> BaseException:
    """The transport's own typed error when the SDK re-raised it as a plain Exception (the SDK's one
    chained as its context); otherwise what was raised."""
    if kept is None or kept is raised:
        return raised
    if kept.__context__ is None:
        kept.__context__ = raised
    return kept


class QueryStream(Generic[M]):
    """The object ``open_query`` returns; use it with ``async with`` and ``async for`` in one task.

    ``M`` is the message type of the options' SDK: ``claude_code_sdk.Message`` or ``claude_agent_sdk.Message``.

    Leaving the block in any way (end, ``break``, exception, cancellation, a second cancellation) ends the
    CLI's whole process tree before ``__aexit__`` returns; ``outcome`` is set then.
    """

    def __init__(self, pump: _Pump) -> None:
        self._pump = pump
        self._tg: anyio.abc.TaskGroup | None = None
        self._receive: MemoryObjectReceiveStream[M] | None = None

    @property
    def outcome(self) -> QueryOutcome:
        if self._pump.outcome is None:
            raise StateError("the outcome is known once the `async with open_query(...)` block has been left")
        return self._pump.outcome

    @property
    def query_id(self) -> str:
        """The id in this query's log events and its CLI tree's ``CLAUDE_SCOPE_QUERY_ID``, known from the
        start: to correlate logs (or find the tree) while messages still flow, before ``outcome`` exists."""
        return self._pump.query_id

    @property
    def result_raw(self) -> dict[str, Any] | None:
        """The CLI's result line as it was sent (fields the SDK's ``ResultMessage`` drops, such as ``errors``
        or older cost names), once it has arrived; None before."""
        transport = self._pump.transport
        return None if transport is None else transport.result_raw

    @property
    def stdout_shape(self) -> tuple[int, int]:
        """(stdout reads that were not one whole line, the longest line in bytes): how claude-code-sdk
        0.0.10, which parsed reads rather than lines, would have read this stream (V3's shadow mode)."""
        transport = self._pump.transport
        return (getattr(transport, "misaligned_reads", 0), getattr(transport, "longest_line", 0))

    @property
    def finished(self) -> bool:
        """Whether ``outcome`` is available (the block has been left and cleanup is done)."""
        return self._pump.outcome is not None

    async def __aenter__(self) -> QueryStream[M]:
        if self._tg is not None:
            raise StateError("a QueryStream can be entered only once")
        send, self._receive = anyio.create_memory_object_stream[M](self._pump.limits.buffer_messages)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._pump.run, send, name=f"claude-scope query {self._pump.query_id}")
        return self

    def __aiter__(self) -> QueryStream[M]:
        return self

    async def __anext__(self) -> M:
        assert self._receive is not None, "use `async with open_query(...)` first"
        # Buffered messages are taken without a checkpoint (at most buffer_messages in a row); an empty
        # buffer waits, and that wait is where cancellation reaches the consumer.
        try:
            try:
                return self._receive.receive_nowait()
            except anyio.WouldBlock:
                return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        assert self._tg is not None and self._receive is not None
        with anyio.CancelScope(shield=True):
            self._pump.stop_scope.cancel()  # no-op if the pump already finished
            self._receive.close()
            await self._pump.done.wait()
        # The pump has finished (it never raises Exceptions), so the group exits cleanly; the body's own
        # exception, if any, propagates unchanged rather than wrapped in an ExceptionGroup.
        await self._tg.__aexit__(None, None, None)
        return False


@overload
def open_query(
    prompt: str | AsyncIterable[dict[str, Any]],
    options: ClaudeCodeOptions | None = None,
    *,
    limits: QueryLimits | None = None,
    cli_path: str | PathLike[str] | None = None,
    tracker: ResourceTracker | None = None,
    on_spawn: Callable[[SpawnedCLI], None] | None = None,
    webhook: ResultWebhook | None = None,
) -> QueryStream[Message]: ...


@overload
def open_query(
    prompt: str | AsyncIterable[dict[str, Any]],
    options: ClaudeAgentOptions,
    *,
    limits: QueryLimits | None = None,
    cli_path: str | PathLike[str] | None = None,
    tracker: ResourceTracker | None = None,
    on_spawn: Callable[[SpawnedCLI], None] | None = None,
    webhook: ResultWebhook | None = None,
) -> QueryStream[AgentMessage]: ...


def open_query(
    prompt: str | AsyncIterable[dict[str, Any]],
    options: ClaudeCodeOptions | ClaudeAgentOptions | None = None,
    *,
    limits: QueryLimits | None = None,
    cli_path: str | PathLike[str] | None = None,
    tracker: ResourceTracker | None = None,
    on_spawn: Callable[[SpawnedCLI], None] | None = None,
    webhook: ResultWebhook | None = None,
) -> QueryStream[Any]:
    """Stream one query's messages (the SDK's own objects): ``async with open_query(p) as s: async for m in s``.

    ``options`` is a ``claude_code_sdk.ClaudeCodeOptions`` (the default) or a
    ``claude_agent_sdk.ClaudeAgentOptions`` (the ``agent`` extra); the messages are that SDK's own classes.
    Raises TypeError at once for arguments of the wrong type; every other problem ends up in
    ``s.outcome.failure`` after the block. ``on_spawn`` is called (synchronously, in the query's task)
    right after the CLI starts, e.g. to journal its pid. ``webhook`` (a ``ResultWebhook``) gets the outcome
    POSTed once the tree is gone, before the block is left; its delivery is ``s.outcome.webhook``.
    """
    checked = check_arguments(prompt, options, limits, webhook=webhook)
    return checked_stream(checked, cli_path=cli_path, tracker=tracker, on_spawn=on_spawn, webhook=webhook)


async def run_checked(
    checked: Checked,
    *,
    cli_path: str | PathLike[str] | None = None,
    tracker: ResourceTracker | None = None,
) -> QueryOutcome:
    """One query to its outcome with no consumer of its messages (``run_query``'s attempt): the pump runs
    in the caller's task (its scopes entered and left there), so no message crosses to another task."""
    pump = _Pump(prompt=checked.prompt, options=checked.options, limits=checked.limits, backend=checked.backend,
                 cli_path=cli_path, tracker=tracker)
    await pump.run(None)
    assert pump.outcome is not None
    return pump.outcome


def checked_stream(
    checked: Checked,
    *,
    cli_path: str | PathLike[str] | None = None,
    tracker: ResourceTracker | None = None,
    on_spawn: Callable[[SpawnedCLI], None] | None = None,
    webhook: ResultWebhook | None = None,
) -> QueryStream[Any]:
    """``open_query`` for arguments already checked (``run_query`` checks once, then opens one per attempt)."""
    return QueryStream(_Pump(prompt=checked.prompt, options=checked.options, limits=checked.limits,
                             backend=checked.backend, cli_path=cli_path, tracker=tracker, on_spawn=on_spawn,
                             webhook=webhook))
