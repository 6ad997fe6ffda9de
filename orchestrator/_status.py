"""A phase's status and the orchestrator's own failure kinds: plain enums, importable without any SDK.

They live apart from ``_model`` (which holds the SDK's option types) so that the scheduling rules, the
Temporal workflow's sandbox and a fast CLI can use them without importing an SDK.
"""

from __future__ import annotations

import enum


class PhaseStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    #: an approval gate: waiting, durably, for a person (``claude-scope approve`` / ``reject``)
    WAITING_APPROVAL = "waiting_approval"

    @property
    def ended(self) -> bool:
        return self in ENDED


#: the statuses a phase ends in (a set: the scheduler asks this for every pending phase's dependencies)
ENDED = frozenset({PhaseStatus.SUCCEEDED, PhaseStatus.FAILED, PhaseStatus.TIMED_OUT, PhaseStatus.CANCELLED,
                   PhaseStatus.SKIPPED})


class PhaseKind(enum.StrEnum):
    """Why a phase did not succeed when its query is not the reason (the query's own reasons are
    ``FailureKind``s, e.g. ``budget_exceeded`` for one query over its ``max_cost_usd``)."""

    #: the CLI's result was ok, but an evidence check failed
    VALIDATION_FAILED = "validation_failed"
    #: skipped: the run's budget was spent by earlier phases
    RUN_BUDGET_SPENT = "run_budget_spent"
    #: an isolated attempt passed, but its changes conflict with the project's checkout (nothing was applied)
    MERGE_CONFLICT = "merge_conflict"
    #: git could not make an isolated attempt's worktree (the error says why)
    ISOLATION_FAILED = "isolation_failed"
    #: a planner succeeded, but the plan it wrote cannot run (the evidence says why)
    PLAN_INVALID = "plan_invalid"
    #: a person rejected it at its approval gate (the note says why)
    REJECTED = "rejected"
    #: its message log could not be written (a full disk, say): the query was ended rather than run unrecorded
    MESSAGE_LOG_FAILED = "message_log_failed"
