"""``run_query``: one query to its end, as a value."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import replace
from os import PathLike
from typing import TYPE_CHECKING, Any

from claude_code_sdk import ClaudeCodeOptions

from ._logging import get_logger
from ._options import check_arguments
from ._outcome import Attempt, QueryLimits, QueryOutcome
from ._retry import RetryPolicy
from ._scope import run_checked
from ._tracker import ResourceTracker
from ._webhook import ResultWebhook, deliver

if TYPE_CHECKING:
    from claude_agent_sdk import ClaudeAgentOptions


async def run_query(
    prompt: str | AsyncIterable[dict[str, Any]],
    options: ClaudeCodeOptions | ClaudeAgentOptions | None = None,
    *,
    limits: QueryLimits | None = None,
    retry: RetryPolicy | None = None,
    cli_path: str | PathLike[str] | None = None,
    tracker: ResourceTracker | None = None,
    webhook: ResultWebhook | None = None,
) -> QueryOutcome:
    """Run a query to its end and return its outcome: the CLI's real result, or a Failure.

    ``options`` is a ``claude_code_sdk.ClaudeCodeOptions`` or a ``claude_agent_sdk.ClaudeAgentOptions``.
    Never raises for CLI or agent failures. Raises TypeError for arguments of the wrong type. On
    cancellation the CLI's process tree is ended first (shielded), then the cancellation propagates.
    A streaming prompt (an AsyncIterable) is consumed by the first attempt, so it is never retried.
    ``webhook`` gets the final outcome (after every attempt) POSTed once; see ``ResultWebhook``.
    """
    checked = check_arguments(prompt, options, limits, webhook=webhook, retry=retry)

    async def once() -> QueryOutcome:
        return await run_checked(checked, cli_path=cli_path, tracker=tracker)

    if retry is None or not isinstance(prompt, str):
        outcome = await once()
        kind = None if outcome.failure is None else outcome.failure.kind
        outcome = replace(outcome, attempts=(Attempt(1, outcome.ok, kind, outcome.duration_s),))
    else:
        outcome = await retry.run(once)
    if webhook is not None:  # once, after every attempt (open_query's own webhook would post each attempt)
        outcome = await deliver(webhook, outcome, log=get_logger(query_id=outcome.query_id), tracker=tracker)
    return outcome
