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
flattens exception groups. The layout, in three layers: ``_backends/`` (the SDK interface, with ``_code``
and ``_agent``, one file per SDK); ``_containment/`` (``/proc``, cgroups, the process tree, the host guard,
contained commands: what ends a query's tree); and the query itself at the top: ``_scope`` (the
task-owned pump), ``_transport`` (one CLI process), ``_outcome`` (the data) and ``_classify`` (its
decision). Everything V3 (the drop-in, its dicts, legacy and shadow modes, the stability log) is
``sdk_wrapper.v3``; ``sdk_wrapper.lowlevel`` is the plumbing the orchestrator uses.
"""

from __future__ import annotations

import typing

from ._lazy import lazy_names as _lazy_names

if typing.TYPE_CHECKING:  # the same names for type checkers; at run time each is imported when first used
    from ._backends import sdk_of
    from ._classify import leaves as exception_leaves
    from ._containment._cgroup import CpuUsage
    from ._containment._contained import CommandOutcome, run_contained
    from ._containment._host import HostContainment, cgroup_move_ms, host_containment
    from ._containment._proctree import end_query_tree
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
    from ._redact import redact, redact_data, redact_event
    from ._retry import RetryPolicy
    from ._run import run_query
    from ._scope import QueryStream, open_query
    from ._tracker import OpenResource, ResourceTracker
    from ._webhook import ResultWebhook

#: where each public name lives (module, name there): importing the package imports none of them, so code
#: that needs ``redact`` or an error class (the command line's status, report and Temporal commands) does
#: not pay for an SDK, httpx or tenacity; ``sdk_wrapper.X`` imports X's module the first time it is used
_WHERE = {
    "ArgumentTypeError": ("._errors", "ArgumentTypeError"),
    "Attempt": ("._outcome", "Attempt"),
    "CLIPathError": ("._errors", "CLIPathError"),
    "ClaudeScopeError": ("._errors", "ClaudeScopeError"),
    "CleanupReport": ("._outcome", "CleanupReport"),
    "CommandOutcome": ("._containment._contained", "CommandOutcome"),
    "Containment": ("._outcome", "Containment"),
    "CpuUsage": ("._containment._cgroup", "CpuUsage"),
    "Failure": ("._outcome", "Failure"),
    "FailureKind": ("._outcome", "FailureKind"),
    "HostContainment": ("._containment._host", "HostContainment"),
    "InvalidOutputError": ("._errors", "InvalidOutputError"),
    "LineTooLongError": ("._errors", "LineTooLongError"),
    "OpenResource": ("._tracker", "OpenResource"),
    "Preflight": ("._preflight", "Preflight"),
    "QueryLimits": ("._outcome", "QueryLimits"),
    "QueryOutcome": ("._outcome", "QueryOutcome"),
    "QueryStream": ("._scope", "QueryStream"),
    "ResourceTracker": ("._tracker", "ResourceTracker"),
    "ResultWebhook": ("._webhook", "ResultWebhook"),
    "RetryPolicy": ("._retry", "RetryPolicy"),
    "SDKReaderError": ("._errors", "SDKReaderError"),
    "SpawnedCLI": ("._outcome", "SpawnedCLI"),
    "StateError": ("._errors", "StateError"),
    "UsageError": ("._errors", "UsageError"),
    "WebhookDelivery": ("._outcome", "WebhookDelivery"),
    "cgroup_move_ms": ("._containment._host", "cgroup_move_ms"),
    "end_query_tree": ("._containment._proctree", "end_query_tree"),
    "exception_leaves": ("._classify", "leaves"),
    "get_logger": ("._logging", "get_logger"),
    "host_containment": ("._containment._host", "host_containment"),
    "open_query": ("._scope", "open_query"),
    "preflight": ("._preflight", "preflight"),
    "redact": ("._redact", "redact"),
    "redact_data": ("._redact", "redact_data"),
    "redact_event": ("._redact", "redact_event"),
    "run_contained": ("._containment._contained", "run_contained"),
    "run_query": ("._run", "run_query"),
    "sdk_of": ("._backends", "sdk_of"),
}



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

__getattr__, __dir__ = _lazy_names(__name__, _WHERE, __all__)
