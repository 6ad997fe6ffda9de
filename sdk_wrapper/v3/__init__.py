"""Drop-in replacement for V3's ``claude_code_sdk_fixed_v3``: change one import line, keep the rest.

    from sdk_wrapper.v3 import query_v3, ClaudeCodeOptions, Message, get_v3_wrapper

Same names and signatures (``query_v3(prompt, options, working_dir, verbose=False)``,
``get_v3_wrapper``, ``V3QueryWrapper.execute_phase``), same dict shapes, so V3 consumer code runs
unchanged, but backed by the scoped wrapper: the CLI's whole process tree is ended, every failure is
reported as a failure, and no success is ever made up.

What callers see (dict details in ``_dicts``: no key V3 reads with a default is ever present as None):
- the init message: ``type``, ``subtype: "init"``, the real ``session_id``, the raw init under ``data``;
- other messages: the SDK dataclass's fields (``message.__dict__``, as V3 yielded them) plus ``type``;
- exactly one result per real CLI result: ``type: "result"``, the CLI's ``subtype``, ``is_error``,
  ``result`` (for an error result without text: the reason from the CLI's ``errors``), ``session_id``,
  ``total_cost_usd`` and ``cost_usd`` (floats, from the CLI's current or older cost field; absent when the
  CLI sent none), ``duration_ms``, ``duration_api_ms``, ``num_turns``, ``usage``;
- on a failure with no CLI result: one final ``{"type": "result", "subtype": "error_<kind>",
  "is_error": True, "result": "<kind>: <message>", "failure": {...}}``, then the stream ends.
Once the CLI's result has been yielded, teardown problems are fixed and recorded (see
``get_taskgroup_error_summary``), never raised: V3 code would turn that success into a failure. Every
failure is also appended to V3's stability log (``.cc_automator/stability_logs/taskgroup_errors.jsonl``,
V3's line format; see ``_stability``), so the tools that read it keep working, with real failures.

V4's names are offered too (``query_v4_fixed``, ``get_v4_fixed_wrapper``, whose wrapper answers
``execute_phase_with_fixes`` and ``get_session_status``), since V3 projects moved to them with the same
signatures.

Why the query runs in its own task: V3 code iterates with a bare ``async for`` and may leave the loop
early; the generator is then closed later, by the garbage collector, in another task. So this generator
holds no cancel scope across a ``yield``: the query (and every scope) lives in a task of its own, the
generator only reads a bounded stream, and closing it cancels that task and waits for its shielded
cleanup. asyncio only (V3 runs ``anyio.run`` with its default backend).

``CLAUDE_SCOPE_MODE`` (read at each call) or ``set_mode()``: ``scoped`` (default); ``legacy`` (run the
project's own V3 module, as recorded by the codemod; where it cannot run, every query raises
``LegacyModeError`` saying how to roll back, before any CLI starts: never a silent fallback; see
``_legacy``); ``shadow`` (scoped, and whatever the real V3 would have hidden or lost is recorded in the
journal's ``masked_failures`` table: see ``_shadow``, ``sdk_wrapper._masked`` and ``claude-scope masked``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncGenerator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from claude_code_sdk import *  # noqa: F403 - V3 re-exported the SDK's names; so does its drop-in
from claude_code_sdk import (
    ClaudeCodeOptions,
    ResultMessage,
    SystemMessage,
)
from claude_code_sdk import __all__ as _sdk_all

from .._classify import classify_exception
from .._errors import UsageError
from .._logging import get_logger
from .._outcome import FailureKind, QueryOutcome
from .._scope import open_query
from . import _stability as stability
from ._dicts import failure_to_v3, message_to_v3
from ._legacy import LegacyModeError, load_legacy
from ._shadow import MaskedFailureLog, StreamFacts, read_masked, v3_verdict

MODE_ENV = "CLAUDE_SCOPE_MODE"
MODES = ("scoped", "legacy", "shadow")
_mode_override: str | None = None

__all__ = [*_sdk_all, "MODES", "MODE_ENV", "LegacyModeError", "MaskedFailureLog", "StreamFacts", "read_masked",
           "v3_verdict", "V3QueryWrapper", "V4FixedQueryWrapper", "get_mode",
           "get_v3_wrapper", "get_v4_fixed_wrapper", "message_to_v3", "query_v3", "query_v4_fixed", "set_mode"]


def set_mode(mode: str | None) -> None:
    """Choose the implementation programmatically (None: back to ``$CLAUDE_SCOPE_MODE``)."""
    global _mode_override
    if mode is not None and mode not in MODES:
        raise UsageError(f"mode must be one of {MODES}, got {mode!r}")
    _mode_override = mode


def get_mode() -> str:
    mode = _mode_override or os.environ.get(MODE_ENV, "scoped")
    if mode not in MODES:
        raise UsageError(f"{MODE_ENV} must be one of {MODES}, got {mode!r}")
    return mode


class V3QueryWrapper:
    """V3's wrapper surface. Holds no event-loop state: one object may serve threads and loops at once."""

    def __init__(self, working_dir: str | Path, verbose: bool = False) -> None:
        self.working_dir = Path(working_dir)
        self.verbose = verbose
        self._lock = threading.Lock()
        self._errors: dict[str, int] = {}
        self._teardown_problems = 0
        self._masked = 0
        self.active_sessions: set[str] = set()
        self.log = get_logger(working_dir=str(self.working_dir))

    async def execute_phase(self, prompt: str, options: ClaudeCodeOptions | None
                            ) -> AsyncGenerator[dict[str, Any], None]:
        """Yield V3-shaped dicts for one query; see the module doc for the shapes and the task design."""
        if get_mode() == "legacy":
            legacy = load_legacy(self.working_dir)  # LegacyModeError, with the way back, if it cannot run
            async for item in legacy.query_v3(prompt, options, self.working_dir, self.verbose):
                yield item
            return
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](64)
        task = asyncio.get_running_loop().create_task(self._produce(prompt, options, send))
        try:
            with receive:
                while True:
                    # What is buffered is taken without a checkpoint (as QueryStream does); an empty buffer
                    # waits, and that wait is where cancellation reaches the consumer.
                    try:
                        item = receive.receive_nowait()
                    except anyio.WouldBlock:
                        try:
                            item = await receive.receive()
                        except anyio.EndOfStream:
                            break
                    except anyio.EndOfStream:
                        break
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
                        if isinstance(message, ResultMessage):
                            result_sent = True
                            item = message_to_v3(message, stream.result_raw)
                        else:
                            if isinstance(message, SystemMessage) and isinstance(message.data.get("session_id"), str):
                                self.active_sessions.add(message.data["session_id"])
                            item = message_to_v3(message)
                        try:
                            send.send_nowait(item)  # no checkpoint while the consumer keeps up
                        except anyio.WouldBlock:
                            await send.send(item)
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
            self._record(prompt, outcome, result_sent, _facts(stream))
            if outcome.failure is not None and not result_sent:
                await send.send(failure_to_v3(outcome, outcome.failure))

    def _record(self, prompt: str, outcome: QueryOutcome, result_sent: bool,
                facts: StreamFacts | None = None) -> None:
        if outcome.session_id is not None:
            self.active_sessions.discard(outcome.session_id)
        if get_mode() == "shadow":
            verdict = v3_verdict(outcome, facts or StreamFacts())
            if verdict is not None:
                with self._lock:
                    self._masked += 1
                MaskedFailureLog(self.working_dir).record(prompt, outcome, verdict)
        failure = outcome.failure
        if failure is None:
            return
        with self._lock:
            if result_sent and failure.kind in (FailureKind.CLEANUP_INCOMPLETE, FailureKind.BUDGET_EXCEEDED):
                self._teardown_problems += 1
            self._errors[failure.kind.value] = self._errors.get(failure.kind.value, 0) + 1
        self.log.info("v3.failure", kind=failure.kind.value, after_result=result_sent)
        if failure.kind is not FailureKind.CANCELLED:  # V3 logged errors, not a caller's own cancellation
            stability.append(self.working_dir, self.verbose, failure)

    def _classify_error(self, e: BaseException) -> str:
        """V3's name, honest content: the FailureKind value, decided by type. It is never
        ``"taskgroup_cleanup"``, so V3 code that masked that category now masks nothing."""
        return classify_exception(e, side_effects=False).kind.value

    execute_phase_with_fixes = execute_phase  # V4's name for the same call

    def get_taskgroup_error_summary(self) -> dict[str, Any]:
        """V3's keys, read from V3's stability log as V3 did (``no_data``, ``total_errors``,
        ``recent_errors_count``, ``error_types``, ``severity_distribution``, ``most_common_type``,
        ``last_error_time``), with real failures in it; plus this process's own counts."""
        summary = stability.summary(self.working_dir)
        with self._lock:
            summary.update(by_kind=dict(self._errors), teardown_problems_after_result=self._teardown_problems,
                           masked_by_v3_in_shadow_mode=self._masked, fabricated_successes=0)
        return summary

    def get_session_status(self) -> dict[str, Any]:
        """V4's status call: sessions whose query is still running."""
        with self._lock:
            sessions = list(self.active_sessions)
        return {"active_sessions": len(sessions), "session_ids": sessions,
                "log_file": str(self.working_dir / stability.LOG_RELATIVE), "cleanup_timeout": 5.0}


def _facts(stream: Any) -> StreamFacts:
    return StreamFacts(*stream.stdout_shape)


def _with_cwd(options: ClaudeCodeOptions, cwd: Path) -> ClaudeCodeOptions:
    return replace(options, cwd=str(cwd))


_wrapper: V3QueryWrapper | None = None
_wrapper_lock = threading.Lock()


def get_v3_wrapper(working_dir: str | Path, verbose: bool = False) -> V3QueryWrapper:
    """V3's process-wide wrapper: the first call's working directory wins, as in V3 (its summary and
    stability log live there). Shared safely: it keeps counters, never loop-bound state."""
    global _wrapper
    with _wrapper_lock:
        if _wrapper is None:
            _wrapper = V3QueryWrapper(working_dir, verbose)
        return _wrapper


get_v4_fixed_wrapper = get_v3_wrapper
V4FixedQueryWrapper = V3QueryWrapper


async def query_v3(prompt: str, options: ClaudeCodeOptions | None, working_dir: str | Path,
                   verbose: bool = False) -> AsyncGenerator[dict[str, Any], None]:
    """V3's entry point. Iterate it with ``async for``; leaving early is safe (see the module doc)."""
    async with contextlib.aclosing(get_v3_wrapper(working_dir, verbose).execute_phase(prompt, options)) as items:
        async for item in items:
            yield item


query_v4_fixed = query_v3  # V4's name, same signature
