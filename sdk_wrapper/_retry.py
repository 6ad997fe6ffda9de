"""Retrying a query, only where it is known to be safe (on tenacity).

A failure is retried when its kind is one the policy names (by default: whatever the classifier marked
``retryable``: rate limits, overload, a crash or stall before any side effect) and, unless the caller opts
in with ``after_side_effects=True``, only if the CLI never started a tool. ``wait=False`` removes the
sleeps, for tests. Every attempt is kept in ``QueryOutcome.attempts``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_none,
    wait_random,
)

from ._errors import UsageError
from ._logging import get_logger
from ._outcome import Attempt, FailureKind, QueryOutcome

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. ``kinds`` None means "the kinds the classifier marks retryable"."""

    attempts: int = 3
    initial_wait_s: float = 1.0
    max_wait_s: float = 30.0
    jitter_s: float = 1.0
    kinds: frozenset[FailureKind] | None = None
    after_side_effects: bool = False
    wait: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise UsageError(f"RetryPolicy.attempts must be an integer >= 1, got {self.attempts!r}")
        for name in ("initial_wait_s", "max_wait_s", "jitter_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                    and value >= 0):
                raise UsageError(f"RetryPolicy.{name} must be a finite number >= 0, got {value!r}")

    def should_retry(self, outcome: QueryOutcome) -> bool:
        failure = outcome.failure
        if failure is None or failure.kind is FailureKind.CANCELLED:
            return False
        if failure.side_effects and not self.after_side_effects:
            return False
        return failure.retryable if self.kinds is None else failure.kind in self.kinds

    async def run(self, once: Callable[[], Awaitable[QueryOutcome]]) -> QueryOutcome:
        """Call ``once`` until it succeeds, is not retryable, or attempts run out; return the last outcome,
        with every attempt in its ``attempts``. (How ``run_query`` retries.)"""
        log = get_logger()
        attempts: list[Attempt] = []
        last_end: list[float] = []

        async def attempt() -> QueryOutcome:
            begin = time.monotonic()
            waited = begin - last_end[0] if last_end else 0.0
            outcome = await once()
            last_end[:] = [time.monotonic()]
            kind = None if outcome.failure is None else outcome.failure.kind
            attempts.append(Attempt(len(attempts) + 1, outcome.ok, kind, outcome.duration_s, waited))
            log.info("retry.attempt", attempt=len(attempts), ok=outcome.ok, kind=None if kind is None else kind.value)
            return outcome

        outcome = await self.repeat(attempt, self.should_retry)
        return replace(outcome, attempts=tuple(attempts))

    async def repeat(self, once: Callable[[], Awaitable[T]], again: Callable[[T], bool]) -> T:
        """Call ``once`` while ``again(result)`` says so and attempts are left, waiting between as the policy
        says; return the last result. (``run`` is this with ``should_retry``; the orchestrator's phases use it
        with their own rule, which also retries a failed check when the phase learns from feedback.)"""

        def give_up(state: RetryCallState) -> T:
            assert state.outcome is not None
            result: T = state.outcome.result()
            return result

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            # min(initial * 2**(n-1), max) + uniform(0, jitter): the Temporal workflow's backoff_s, too.
            # (Not wait_exponential_jitter: its ``initial`` warns as deprecated from tenacity 9.2 on, and
            # the ``multiplier`` that replaces it is missing before.)
            wait=wait_exponential(multiplier=self.initial_wait_s, max=self.max_wait_s) + wait_random(0, self.jitter_s)
            if self.wait else wait_none(),
            retry=retry_if_result(again),
            sleep=anyio.sleep,
            retry_error_callback=give_up,
        )
        result: T = await retrying(once)
        return result
