"""Drop-in replacement for V3's ``claude_code_sdk_fixed_v3``: change one import line, keep the rest.

    from sdk_wrapper.v3 import query_v3, ClaudeCodeOptions, Message, get_v3_wrapper

Same names and signatures (``query_v3(prompt, options, working_dir, verbose=False)``,
``get_v3_wrapper``, ``V3QueryWrapper.execute_phase``), same dict shapes, so V3 consumer code runs
unchanged, but backed by the scoped wrapper: the CLI's whole process tree is ended, every failure is
reported as a failure, and no success is ever made up.

What callers see:
- the init message: ``type``, ``subtype: "init"``, the real ``session_id``, the raw init under ``data``;
- other messages: the SDK dataclass's fields (``message.__dict__``, as V3 yielded them) plus ``type``;
- exactly one result per real CLI result: ``type: "result"``, the CLI's ``subtype``, ``is_error``,
  ``result``, ``session_id``, ``total_cost_usd`` and ``cost_usd`` (floats; None only if the CLI sent none),
  ``duration_ms``, ``duration_api_ms``, ``num_turns``, ``usage``;
- on a failure with no CLI result: one final ``{"type": "result", "subtype": "error_<kind>",
  "is_error": True, "result": "<kind>: <message>", "failure": {...}}``, then the stream ends.
Once the CLI's result has been yielded, teardown problems are fixed and recorded (see
``get_taskgroup_error_summary``), never raised: V3 code would turn that success into a failure.

Why the query runs in its own task: V3 code iterates with a bare ``async for`` and may leave the loop
early; the generator is then closed later, by the garbage collector, in another task. So this generator
holds no cancel scope across a ``yield``: the query (and every scope) lives in a task of its own, the
generator only reads a bounded stream, and closing it cancels that task and waits for its shielded
cleanup. asyncio only (V3 runs ``anyio.run`` with its default backend).

``CLAUDE_SCOPE_MODE`` (read at each call) or ``set_mode()``: ``scoped`` (default); ``legacy`` (delegate
to the project's own ``claude_code_sdk_fixed_v3`` when importable, for rollback); ``shadow`` (scoped, and
every failure V3 would have hidden behind a fabricated success is recorded in the journal's
``masked_failures`` table: see ``claude-scope masked``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import threading
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from claude_code_sdk import *  # noqa: F403 - V3 re-exported the SDK's names; so does its drop-in
from claude_code_sdk import (
    AssistantMessage,
    ClaudeCodeOptions,
    Message,
    ResultMessage,
    SystemMessage,
    UserMessage,
)
from claude_code_sdk import __all__ as _sdk_all

from ._classify import classify_exception
from ._logging import get_logger
from ._outcome import Failure, FailureKind, QueryOutcome
from ._scope import open_query
from ._shadow import MaskedFailureLog, v3_would_mask

MODE_ENV = "CLAUDE_SCOPE_MODE"
MODES = ("scoped", "legacy", "shadow")
_mode_override: str | None = None

__all__ = [*_sdk_all, "MODES", "MODE_ENV", "V3QueryWrapper", "get_mode", "get_v3_wrapper", "query_v3", "set_mode"]


def set_mode(mode: str | None) -> None:
    """Choose the implementation programmatically (None: back to ``$CLAUDE_SCOPE_MODE``)."""
    global _mode_override
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    _mode_override = mode


def get_mode() -> str:
    mode = _mode_override or os.environ.get(MODE_ENV, "scoped")
    if mode not in MODES:
        raise ValueError(f"{MODE_ENV} must be one of {MODES}, got {mode!r}")
    return mode


def message_to_v3(message: Message) -> dict[str, Any]:
    """One SDK message as V3 yielded it (``message.__dict__``) plus the keys V3 consumers read."""
    if isinstance(message, ResultMessage):
        cost = None if message.total_cost_usd is None else float(message.total_cost_usd)
        return {"type": "result", **vars(message), "total_cost_usd": cost, "cost_usd": cost}
    data: dict[str, Any] = dict(vars(message))
    if isinstance(message, SystemMessage):
        data.update(type="system", session_id=message.data.get("session_id"))
    elif isinstance(message, AssistantMessage):
        data["type"] = "assistant"
    elif isinstance(message, UserMessage):
        data["type"] = "user"
    return data


def failure_to_v3(outcome: QueryOutcome, failure: Failure) -> dict[str, Any]:
    """The one final error result for a failure the CLI never reported itself. Never a success."""
    cost = outcome.cost_usd
    return {
        "type": "result", "subtype": f"error_{failure.kind.value}", "is_error": True,
        "result": f"{failure.kind.value}: {failure.message}", "failure": failure.to_dict(),
        "session_id": outcome.session_id, "total_cost_usd": cost, "cost_usd": cost,
        "duration_ms": int(outcome.duration_s * 1000), "duration_api_ms": None, "num_turns": outcome.num_turns,
        "usage": None, "timestamp": time.time(),
    }


class V3QueryWrapper:
    """V3's wrapper surface. Holds no event-loop state: one object may serve threads and loops at once."""

    def __init__(self, working_dir: str | Path, verbose: bool = False) -> None:
        self.working_dir = Path(working_dir)
        self.verbose = verbose
        self._lock = threading.Lock()
        self._errors: dict[str, int] = {}
        self._teardown_problems = 0
        self._masked = 0
        self.log = get_logger(working_dir=str(self.working_dir))

    async def execute_phase(self, prompt: str, options: ClaudeCodeOptions | None
                            ) -> AsyncGenerator[dict[str, Any], None]:
        """Yield V3-shaped dicts for one query; see the module doc for the shapes and the task design."""
        if get_mode() == "legacy":
            legacy = _legacy_module()
            if legacy is not None:
                async for item in legacy.query_v3(prompt, options, self.working_dir, self.verbose):
                    yield item
                return
            self.log.warning("v3.legacy_unavailable", fallback="scoped")
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](64)
        task = asyncio.get_running_loop().create_task(self._produce(prompt, options, send))
        try:
            with receive:
                async for item in receive:
                    yield item
        finally:
            receive.close()
            if not task.done():
                task.cancel()
            with anyio.CancelScope(shield=True):  # entered and left here, around no yield
                await asyncio.wait([task])

    async def _produce(self, prompt: str, options: ClaudeCodeOptions | None,
                       send: MemoryObjectSendStream[dict[str, Any]]) -> None:
        opts = options if options is not None else ClaudeCodeOptions()
        if opts.cwd is None:
            opts = _with_cwd(opts, self.working_dir)
        result_sent = False
        stream = open_query(prompt, opts)
        with send:
            try:
                async with stream:
                    async for message in stream:
                        await send.send(message_to_v3(message))
                        result_sent = result_sent or isinstance(message, ResultMessage)
                outcome = stream.outcome
            except anyio.BrokenResourceError:  # the consumer stopped reading; the query has been ended
                self._record(prompt, stream.outcome, result_sent)
                return
            except anyio.get_cancelled_exc_class():  # the consumer left (or was cancelled): ended too
                if stream.finished:
                    self._record(prompt, stream.outcome, result_sent)
                raise
            except Exception as exc:  # a bug of ours still becomes an honest error result
                failure = classify_exception(exc, side_effects=False)
                outcome = QueryOutcome(result=None, failure=failure)
            self._record(prompt, outcome, result_sent)
            if outcome.failure is not None and not result_sent:
                await send.send(failure_to_v3(outcome, outcome.failure))

    def _record(self, prompt: str, outcome: QueryOutcome, result_sent: bool) -> None:
        failure = outcome.failure
        if failure is None:
            return
        with self._lock:
            if result_sent and failure.kind in (FailureKind.CLEANUP_INCOMPLETE, FailureKind.BUDGET_EXCEEDED):
                self._teardown_problems += 1
            self._errors[failure.kind.value] = self._errors.get(failure.kind.value, 0) + 1
        self.log.info("v3.failure", kind=failure.kind.value, after_result=result_sent)
        if get_mode() == "shadow" and not result_sent:
            verdict = v3_would_mask(failure)
            if verdict is not None:
                with self._lock:
                    self._masked += 1
                MaskedFailureLog(self.working_dir).record(prompt, outcome, failure, verdict)

    def _classify_error(self, e: BaseException) -> str:
        """V3's name, honest content: the FailureKind value, decided by type. It is never
        ``"taskgroup_cleanup"``, so V3 code that masked that category now masks nothing."""
        return classify_exception(e, side_effects=False).kind.value

    def get_taskgroup_error_summary(self) -> dict[str, Any]:
        with self._lock:
            return {"total_errors": sum(self._errors.values()), "by_kind": dict(self._errors),
                    "teardown_problems_after_result": self._teardown_problems,
                    "masked_by_v3_in_shadow_mode": self._masked, "fabricated_successes": 0}


def _with_cwd(options: ClaudeCodeOptions, cwd: Path) -> ClaudeCodeOptions:
    from dataclasses import replace

    return replace(options, cwd=str(cwd))


def _legacy_module() -> Any:
    try:
        return importlib.import_module("claude_code_sdk_fixed_v3")
    except ImportError:
        return None


_wrappers: dict[tuple[str, bool], V3QueryWrapper] = {}
_wrappers_lock = threading.Lock()


def get_v3_wrapper(working_dir: str | Path, verbose: bool = False) -> V3QueryWrapper:
    """One wrapper per working directory, shared safely: it keeps counters, never loop-bound state."""
    key = (str(Path(working_dir).resolve()), bool(verbose))
    with _wrappers_lock:
        if key not in _wrappers:
            _wrappers[key] = V3QueryWrapper(working_dir, verbose)
        return _wrappers[key]


async def query_v3(prompt: str, options: ClaudeCodeOptions | None, working_dir: str | Path,
                   verbose: bool = False) -> AsyncGenerator[dict[str, Any], None]:
    """V3's entry point. Iterate it with ``async for``; leaving early is safe (see the module doc)."""
    async with contextlib.aclosing(get_v3_wrapper(working_dir, verbose).execute_phase(prompt, options)) as items:
        async for item in items:
            yield item
