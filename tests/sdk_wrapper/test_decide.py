"""``decide``: the precedence of a query's failure, one row per rule and per pair of rules that meet.

Pure: no process, no event loop. Each row names the facts that differ from a clean success and the
kind (and retryability) the outcome must carry; the order of the rows follows ``decide``'s docstring.
"""

from __future__ import annotations

from typing import Any

import pytest
from claude_code_sdk import CLINotFoundError, ProcessError

from sdk_wrapper import CleanupReport, FailureKind, InvalidOutputError, QueryLimits
from sdk_wrapper._classify import QueryFacts, Stop, decide

OK_RAW = {"type": "result", "subtype": "success", "is_error": False, "result": "done"}
LEFT = CleanupReport(leftover_pids=(4242,))
CAPPED = QueryLimits(max_cost_usd=0.5, timeout_s=10, idle_timeout_s=5)


def facts(**changes: Any) -> QueryFacts:
    base: dict[str, Any] = {"stop": Stop.END, "result_raw": OK_RAW, "got_result": True, "cost_usd": 0.1,
                            "limits": CAPPED}
    return QueryFacts(**{**base, **changes})


ROWS: list[tuple[str, QueryFacts, FailureKind | None, bool]] = [
    ("clean success", facts(), None, False),
    # 1. an exception wins over everything after it
    ("exception", facts(stop=Stop.ERROR, error=ProcessError("x", exit_code=1), got_result=False, result_raw=None),
     FailureKind.PROCESS_EXIT, True),
    ("exception after a tool call is not retryable",
     facts(stop=Stop.ERROR, error=ProcessError("x", exit_code=1), got_result=False, side_effects=True),
     FailureKind.PROCESS_EXIT, False),
    ("exception beats a leftover process", facts(stop=Stop.ERROR, error=InvalidOutputError("x", excerpt="{",
     line_number=3), cleanup=LEFT), FailureKind.INVALID_OUTPUT, False),
    ("exception group: most telling leaf", facts(stop=Stop.ERROR, error=ExceptionGroup("g", [
        ValueError("v"), CLINotFoundError("nf")])), FailureKind.CLI_NOT_FOUND, False),
    # 2. limits
    ("timeout", facts(stop=Stop.TIMEOUT, got_result=False, result_raw=None), FailureKind.TIMEOUT, False),
    ("stall before side effects", facts(stop=Stop.STALL, got_result=False, result_raw=None),
     FailureKind.STALLED, True),
    ("stall after side effects", facts(stop=Stop.STALL, got_result=False, side_effects=True),
     FailureKind.STALLED, False),
    ("timeout beats a leftover process", facts(stop=Stop.TIMEOUT, cleanup=LEFT), FailureKind.TIMEOUT, False),
    # 3. cancellation and the consumer leaving
    ("cancelled from outside, even with a result", facts(stop=Stop.CANCELLED), FailureKind.CANCELLED, False),
    ("consumer left before the result", facts(stop=Stop.CONSUMER_LEFT, got_result=False, result_raw=None),
     FailureKind.CANCELLED, False),
    ("consumer left after the result: the result counts", facts(stop=Stop.CONSUMER_LEFT), None, False),
    # 4. the CLI's own error result
    ("max turns", facts(result_raw={**OK_RAW, "subtype": "error_max_turns", "is_error": True}),
     FailureKind.MAX_TURNS, False),
    ("success subtype with is_error", facts(result_raw={**OK_RAW, "is_error": True}),
     FailureKind.EXECUTION_ERROR, False),
    ("rate limited", facts(result_raw={**OK_RAW, "is_error": True, "api_error_status": 429}),
     FailureKind.RATE_LIMITED, True),
    ("overloaded", facts(result_raw={**OK_RAW, "is_error": True, "api_error_status": 529}),
     FailureKind.API_ERROR, True),
    ("bad request", facts(result_raw={**OK_RAW, "is_error": True, "api_error_status": 400}),
     FailureKind.API_ERROR, False),
    ("auth", facts(result_raw={**OK_RAW, "is_error": True, "api_error_status": 401}), FailureKind.AUTH, False),
    ("error result beats the budget", facts(result_raw={**OK_RAW, "subtype": "error_max_turns", "is_error": True},
     cost_usd=9.0), FailureKind.MAX_TURNS, False),
    # 5. budget
    ("over budget", facts(cost_usd=0.51), FailureKind.BUDGET_EXCEEDED, False),
    ("at budget", facts(cost_usd=0.5), None, False),
    ("no cost said: no budget verdict", facts(cost_usd=None), None, False),
    ("budget beats a leftover process", facts(cost_usd=1.0, cleanup=LEFT), FailureKind.BUDGET_EXCEEDED, False),
    # 6. no result
    ("no result", facts(got_result=False, result_raw=None, cleanup=CleanupReport(exit_code=0)),
     FailureKind.PROCESS_EXIT, True),
    ("no result after a tool call", facts(got_result=False, result_raw=None, side_effects=True),
     FailureKind.PROCESS_EXIT, False),
    ("a raw result line the SDK never delivered is no result", facts(got_result=False),
     FailureKind.PROCESS_EXIT, True),
    # 7. cleanup
    ("leftover process after a success", facts(cleanup=LEFT), FailureKind.CLEANUP_INCOMPLETE, False),
]


@pytest.mark.parametrize(("facts_", "kind", "retryable"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_decide(facts_: QueryFacts, kind: FailureKind | None, retryable: bool) -> None:
    failure = decide(facts_)
    if kind is None:
        assert failure is None
        return
    assert failure is not None and failure.kind is kind
    assert failure.retryable is retryable
    assert failure.side_effects is facts_.side_effects


def test_details_travel_with_the_failure() -> None:
    failure = decide(facts(got_result=False, result_raw=None, cleanup=CleanupReport(exit_code=3),
                           stderr_tail="fatal: boom"))
    assert failure is not None and failure.exit_code == 3 and failure.stderr_tail == "fatal: boom"
    timeout = decide(facts(stop=Stop.TIMEOUT, stderr_tail="slow"))
    assert timeout is not None and "timeout_s=10" in timeout.message and timeout.stderr_tail == "slow"
    left = decide(facts(cleanup=LEFT))
    assert left is not None and "4242" in left.message
