"""claude-scope's SDK wrapper: each Claude Code query in a scope it owns, ended completely, told truthfully.

    outcome = await run_query("Summarise README.md", ClaudeCodeOptions(cwd="."),
                              limits=QueryLimits(timeout_s=600, idle_timeout_s=120))
    if outcome.ok: ...                      # the CLI's own result
    else: outcome.failure.kind              # a FailureKind, never a fabricated success

    async with open_query(prompt, options) as stream:
        async for message in stream: ...    # the SDK's own message objects
    stream.outcome

``run_query`` and ``open_query`` raise only ``TypeError``/``ValueError`` for wrong arguments; everything
else is ``outcome.failure``. The exception classes exported here are what ``failure.cause`` may hold
(``InvalidOutputError`` with its excerpt and line number, ``CLIPathError`` with the path), not what those
calls raise. For code built on the wrapper (the orchestrator is): ``end_query_tree`` ends an orphaned
query's processes, ``host_containment`` says what holds a query's tree here, ``sdk_of`` tells which SDK
an options object belongs to, ``get_logger`` logs the way the wrapper does, ``exception_leaves``
flattens exception groups. The layout: ``_backend`` (the SDK interface) with ``_code`` and ``_agent``
(one file per SDK), ``_scope`` (the task-owned pump), ``_transport`` (one CLI process), ``_proctree`` /
``_cgroup`` / ``_guard`` (the process tree), ``_outcome`` (the data) and ``_classify`` (its decision).
"""

from __future__ import annotations

from ._backend import sdk_of
from ._cgroup import CpuUsage
from ._classify import leaves as exception_leaves
from ._contained import CommandOutcome, run_contained
from ._errors import (
    ArgumentTypeError,
    ClaudeScopeError,
    CLIPathError,
    InvalidOutputError,
    LineTooLongError,
    SDKReaderError,
    StateError,
    UsageError,
)
from ._host import HostContainment, cgroup_move_ms, host_containment
from ._logging import get_logger
from ._outcome import (
    Attempt,
    CleanupReport,
    Containment,
    Failure,
    FailureKind,
    QueryLimits,
    QueryOutcome,
    SpawnedCLI,
    WebhookDelivery,
)
from ._preflight import Preflight, preflight
from ._proctree import end_query_tree
from ._redact import redact, redact_data, redact_event
from ._retry import RetryPolicy
from ._run import run_query
from ._scope import QueryStream, open_query
from ._tracker import OpenResource, ResourceTracker
from ._webhook import ResultWebhook

__all__ = [
    "ArgumentTypeError",
    "Attempt",
    "CLIPathError",
    "ClaudeScopeError",
    "CleanupReport",
    "CommandOutcome",
    "Containment",
    "CpuUsage",
    "Failure",
    "FailureKind",
    "HostContainment",
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
    "SDKReaderError",
    "SpawnedCLI",
    "StateError",
    "UsageError",
    "WebhookDelivery",
    "cgroup_move_ms",
    "end_query_tree",
    "exception_leaves",
    "get_logger",
    "host_containment",
    "open_query",
    "preflight",
    "redact",
    "redact_data",
    "redact_event",
    "run_contained",
    "run_query",
    "sdk_of",
]
