"""claude-scope's SDK wrapper: each Claude Code query in a scope it owns, ended completely, told truthfully.

    outcome = await run_query("Summarise README.md", ClaudeCodeOptions(cwd="."),
                              limits=QueryLimits(timeout_s=600, idle_timeout_s=120))
    if outcome.ok: ...                      # the CLI's own result
    else: outcome.failure.kind              # a FailureKind, never a fabricated success

    async with open_query(prompt, options) as stream:
        async for message in stream: ...    # the SDK's own message objects
    stream.outcome
"""

from __future__ import annotations

from ._cgroup import CpuUsage
from ._errors import ClaudeScopeError, CLIPathError, InvalidOutputError, LineTooLongError
from ._outcome import (
    Attempt,
    CleanupReport,
    Containment,
    Failure,
    FailureKind,
    QueryLimits,
    QueryOutcome,
    WebhookDelivery,
)
from ._preflight import Preflight, preflight
from ._redact import redact, redact_data, redact_event
from ._retry import RetryPolicy
from ._run import run_query
from ._scope import QueryStream, SpawnedCLI, open_query
from ._tracker import OpenResource, ResourceTracker
from ._webhook import ResultWebhook

__all__ = [
    "Attempt",
    "CLIPathError",
    "ClaudeScopeError",
    "CleanupReport",
    "Containment",
    "CpuUsage",
    "Failure",
    "FailureKind",
    "InvalidOutputError",
    "LineTooLongError",
    "OpenResource",
    "Preflight",
    "QueryLimits",
    "QueryOutcome",
    "QueryStream",
    "ResourceTracker",
    "ResultWebhook",
    "RetryPolicy",
    "SpawnedCLI",
    "WebhookDelivery",
    "open_query",
    "preflight",
    "redact",
    "redact_data",
    "redact_event",
    "run_query",
]
