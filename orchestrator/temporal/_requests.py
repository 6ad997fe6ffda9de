"""What the client sends the workflow and the workflow sends each attempt: dataclasses, which temporalio's
data converter writes as JSON objects and reads back by their fields (its own advice for workflow and
activity inputs: a field can be added with a default without breaking what is already running).

Workflows already running in an older shape keep working: their inputs were JSON objects with these same
keys (``run_id``, ``spec``, ``plan``, ``heartbeat_timeout_s``; an attempt's without the later fields, which
default), so they decode into these classes on replay and on retry (tests/temporal/test_replay.py).
What comes back is typed too: an attempt's ``AttemptRecord`` (activity results, and the details of a
phase that failed for good), a race's ``RaceEndResult``, and the run's ``RunRecord`` (the workflow's result
and its ``status`` query). Records in histories written before these classes were JSON objects with the
same keys; the converter reads them into the classes (a missing key takes its default, and every key the
older records had is a field, so replay sees the same data). The workflow keeps each phase's working record
as plain data (``AttemptRecord.to_data`` plus its history and gate), as it always has.

Nothing here imports temporalio.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_HEARTBEAT_S = 10.0
#: the workflow's type name (the client starts it by name, without importing the workflow's code)
WORKFLOW = "claude-scope-pipeline"
#: at most this many phases in a Temporal run (a plan that would pass it is invalid): each phase's record is
#: about 1.1 KB of the result, of the status query and of the state carried across continue-as-new, plus
#: its texts (cut to share 100,000 characters each), each payload under Temporal's 2 MB limit (measured:
#: 1,001 phases, a 1.21 MB result; 1,500, 1.81 MB, too close)
MAX_RUN_PHASES = 1100


@dataclass(frozen=True)
class PipelineRequest:
    """Start a pipeline: its run id (the workflow id), the spec the workers parse, and the plan the workflow
    schedules by (``PipelineSpec.plan``)."""

    run_id: str
    spec: dict[str, Any]
    plan: dict[str, Any]
    heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_S
    #: continue as new once the history has this many events (0: when the server suggests it)
    roll_after_events: int = 0
    #: where the run before stood, when this run continued it as new (the workflow's ``_carry``)
    carried: dict[str, Any] | None = None
    #: a plan that would make the run more phases than this fails its planner (``plan_invalid``)
    max_run_phases: int = MAX_RUN_PHASES


@dataclass(frozen=True)
class AttemptRequest:
    """Run one attempt of one phase on a worker."""

    run_id: str
    spec: dict[str, Any]
    phase: str
    attempt: int
    heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_S
    #: what this attempt may spend: what the phase's cap or reservation has left (None: no cap)
    max_cost_usd: float | None = None
    #: what it is told of the attempt before (a phase that learns), see ``orchestrator._feedback``
    feedback: str = ""
    #: the records of the earlier phases its prompt reads (a prompt template's ``phases.NAME``)
    handed_on: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: a planned phase: its own table (its planner's attempt sent it back), as the spec does not have it
    phase_table: dict[str, Any] | None = None
    #: a race's variant: this attempt runs that variant alone, and a pass keeps its worktree for ``RaceEnd``
    variant: str = ""


@dataclass(frozen=True)
class RaceEnd:
    """End a race on the worker's host: merge the winner's worktree (``winner``, as the variant's record
    gave it; None when none won) as attempt ``number``, and remove it and every other worktree ``held``
    (variants that passed after the winner)."""

    run_id: str
    phase: str
    number: int
    winner: dict[str, Any] | None = None
    held: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AttemptRecord:
    """What a worker returns for an attempt (or a race's variant), as history keeps it: small, no message
    bodies; the query's facts for the run page (its cleanup, a redacted stderr tail)."""

    name: str
    status: str
    attempts: int = 0
    cost_usd: float | None = None
    cost_lower_bound: bool = False
    duration_s: float = 0.0
    result_text: str | None = None
    kind: str | None = None
    message: str = ""
    session_id: str | None = None
    num_turns: int | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    #: what the retry policy judges (a failed query's)
    retryable: bool = False
    side_effects: bool = False
    host: str = ""
    message_log: str = ""
    prompt: str = ""
    query_ok: bool = False
    query_id: str | None = None
    message_count: int | None = None
    stderr_tail: str = ""
    cleanup: dict[str, Any] | None = None
    #: a planner's plan: each planned phase's table and entry (``_spec.planned_record``)
    plan: dict[str, Any] | None = None
    #: a race's variant: its name, and the worktree it holds when it passed (for ``RaceEnd``)
    variant: str = ""
    worktree: dict[str, Any] | None = None

    #: fields only some records have: left out of ``to_data`` when unset, as they were before this class
    _EXTRAS = ("plan", "variant", "worktree")

    def to_data(self) -> dict[str, Any]:
        """The record as the workflow keeps it (a JSON object)."""
        data = dataclasses.asdict(self)
        for extra in self._EXTRAS:
            if not data[extra]:
                del data[extra]
        return data

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> AttemptRecord:
        """A record from its JSON object (an activity error's details); keys it does not know are left out."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RaceEndResult:
    """What ``RaceEnd`` did: the winner's merge (a check's dict; None when none won or it could not be merged)
    and, when it could not, why."""

    merge: dict[str, Any] | None = None
    error: str = ""


@dataclass
class RunRecord:
    """A run as the workflow reports it (its result, and its ``status`` query at any time): each phase's
    record by name, in pipeline order (``order``), with the plan as expanded so far."""

    run_id: str
    name: str = ""
    plan: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    #: the status query's: running, succeeded, failed, cancelled (the result's is empty)
    state: str = ""
    duration_s: float = 0.0
    budget_exhausted: bool = False
    #: how many times the run continued as new
    rolls: int = 0
    #: when the run started (the first of its runs, when it continued as new; 0 in records written before)
    started: float = 0.0

