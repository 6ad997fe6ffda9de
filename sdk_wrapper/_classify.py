"""The one place where a query's end becomes its ``Failure`` (or None): exceptions, results, limits, cleanup.

``decide`` is a pure function: the facts of a query's end in (``QueryFacts``: how the message loop
stopped, the exception if any, the CLI's result line, cost, cleanup report), ``Failure | None`` out, with
the precedence written once (see its docstring and the table in ``tests/sdk_wrapper/test_decide.py``).
``retryable`` is decided in one function too. Classification is by type and by fields only: an
exception's class (walking ``__cause__``, because the SDK re-raises its own errors as plain
``Exception`` ``from`` the real one), a ``ProcessError``'s ``exit_code``, a result's ``subtype``,
``is_error``, ``terminal_reason`` and ``api_error_status``. Never by the text of a message.
Exception groups are split into their leaves; each leaf is classified and kept.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from ._backends import loaded_backends
from ._errors import CLIPathError, InvalidOutputError
from ._outcome import CleanupReport, Failure, FailureKind, QueryLimits
from ._redact import redact

# When several leaves of a group fail, the outcome's kind is the first of these that occurs.
_PRIORITY = [
    FailureKind.CLI_NOT_FOUND, FailureKind.AUTH, FailureKind.INVALID_OUTPUT, FailureKind.PROCESS_EXIT,
    FailureKind.TIMEOUT, FailureKind.STALLED, FailureKind.UNEXPECTED, FailureKind.CANCELLED,
]
_RETRYABLE_STATUS = {408, 409, 500, 502, 503, 504, 529}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__
    return seen


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions an exception (group) is made of, groups flattened; a plain exception is its own leaf."""
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for inner in exc.exceptions:
            out.extend(leaves(inner))
        return out
    return [exc]


def retryable(kind: FailureKind, *, side_effects: bool, api_status: object = None) -> bool:
    """Whether trying again is safe and may help: a crash or a stall before any side effect (a tool call),
    a rate limit, or an API status that means "try later". A timeout is not: the next try gets as long."""
    if kind in (FailureKind.PROCESS_EXIT, FailureKind.STALLED):
        return not side_effects
    if kind is FailureKind.RATE_LIMITED:
        return True
    return kind is FailureKind.API_ERROR and isinstance(api_status, int) and api_status in _RETRYABLE_STATUS


def classify_exception(exc: BaseException, *, side_effects: bool, stderr_tail: str = "") -> Failure:
    """A Failure for ``exc``; an exception group yields the most telling leaf, with all leaves attached."""
    parts = leaves(exc)
    if len(parts) > 1 or parts[0] is not exc:
        classified = tuple(
            classify_exception(leaf, side_effects=side_effects, stderr_tail=stderr_tail) for leaf in parts
        )
        kinds = [f.kind for f in classified]
        primary = next((classified[kinds.index(k)] for k in _PRIORITY if k in kinds), classified[0])
        return Failure(
            kind=primary.kind, message=f"{len(parts)} errors; first: {primary.message}", retryable=primary.retryable,
            exit_code=primary.exit_code, stderr_tail=primary.stderr_tail, side_effects=side_effects, cause=exc,
            leaves=classified,
        )
    kind, exit_code = FailureKind.UNEXPECTED, None
    for link in _chain(exc):
        found = _kind_of(link)
        if found is not None:
            kind = found
            code = getattr(link, "exit_code", None) if kind is FailureKind.PROCESS_EXIT else None
            exit_code = code if isinstance(code, int) else None
            break
    return Failure(
        kind=kind, message=redact(f"{type(exc).__name__}: {exc}")[:2000],
        retryable=retryable(kind, side_effects=side_effects),
        exit_code=exit_code, stderr_tail=stderr_tail, side_effects=side_effects, cause=exc,
    )


def _kind_of(exc: BaseException) -> FailureKind | None:
    if isinstance(exc, CLIPathError):
        return FailureKind.CLI_NOT_FOUND
    if isinstance(exc, InvalidOutputError):
        return FailureKind.INVALID_OUTPUT
    for backend in loaded_backends():  # each SDK's own classes (CLINotFoundError subclasses CLIConnectionError)
        if isinstance(exc, backend.not_found_error):
            return FailureKind.CLI_NOT_FOUND
        if isinstance(exc, backend.invalid_output_errors):
            return FailureKind.INVALID_OUTPUT
        if isinstance(exc, backend.process_error | backend.connection_error):
            return FailureKind.PROCESS_EXIT
    if isinstance(exc, TimeoutError):
        return FailureKind.TIMEOUT
    return None


def classify_result(raw: dict[str, Any], *, side_effects: bool, stderr_tail: str = "") -> Failure | None:
    """None when the CLI's result is a success; otherwise the Failure its fields describe."""
    subtype = raw.get("subtype")
    is_error = raw.get("is_error") is True
    if subtype == "success" and not is_error:
        return None
    message = redact(str(raw.get("result") or error_reason(raw) or subtype or "error result"))[:2000]
    status = raw.get("api_error_status")
    kind = FailureKind.EXECUTION_ERROR
    if subtype == "error_max_turns":
        kind = FailureKind.MAX_TURNS
    elif subtype == "error_max_budget_usd":  # the CLI stopped itself at --max-budget-usd
        kind = FailureKind.BUDGET_EXCEEDED
    elif subtype == "error_during_execution":
        kind = FailureKind.EXECUTION_ERROR
    elif isinstance(status, int) and status in (401, 403):
        kind = FailureKind.AUTH
    elif status == 429:
        kind = FailureKind.RATE_LIMITED
    elif isinstance(status, int) or raw.get("terminal_reason") == "api_error":
        kind = FailureKind.API_ERROR
    return Failure(kind=kind, message=message, retryable=retryable(kind, side_effects=side_effects, api_status=status),
                   stderr_tail=stderr_tail, side_effects=side_effects)


#: the CLI's cost field, then the older names it used (V3's own patch mapped the same three)
COST_KEYS = ("total_cost_usd", "total_cost", "cost_usd")


def cli_cost(raw: dict[str, Any] | None) -> float | None:
    """The cost the CLI reported, under its current or an older field name; None when it said none."""
    for key in COST_KEYS:
        value = None if raw is None else raw.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def error_reason(raw: dict[str, Any] | None) -> str | None:
    """The reason an error result gives in ``errors`` (strings, or objects with a message): the CLI's
    ``error_max_turns`` result has no ``result`` text."""
    errors = None if raw is None else raw.get("errors")
    if not isinstance(errors, list):
        return None
    texts = [e if isinstance(e, str) else str(e.get("message", "")) if isinstance(e, dict) else "" for e in errors]
    return "; ".join(t for t in texts if t) or None


class Stop(enum.Enum):
    """How a query's message loop ended."""

    #: the stream ended by itself: the CLI's result arrived, or its stdout closed
    END = "end"
    #: an exception ended it (``QueryFacts.error``)
    ERROR = "error"
    #: ``QueryLimits.timeout_s`` passed
    TIMEOUT = "timeout"
    #: ``QueryLimits.idle_timeout_s`` passed without a message
    STALL = "stall"
    #: the consumer left the ``async with`` block (or closed its end) first
    CONSUMER_LEFT = "consumer_left"
    #: the query's task was cancelled from outside
    CANCELLED = "cancelled"
    #: the agent repeated one tool call ``QueryLimits.max_repeats`` times in a row (``QueryFacts.stuck``)
    STUCK = "stuck"
    #: the tree hit its memory or process-count cap (``QueryFacts.capped``)
    RESOURCE_LIMIT = "resource_limit"


@dataclass(frozen=True, kw_only=True)
class QueryFacts:
    """What is known once a query's tree is gone: everything ``decide`` needs, nothing live."""

    stop: Stop
    error: BaseException | None = None
    #: the CLI's result line as sent (None when none arrived)
    result_raw: dict[str, Any] | None = None
    #: the SDK parsed a result message and it reached the consumer's stream
    got_result: bool = False
    cost_usd: float | None = None
    limits: QueryLimits = field(default_factory=QueryLimits)
    cleanup: CleanupReport = field(default_factory=CleanupReport)
    side_effects: bool = False
    stderr_tail: str = ""
    #: the repeated tool call that made the query stuck (``Stop.STUCK``): what it was and how often
    stuck: str = ""
    #: the kernel's evidence that the tree hit a cap (``QueryLimits.memory_mb``, ``max_pids``)
    capped: str = ""


def decide(facts: QueryFacts) -> Failure | None:
    """The query's failure, or None for a success the CLI itself reported. First match wins:

    0. a cap hit (the cgroup's evidence: whatever the CLI then did, this is why);
    1. an exception (classified by type; groups split into leaves);
    2. the timeout, then the idle timeout; a stuck agent (one tool call repeated);
    3. a cancellation from outside; the consumer leaving before the result;
    4. the CLI's own error result (``subtype``, ``is_error``, ``api_error_status``);
    5. a cost over ``max_cost_usd``;
    6. no result at all (the CLI exited or closed stdout without one);
    7. processes left after cleanup.

    A later fact never hides an earlier one: a timed-out query whose cleanup also left a process is a
    timeout (the report still lists the process).
    """
    f, effects = facts, facts.side_effects
    if f.capped:
        return Failure(FailureKind.RESOURCE_LIMIT, f.capped, stderr_tail=f.stderr_tail, side_effects=effects)
    if f.stop is Stop.ERROR and f.error is not None:
        return classify_exception(f.error, side_effects=effects, stderr_tail=f.stderr_tail)
    if f.stop in (Stop.TIMEOUT, Stop.STALL):
        kind = FailureKind.TIMEOUT if f.stop is Stop.TIMEOUT else FailureKind.STALLED
        what = (f"no result within timeout_s={f.limits.timeout_s}" if f.stop is Stop.TIMEOUT
                else f"no message for idle_timeout_s={f.limits.idle_timeout_s}")
        return Failure(kind, what, retryable=retryable(kind, side_effects=effects), stderr_tail=f.stderr_tail,
                       side_effects=effects)
    if f.stop is Stop.STUCK:
        return Failure(FailureKind.STUCK, f.stuck, stderr_tail=f.stderr_tail, side_effects=effects)
    if f.stop is Stop.CANCELLED:
        return Failure(FailureKind.CANCELLED, "the query was cancelled", side_effects=effects)
    if f.stop is Stop.CONSUMER_LEFT and not f.got_result:
        return Failure(FailureKind.CANCELLED, "the consumer left before the CLI's result", side_effects=effects)
    if f.result_raw is not None:
        failure = classify_result(f.result_raw, side_effects=effects, stderr_tail=f.stderr_tail)
        if failure is not None:
            return failure
    budget = f.limits.max_cost_usd
    if f.got_result and f.cost_usd is not None and budget is not None and f.cost_usd > budget:
        return Failure(FailureKind.BUDGET_EXCEEDED, f"cost {f.cost_usd} USD is over max_cost_usd={budget}",
                       side_effects=effects)
    if not f.got_result:
        return Failure(FailureKind.PROCESS_EXIT, "the CLI ended without a result", exit_code=f.cleanup.exit_code,
                       retryable=retryable(FailureKind.PROCESS_EXIT, side_effects=effects),
                       stderr_tail=f.stderr_tail, side_effects=effects)
    if not f.cleanup.clean:
        return Failure(FailureKind.CLEANUP_INCOMPLETE, f"processes left: {list(f.cleanup.leftover_pids)}",
                       side_effects=effects)
    return None

