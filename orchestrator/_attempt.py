"""One attempt's result (``Tried``): the query's outcome and, when its result was ok, its checks' results
(an isolated attempt's merge and a race's decision among them)."""

from __future__ import annotations

from dataclasses import dataclass

from sdk_wrapper import FailureKind, QueryOutcome, redact

from ._checks import CheckResult
from ._feedback import told_after


@dataclass(frozen=True)
class Tried:
    """One attempt: the query's outcome and, when its result was ok, the checks' results."""

    query: QueryOutcome
    checks: tuple[CheckResult, ...] = ()
    #: the attempt's message log could not be written (why): the attempt failed, whatever its query did
    log_error: str = ""

    @property
    def passed(self) -> bool:
        return self.query.ok and all(c.passed for c in self.checks) and not self.log_error

    @property
    def conflicted(self) -> bool:
        """Its changes could not be merged: another attempt from the same start would conflict the same way."""
        return conflicted(self.checks)

    def feedback(self, number: int) -> str:
        """What the next attempt is told of this one (``_feedback.told_after``), redacted."""
        failure = self.query.failure
        return redact(told_after(
            number, query_ok=self.query.ok,
            kind=(failure.kind if failure is not None else FailureKind.EXECUTION_ERROR).value,
            message=failure.message if failure is not None else "error result",
            stderr_tail=failure.stderr_tail if failure is not None else "",
            checks=[c.to_dict() for c in self.checks]))


def conflicted(checks: tuple[CheckResult, ...] | list[CheckResult]) -> bool:
    return any(c.details.get("merge") == "conflict" and not c.passed for c in checks)
