"""The one place where SDK exceptions and CLI results become ``Failure`` values.

By type and by fields only: an exception's class (walking ``__cause__``, because the SDK re-raises its
own errors as plain ``Exception`` ``from`` the real one), a ``ProcessError``'s ``exit_code``, a result's
``subtype``, ``is_error``, ``terminal_reason`` and ``api_error_status``. Never by the text of a message.
Exception groups are split into their leaves; each leaf is classified and kept.
"""

from __future__ import annotations

import math
from typing import Any

from ._backend import loaded_backends
from ._errors import CLIPathError, InvalidOutputError
from ._outcome import Failure, FailureKind
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


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for inner in exc.exceptions:
            out.extend(_leaves(inner))
        return out
    return [exc]


def classify_exception(exc: BaseException, *, side_effects: bool, stderr_tail: str = "") -> Failure:
    """A Failure for ``exc``; an exception group yields the most telling leaf, with all leaves attached."""
    leaves = _leaves(exc)
    if len(leaves) > 1 or leaves[0] is not exc:
        classified = tuple(
            classify_exception(leaf, side_effects=side_effects, stderr_tail=stderr_tail) for leaf in leaves
        )
        kinds = [f.kind for f in classified]
        primary = next((classified[kinds.index(k)] for k in _PRIORITY if k in kinds), classified[0])
        return Failure(
            kind=primary.kind, message=f"{len(leaves)} errors; first: {primary.message}", retryable=primary.retryable,
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
    retryable = kind in (FailureKind.PROCESS_EXIT, FailureKind.STALLED) and not side_effects
    return Failure(
        kind=kind, message=redact(f"{type(exc).__name__}: {exc}")[:2000], retryable=retryable,
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
    kind, retryable = FailureKind.EXECUTION_ERROR, False
    if subtype == "error_max_turns":
        kind = FailureKind.MAX_TURNS
    elif subtype == "error_during_execution":
        kind = FailureKind.EXECUTION_ERROR
    elif isinstance(status, int) and status in (401, 403):
        kind = FailureKind.AUTH
    elif status == 429:
        kind, retryable = FailureKind.RATE_LIMITED, True
    elif isinstance(status, int) or raw.get("terminal_reason") == "api_error":
        kind = FailureKind.API_ERROR
        retryable = isinstance(status, int) and status in _RETRYABLE_STATUS
    return Failure(kind=kind, message=message, retryable=retryable, stderr_tail=stderr_tail, side_effects=side_effects)


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
