"""Outcomes are data: what a query produced, how it failed, and what its cleanup did.

Every type here is a frozen dataclass (or a str enum), so a caller can inspect, log and store an outcome
without touching live objects. ``QueryOutcome.ok`` is true only when the CLI itself sent a result that is not
an error; nothing in this package ever builds a success the CLI did not send.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from ._containment._cgroup import CpuUsage
from ._errors import UsageError

if TYPE_CHECKING:
    import claude_agent_sdk
    import claude_code_sdk

    #: the CLI's result as the query's SDK parsed it (both classes have the same fields that are used here).
    AnyResultMessage: TypeAlias = claude_code_sdk.ResultMessage | claude_agent_sdk.ResultMessage


class FailureKind(enum.StrEnum):
    """Why a query did not succeed. Decided by exception type and result fields, never by message text."""

    CLI_NOT_FOUND = "cli_not_found"
    PROCESS_EXIT = "process_exit"
    INVALID_OUTPUT = "invalid_output"
    TIMEOUT = "timeout"
    STALLED = "stalled"
    CANCELLED = "cancelled"
    MAX_TURNS = "max_turns"
    EXECUTION_ERROR = "execution_error"
    API_ERROR = "api_error"
    AUTH = "auth"
    RATE_LIMITED = "rate_limited"
    BUDGET_EXCEEDED = "budget_exceeded"
    CLEANUP_INCOMPLETE = "cleanup_incomplete"
    #: the agent called the same tool with the same input ``QueryLimits.max_repeats`` times in a row
    STUCK = "stuck"
    #: the query's process tree hit its memory or process-count cap (``QueryLimits.memory_mb``, ``max_pids``)
    RESOURCE_LIMIT = "resource_limit"
    #: an exception type this package does not know; kept with its cause rather than guessed at.
    UNEXPECTED = "unexpected"


@dataclass(frozen=True)
class Failure:
    """A structured failure. ``cause`` is the original exception (also chained by ``raise ... from``)."""

    kind: FailureKind
    message: str
    retryable: bool = False
    exit_code: int | None = None
    stderr_tail: str = ""
    side_effects: bool = False
    cause: BaseException | None = field(default=None, repr=False, compare=False)
    #: for an exception group: every leaf, each classified on its own.
    leaves: tuple[Failure, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the cause as its type name): for journals, logs and the V3 drop-in."""
        return {
            "kind": self.kind.value,
            "message": self.message,
            "retryable": self.retryable,
            "exit_code": self.exit_code,
            "stderr_tail": self.stderr_tail,
            "side_effects": self.side_effects,
            "cause_type": None if self.cause is None else type(self.cause).__qualname__,
            "leaves": [leaf.to_dict() for leaf in self.leaves],
        }


class Containment(enum.StrEnum):
    """How a query's process tree was held, from strongest to weakest.

    ``cgroup``: the CLI ran in a cgroup of its own; everything it started was in it, ``cgroup.kill`` ended
    it and an empty cgroup proved it. ``subreaper``: descendants are found by process tree, session and the
    ``CLAUDE_SCOPE_QUERY_ID`` marker, and orphans come back to us; one that drops both session and marker is
    reported in ``unattributed_pids``, not proved gone. ``marker``: tree, session and marker only (no
    subreaper: orphans go to init, where only the marker finds them).
    """

    CGROUP = "cgroup"
    SUBREAPER = "subreaper"
    MARKER = "marker"


@dataclass(frozen=True)
class CleanupReport:
    """What ending the CLI's process tree took. ``leftover_pids`` must be empty; if not, it is a failure.

    ``verified`` is the claim that nothing the query started is left: true only when nothing is left, nothing
    unexplained came back to us (``unattributed_pids``: processes reparented to this process during the query
    that no cgroup, session or marker ties to any query; reported, not killed), and the containment could
    have seen it (not ``marker``, where such an orphan goes to init unseen).
    """

    pids_ended: tuple[int, ...] = ()
    #: (target, signal name): a pid, a negative process-group id, or 0 with ``cgroup.kill`` for the cgroup
    signals_sent: tuple[tuple[int, str], ...] = ()
    sigkill_needed: bool = False
    leftover_pids: tuple[int, ...] = ()
    exit_code: int | None = None
    duration_s: float = 0.0
    containment: Containment | None = None
    #: CPU time of the whole tree (cgroup containment only).
    cpu: CpuUsage | None = None
    unattributed_pids: tuple[int, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.leftover_pids

    @property
    def verified(self) -> bool:
        # Under ``marker`` containment an orphan that dropped the marker went to init, out of our sight:
        # nothing is known to be left, but nothing is proved either.
        return self.clean and not self.unattributed_pids and self.containment is not Containment.MARKER

    def to_dict(self) -> dict[str, Any]:
        """As JSON: a journal row, a workflow's history, a run page, a check's evidence."""
        return {"pids_ended": list(self.pids_ended), "signals_sent": [list(s) for s in self.signals_sent],
                "sigkill_needed": self.sigkill_needed, "leftover_pids": list(self.leftover_pids),
                "exit_code": self.exit_code, "duration_s": self.duration_s,
                "containment": None if self.containment is None else self.containment.value,
                "verified": self.verified}


@dataclass(frozen=True)
class QueryLimits:
    """Bounds on one query. None means unbounded for that dimension.

    ``idle_timeout_s`` is the longest gap between two CLI messages (a stalled CLI, a hung WebSearch);
    time the consumer spends on a message does not count. The graces bound cleanup: after a result the
    CLI gets ``exit_grace_s`` to exit by itself, then SIGTERM, ``terminate_grace_s`` later SIGKILL, then
    ``kill_grace_s`` for the kernel to finish.
    """

    timeout_s: float | None = None
    idle_timeout_s: float | None = None
    max_cost_usd: float | None = None
    #: the same tool called with the same input this many times in a row ends the query as ``stuck``
    max_repeats: int | None = None
    #: a memory cap (MiB) and a process-count cap (threads count too) on the query's whole tree, in its cgroup
    #: (see ``_caps``); refused at start where the host cannot enforce them
    memory_mb: int | None = None
    max_pids: int | None = None
    terminate_grace_s: float = 3.0
    kill_grace_s: float = 2.0
    exit_grace_s: float = 2.0
    max_line_bytes: int = 8 * 1024 * 1024
    stderr_tail_bytes: int = 16 * 1024
    buffer_messages: int = 64

    def __post_init__(self) -> None:
        for name in ("timeout_s", "idle_timeout_s", "max_cost_usd"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and math.isfinite(value) and value > 0):
                raise UsageError(f"QueryLimits.{name} must be a finite positive number or None, got {value!r}")
        for name in ("terminate_grace_s", "kill_grace_s", "exit_grace_s"):
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(value) and value >= 0):
                raise UsageError(f"QueryLimits.{name} must be a finite number >= 0, got {value!r}")
        if self.max_repeats is not None and (not isinstance(self.max_repeats, int)
                                             or isinstance(self.max_repeats, bool) or self.max_repeats < 2):
            raise UsageError(f"QueryLimits.max_repeats must be an integer >= 2 or None, got {self.max_repeats!r}")
        for name in ("memory_mb", "max_pids"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise UsageError(f"QueryLimits.{name} must be a positive integer or None, got {value!r}")
        for name in ("max_line_bytes", "stderr_tail_bytes", "buffer_messages"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"QueryLimits.{name} must be a positive integer, got {value!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Attempt:
    """One try of a query under a retry policy."""

    number: int
    ok: bool
    failure_kind: FailureKind | None
    duration_s: float
    waited_s: float = 0.0


@dataclass(frozen=True)
class WebhookDelivery:
    """What became of a result webhook's POST: ``delivered`` means a 2xx answer within the timeout."""

    delivered: bool
    status_code: int | None
    error: str | None
    duration_s: float


@dataclass(frozen=True)
class QueryOutcome:
    """The end of a query: the CLI's own result (or None) and, unless ok, a Failure.

    ``cost_usd`` is the CLI's ``total_cost_usd``: None when the CLI never said, never a made-up 0.0.
    """

    result: AnyResultMessage | None
    failure: Failure | None
    session_id: str | None = None
    cost_usd: float | None = None
    num_turns: int | None = None
    duration_s: float = 0.0
    message_count: int = 0
    cleanup: CleanupReport = field(default_factory=CleanupReport)
    attempts: tuple[Attempt, ...] = ()
    #: the raw result line, with fields ``ResultMessage`` does not keep (terminal_reason, api_error_status).
    result_raw: dict[str, Any] | None = field(default=None, repr=False)
    #: the id in this query's log events and in its CLI tree's ``CLAUDE_SCOPE_QUERY_ID`` (the last attempt's).
    query_id: str | None = None
    #: the result webhook's delivery, when one was configured; never part of ``ok``.
    webhook: WebhookDelivery | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.result is not None and not self.result.is_error

    @property
    def cpu_s(self) -> float | None:
        """CPU seconds the query's whole process tree used (user + system; cgroup containment only)."""
        return None if self.cleanup.cpu is None else self.cleanup.cpu.total_s


@dataclass(frozen=True)
class SpawnedCLI:
    """A CLI process (or a contained command) as a journal records it: the pid with its start time (so a
    reused pid is never mistaken for it) and the query id its whole tree carries in ``CLAUDE_SCOPE_QUERY_ID``."""

    pid: int
    create_time: float
    query_id: str
