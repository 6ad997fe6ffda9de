"""The scope alone: a fake backend and a fake transport, no process, no SDK ``Query``.

What the pump does with what it is given: the order of events (connect, messages, close in the pump's own
task), how the loop's end becomes ``decide``'s facts (a result, a consumer that left, a timeout, a stall,
an exception with the transport's typed error preferred), and that close runs however it ends. The real
transport and processes are tested in test_transport.py and test_matrix.py.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from claude_code_sdk import AssistantMessage, ResultMessage, SystemMessage, TextBlock, ToolUseBlock

from sdk_wrapper import CleanupReport, FailureKind, InvalidOutputError, QueryLimits
from sdk_wrapper._backends import Channel, code_backend
from sdk_wrapper._scope import QueryStream, _Pump

pytestmark = pytest.mark.anyio

RESULT = ResultMessage(subtype="success", duration_ms=1, duration_api_ms=1, is_error=False, num_turns=1,
                       session_id="s-1", total_cost_usd=0.25, result="done")
RAW_RESULT = {"type": "result", "subtype": "success", "is_error": False, "total_cost_usd": 0.25}


@dataclass
class FakeTransport:
    """Records what the pump does to it; ``fail_with`` is its typed error (as ScopedTransport keeps one)."""

    events: list[str]
    fail_with: BaseException | None = None
    pid: int | None = None
    error: BaseException | None = None
    cleanup: CleanupReport | None = None
    result_raw: dict[str, Any] | None = None
    leftover: tuple[int, ...] = ()

    async def connect(self) -> None:
        self.events.append("connect")

    async def drain_stderr(self) -> None:
        await anyio.sleep_forever()

    async def close(self) -> None:
        self.events.append("close")
        self.cleanup = CleanupReport(leftover_pids=self.leftover, exit_code=0)

    async def stderr_drained(self, within_s: float) -> None:
        pass

    def stderr_tail(self) -> str:
        return "last words"

    def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError

    def message_batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        raise NotImplementedError


@dataclass
class Script:
    """What the fake backend's messages() does: yield these, then hang, raise, or end."""

    messages: list[Any] = field(default_factory=list)
    then: str = "end"  # "end" | "hang" | "raise"
    transport_error: BaseException | None = None


def pump(script: Script, limits: QueryLimits | None = None, **transport: Any) -> tuple[QueryStream[Any], list[str]]:
    events: list[str] = []
    backend = code_backend()

    class FakeBackend(type(backend)):  # type: ignore[misc]
        def messages(self, prompt: Any, options: Any, channel: Channel) -> AsyncGenerator[Any, None]:
            return generate(channel)

    async def generate(channel: Any) -> AsyncGenerator[Any, None]:
        try:
            for message in script.messages:
                if isinstance(message, ResultMessage):
                    channel.result_raw = RAW_RESULT
                yield message
            if script.then == "hang":
                await anyio.sleep_forever()
            if script.then == "raise":
                channel.error = script.transport_error
                raise Exception("the SDK flattened it")
        finally:
            events.append("generator closed")

    def make(**kwargs: Any) -> FakeTransport:
        return FakeTransport(events, **transport)

    # cli_path: resolve_cli checks that it is executable; it is never run
    p = _Pump(prompt="hi", options=None, limits=limits or QueryLimits(), backend=FakeBackend(),
              cli_path=sys.executable, transport=make)
    return QueryStream(p), events


async def consume(stream: QueryStream[Any], stop_after: int | None = None) -> list[Any]:
    seen = []
    async with stream:
        async for message in stream:
            seen.append(message)
            if stop_after is not None and len(seen) >= stop_after:
                break
    return seen


async def test_a_result_is_the_outcome_and_close_follows_the_generator() -> None:
    init = SystemMessage(subtype="init", data={"session_id": "s-1"})
    stream, events = pump(Script([init, AssistantMessage(content=[TextBlock("hi")], model="m"), RESULT]))
    seen = await consume(stream)
    outcome = stream.outcome
    assert seen[-1] is RESULT and outcome.ok and outcome.cost_usd == 0.25 and outcome.session_id == "s-1"
    assert outcome.message_count == 3 and events == ["connect", "generator closed", "close"]


async def test_a_tool_call_marks_side_effects() -> None:
    tool = AssistantMessage(content=[ToolUseBlock(id="t", name="Write", input={})], model="m")
    stream, _ = pump(Script([tool], then="end"))
    await consume(stream)
    failure = stream.outcome.failure
    assert failure is not None and failure.kind is FailureKind.PROCESS_EXIT and failure.side_effects
    assert not failure.retryable and failure.stderr_tail == "last words"


async def test_the_consumer_leaving_before_the_result_is_cancelled() -> None:
    stream, events = pump(Script([AssistantMessage(content=[TextBlock("a")], model="m")], then="hang"))
    await consume(stream, stop_after=1)
    failure = stream.outcome.failure
    assert failure is not None and failure.kind is FailureKind.CANCELLED and "consumer left" in failure.message
    assert events == ["connect", "generator closed", "close"]


async def test_timeout_and_stall_come_from_the_limit_scope() -> None:
    stream, _ = pump(Script(then="hang"), QueryLimits(timeout_s=0.2))
    await consume(stream)
    assert stream.outcome.failure is not None and stream.outcome.failure.kind is FailureKind.TIMEOUT
    stream, _ = pump(Script(then="hang"), QueryLimits(idle_timeout_s=0.2, timeout_s=30))
    await consume(stream)
    failure = stream.outcome.failure
    assert failure is not None and failure.kind is FailureKind.STALLED and failure.retryable


async def test_the_transports_typed_error_wins_over_the_sdks_flattened_one() -> None:
    typed = InvalidOutputError("malformed JSON from the CLI", excerpt="{", line_number=3)
    stream, events = pump(Script(then="raise", transport_error=typed))
    await consume(stream)
    failure = stream.outcome.failure
    assert failure is not None and failure.kind is FailureKind.INVALID_OUTPUT and failure.cause is typed
    assert isinstance(typed.__context__, Exception)  # the SDK's plain one, kept as context
    assert events[-1] == "close"


async def test_a_leftover_process_after_a_result_is_a_cleanup_failure() -> None:
    stream, _ = pump(Script([RESULT]), leftover=(4242,))
    await consume(stream)
    failure = stream.outcome.failure
    assert failure is not None and failure.kind is FailureKind.CLEANUP_INCOMPLETE and "4242" in failure.message


async def test_an_outside_cancel_ends_with_close_and_propagates() -> None:
    stream, events = pump(Script(then="hang"))
    with anyio.move_on_after(0.2) as scope:
        await consume(stream)
    assert scope.cancelled_caught and events == ["connect", "generator closed", "close"]
    assert stream.outcome.failure is not None and stream.outcome.failure.kind is FailureKind.CANCELLED
