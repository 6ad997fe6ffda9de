"""Phases, pipelines and their outcomes: plain data.

A ``Phase`` is a spec (name, prompt, SDK options, limits, checks, dependencies); running it is a function
of that spec (``_execute.run_phase``), so a phase could run as a task on another engine unchanged.
A ``Pipeline`` validates its graph when built: duplicate names, unknown or cyclic ``depends_on``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sdk_wrapper import ClaudeScopeError, FailureKind

from ._context import RunContext
from ._schedule import PhasePlan, RunPlan, expand_plan, resolve_dependencies
from ._status import PhaseKind, PhaseStatus

if TYPE_CHECKING:  # annotations only: reading a journal (status, report) imports no SDK, httpx or tenacity
    from claude_agent_sdk import ClaudeAgentOptions
    from claude_code_sdk import ClaudeCodeOptions

    from sdk_wrapper import QueryOutcome, ResultWebhook, RetryPolicy

    from ._checks import Check, CheckResult


def _sdk_of(options: object) -> str | None:
    from sdk_wrapper import sdk_of  # the SDK backends' registry (importlib.metadata): only for phases with options

    return sdk_of(options)


class PipelineError(ClaudeScopeError, ValueError):
    """A pipeline that cannot run; the message names the phase and the key."""


def parse_kind(text: str | None, status: PhaseStatus) -> FailureKind | PhaseKind | None:
    """A kind as a journal stored it (journals before PhaseKind wrote ``budget_exceeded`` for a phase the
    run budget skipped)."""
    if text is None:
        return None
    if status is PhaseStatus.SKIPPED and text == FailureKind.BUDGET_EXCEEDED.value:
        return PhaseKind.RUN_BUDGET_SPENT
    if text in PhaseKind._value2member_map_:
        return PhaseKind(text)
    return FailureKind(text) if text in FailureKind._value2member_map_ else FailureKind.UNEXPECTED


def _positive_or_none(what: str, value: object) -> None:
    """Limits are finite and positive: ``nan`` compares false with everything (a budget never enforced),
    ``inf`` is no limit (say None), and a negative budget would skip every phase."""
    if value is None:
        return
    if not (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0):
        raise PipelineError(f"{what} must be a finite positive number (or unset), got {value!r}")


Prompt = str | Callable[[RunContext], str]
#: where a phase's attempts run (``Phase.isolation``)
ISOLATIONS = ("in_place", "worktree")


@dataclass(frozen=True)
class Variant:
    """One contender of a race (``Phase.variants``): what it changes of its phase (None: the phase's own)."""

    name: str
    prompt: Prompt | None = None
    options: ClaudeCodeOptions | ClaudeAgentOptions | None = None


@dataclass(frozen=True)
class Phase:
    """One step of a pipeline. ``options`` is the SDK's own ``ClaudeCodeOptions`` (or claude-agent-sdk's
    ``ClaudeAgentOptions``, with the ``agent`` extra)."""

    name: str
    prompt: Prompt
    options: ClaudeCodeOptions | ClaudeAgentOptions | None = None
    timeout_s: float | None = 600.0
    idle_timeout_s: float | None = None
    max_cost_usd: float | None = None
    retry: RetryPolicy | None = None
    depends_on: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    description: str = ""
    #: retries learn: a failed check is retried too (with ``retry``), and each retry's prompt carries what
    #: failed before (the failure, the stderr tail, the failed checks' evidence; bounded, redacted)
    feedback: bool = False
    #: where its attempts run: ``"in_place"`` (the project's checkout) or ``"worktree"`` (a git worktree of its
    #: own, its success merged back: see ``_worktree``)
    isolation: str = "in_place"
    #: a race: these run at once, each in a worktree of its own; the first whose result and checks pass wins
    #: and is merged, the others are cancelled (needs ``isolation = "worktree"``)
    variants: tuple[Variant, ...] = ()
    #: a planner: once it succeeded, the file it wrote (relative to its cwd) is read as ``[[phases]]`` that join
    #: the run under it (``NAME/...``), validated and bounded (see ``_plan``)
    expands: str = ""
    #: a plan may have at most this many phases
    max_planned: int = 100
    #: a plan may add ``command`` and ``pytest`` checks (commands of the plan's choosing, run by us)
    plan_commands: bool = False
    #: the same tool called with the same input this many times in a row ends an attempt as ``stuck``
    max_repeats: int | None = None
    #: caps on each attempt's whole tree, and its check commands' (MiB; processes and threads): see
    #: ``sdk_wrapper._containment._caps``; refused before the run where this host cannot enforce them
    memory_mb: int | None = None
    max_pids: int | None = None
    #: an approval gate: ``"before"`` (it starts once a person approves) or ``"after"`` (its success counts once
    #: a person approves its result and evidence); waits durably, through restarts (``claude-scope approve``)
    approval: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise PipelineError(f"phase name must be a non-empty string, got {self.name!r}")
        if not (isinstance(self.prompt, str) or callable(self.prompt)):
            raise PipelineError(f"phase {self.name!r}: prompt must be a string or a callable")
        if isinstance(self.prompt, str) and not self.prompt.strip():
            raise PipelineError(f"phase {self.name!r}: prompt is empty")
        if self.options is not None and _sdk_of(self.options) is None:
            raise PipelineError(f"phase {self.name!r}: options must be ClaudeCodeOptions or ClaudeAgentOptions")
        for key in ("timeout_s", "idle_timeout_s", "max_cost_usd"):
            _positive_or_none(f"phase {self.name!r}: {key}", getattr(self, key))
        if self.approval not in ("", "before", "after"):
            raise PipelineError(f"phase {self.name!r}: approval must be \"before\" or \"after\", got {self.approval!r}")
        if self.isolation not in ISOLATIONS:
            raise PipelineError(f"phase {self.name!r}: isolation must be one of {list(ISOLATIONS)}, "
                                f"got {self.isolation!r}")
        object.__setattr__(self, "variants", tuple(self.variants))
        if self.variants:
            self._check_variants()
        if not isinstance(self.max_planned, int) or isinstance(self.max_planned, bool) or self.max_planned < 1:
            raise PipelineError(f"phase {self.name!r}: max_planned must be an integer >= 1, got {self.max_planned!r}")
        for key in ("memory_mb", "max_pids"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise PipelineError(f"phase {self.name!r}: {key} must be a positive integer, got {value!r}")
        if self.max_repeats is not None and (not isinstance(self.max_repeats, int) or isinstance(self.max_repeats, bool)
                                             or self.max_repeats < 2):
            raise PipelineError(f"phase {self.name!r}: max_repeats must be an integer >= 2, got {self.max_repeats!r}")
        if self.feedback and self.retry is None:
            raise PipelineError(f"phase {self.name!r}: feedback needs a retry policy (it tells the retries)")
        object.__setattr__(self, "depends_on", tuple(self.depends_on))
        object.__setattr__(self, "checks", tuple(self.checks))

    def _check_variants(self) -> None:
        if self.isolation != "worktree":
            raise PipelineError(f"phase {self.name!r}: a race (variants) needs isolation = \"worktree\": variants "
                                "running at once in one checkout would edit each other's files")
        if len(self.variants) < 2:
            raise PipelineError(f"phase {self.name!r}: a race needs two variants or more")
        names = [v.name for v in self.variants]
        for variant in self.variants:
            if not isinstance(variant.name, str) or not variant.name or names.count(variant.name) > 1:
                raise PipelineError(f"phase {self.name!r}: variant names must be unique, non-empty strings: {names}")
            if variant.options is not None and _sdk_of(variant.options) is None:
                raise PipelineError(f"phase {self.name!r}: variant {variant.name!r}: options must be "
                                    "ClaudeCodeOptions or ClaudeAgentOptions")

    def prompts(self) -> list[Prompt]:
        """Every prompt this phase may send (its own and its variants')."""
        return [self.prompt, *(v.prompt for v in self.variants if v.prompt is not None)]

    @property
    def reservation_usd(self) -> float | None:
        """What the phase may spend: its ``max_cost_usd``, for each variant of a race."""
        if self.max_cost_usd is None:
            return None
        return self.max_cost_usd * max(1, len(self.variants))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description for the journal (a callable prompt is named, not serialized)."""
        source = getattr(self.prompt, "source", None)  # a template's text
        return {
            "name": self.name,
            "prompt": self.prompt if isinstance(self.prompt, str) else source if isinstance(source, str)
            else f"<callable {getattr(self.prompt, '__name__', '?')}>",
            "timeout_s": self.timeout_s, "idle_timeout_s": self.idle_timeout_s, "max_cost_usd": self.max_cost_usd,
            "depends_on": list(self.depends_on), "checks": [c.to_dict() for c in self.checks],
            "description": self.description, "feedback": self.feedback, "isolation": self.isolation,
            "variants": [v.name for v in self.variants], "expands": self.expands, "max_repeats": self.max_repeats,
            "memory_mb": self.memory_mb, "max_pids": self.max_pids, "approval": self.approval,
        }


@dataclass(frozen=True)
class Pipeline:
    """Phases plus run-wide settings. With no ``depends_on`` anywhere, phases run in order, each after
    the previous one succeeded; otherwise as a DAG, at most ``max_parallel`` at once."""

    phases: tuple[Phase, ...]
    max_parallel: int = 1
    max_cost_usd: float | None = None
    fail_fast: bool = False
    name: str = "pipeline"
    #: the file it was loaded from, if any (recorded so that ``claude-scope resume`` can reload it)
    source: str = ""
    #: loaded for the stand-in CLI (``--simulate``): a plan's ``scenario`` keys are used too
    simulate: bool = False
    #: how deep plans may nest: a planned phase may plan again while its name has fewer ``/`` than this
    max_plan_depth: int = 2
    #: POSTed to when a phase starts waiting for approval (``[pipeline] approval_webhook``)
    approval_webhook: ResultWebhook | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        if not self.phases:
            raise PipelineError("a pipeline needs at least one phase")
        if not isinstance(self.max_parallel, int) or isinstance(self.max_parallel, bool) or self.max_parallel < 1:
            raise PipelineError(f"max_parallel must be an integer >= 1, got {self.max_parallel!r}")
        _positive_or_none("max_cost_usd", self.max_cost_usd)
        if not isinstance(self.max_plan_depth, int) or isinstance(self.max_plan_depth, bool) or self.max_plan_depth < 1:
            raise PipelineError(f"max_plan_depth must be an integer >= 1, got {self.max_plan_depth!r}")
        names = [p.name for p in self.phases]
        for name in names:
            if names.count(name) > 1:
                raise PipelineError(f"phase {name!r} is defined more than once")
        for phase in self.phases:
            for dep in phase.depends_on:
                if dep not in names:
                    raise PipelineError(f"phase {phase.name!r}: depends_on names unknown phase {dep!r}")
                if dep == phase.name:
                    raise PipelineError(f"phase {phase.name!r}: depends_on names itself")
        self._check_cycles()
        self._check_handed_on()

    def _check_handed_on(self) -> None:
        """A prompt may read only phases that have ended before it starts: its dependencies, direct or not
        (a prompt template says which it reads in ``phases_referenced``)."""
        graph = self.dependencies()
        for phase in self.phases:
            referenced: frozenset[str] = frozenset().union(
                *(getattr(p, "phases_referenced", frozenset()) for p in phase.prompts()))
            before: set[str] = set()
            todo = list(graph[phase.name])
            while todo:
                name = todo.pop()
                if name not in before:
                    before.add(name)
                    todo.extend(graph[name])
            for name in sorted(referenced):
                if name not in before:
                    known = "a phase it does not depend on" if name in graph else "not a phase of this pipeline"
                    raise PipelineError(f"phase {phase.name!r}: prompt reads phases.{name}, {known}; a prompt may "
                                        f"read only the phases it depends on, directly or not")

    def _check_cycles(self) -> None:
        graph = self.dependencies()
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 1:
                cycle = [*path[path.index(name):], name]
                raise PipelineError(f"phase {name!r}: depends_on forms a cycle: {' -> '.join(cycle)}")
            if state.get(name) == 2:
                return
            state[name] = 1
            for dep in graph[name]:
                visit(dep, [*path, name])
            state[name] = 2

        for name in graph:
            visit(name, [])

    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """Each phase's prerequisites: declared ones, or the previous phase when none is declared anywhere."""
        return resolve_dependencies({p.name: p.depends_on for p in self.phases})

    def run_plan(self) -> RunPlan:
        """What the scheduling rules (``_schedule``) need of this pipeline."""
        deps = self.dependencies()
        return RunPlan(tuple(PhasePlan(p.name, deps[p.name], p.reservation_usd, p.approval) for p in self.phases),
                       self.max_parallel, self.fail_fast, self.max_cost_usd)

    def phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    def expand(self, planner: str, planned: tuple[Phase, ...]) -> Pipeline:
        """This pipeline with ``planner``'s phases (their ``depends_on`` resolved, each naming the planner)
        right after it, and every phase that depended on the planner waiting for all of them; validated
        again as a whole (cycles, handed-on prompts). Dependencies become explicit, so a pipeline without
        ``depends_on`` stays the sequence it was."""
        plan = expand_plan(self.run_plan(), planner,
                           tuple(PhasePlan(p.name, p.depends_on, p.reservation_usd, p.approval) for p in planned))
        deps = {p.name: p.depends_on for p in plan.phases}
        by_name = {p.name: p for p in (*self.phases, *planned)}
        return dataclasses.replace(self, phases=tuple(dataclasses.replace(by_name[p.name], depends_on=deps[p.name])
                                                      for p in plan.phases))


@dataclass(frozen=True)
class PhaseOutcome:
    """How one phase ended. ``kind``: the query's ``FailureKind``, or a ``PhaseKind`` (a failed check, a
    spent run budget); None for a success or a phase skipped because a dependency failed."""

    name: str
    status: PhaseStatus
    query: QueryOutcome | None = None
    checks: tuple[CheckResult, ...] = ()
    attempts: int = 0
    cost_usd: float | None = None
    duration_s: float = 0.0
    kind: FailureKind | PhaseKind | None = None
    message: str = ""
    session_id: str | None = None
    num_turns: int | None = None
    from_journal: bool = False
    #: an attempt's cost was never reported (it crashed, timed out, was cancelled): ``cost_usd`` is what the
    #: other attempts reported, a lower bound (None when no attempt reported one)
    cost_lower_bound: bool = False
    #: the CLI's result text (what a later prompt's ``{{ phases.NAME.result }}`` hands on)
    result_text: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is PhaseStatus.SUCCEEDED


@dataclass(frozen=True)
class RunReport:
    """A run's result: every phase's outcome, in pipeline order."""

    run_id: str
    phases: dict[str, PhaseOutcome] = field(default_factory=dict)
    cost_usd: float = 0.0
    duration_s: float = 0.0
    budget_exhausted: bool = False
    orphans_ended: tuple[int, ...] = ()
    #: some attempt's cost was never reported: ``cost_usd`` is a lower bound
    cost_lower_bound: bool = False
    #: a ``resume(recheck=True)``: phases that had succeeded and reran, with why (their evidence was gone,
    #: or they depend on such a phase)
    evidence_gone: dict[str, str] = field(default_factory=dict)
    #: ``wait_for_approval=False``: the run stopped with these phases waiting for a person (resume it)
    waiting: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(o.succeeded for o in self.phases.values())

    @property
    def failed(self) -> list[PhaseOutcome]:
        return [o for o in self.phases.values() if o.status not in (
            PhaseStatus.SUCCEEDED, PhaseStatus.SKIPPED, PhaseStatus.WAITING_APPROVAL, PhaseStatus.PENDING)]
