"""The run's rules, written once: which phase starts next, which is skipped and why.

Both engines (the local ``Orchestrator`` and the Temporal workflow) keep a ``RunState`` and, after every
change, ask ``RunState.drain`` what to do: start these phases, skip those (with the reason and kind they
are reported with). Nothing here does I/O, reads a clock, draws a random number or imports an SDK, so the
workflow's sandbox replays it deterministically and a rule changed here changes for both engines at once.

The rules, in the order they are applied to each pending phase (in pipeline order):

1. A phase waits until all its dependencies have ended; if one did not succeed, it is skipped
   (``dependency 'x' failed``).
2. Once a phase has ended unsuccessfully under ``fail_fast``, every phase that has not started is skipped
   with that reason.
3. Once the run's spend has reached its budget (``max_cost_usd``), every phase that has not started is
   skipped as ``run_budget_spent``, with the numbers.
4. Otherwise a ready phase starts if fewer than ``max_parallel`` phases are running; else it waits.

The state is plain data (dataclasses of str, float and enums), so it can be journalled, put in workflow
history or compared between engines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ._status import PhaseKind, PhaseStatus


@dataclass(frozen=True)
class PhasePlan:
    """What the rules need of a phase: its name, its (resolved) dependencies, its own spending cap."""

    name: str
    depends_on: tuple[str, ...] = ()
    max_cost_usd: float | None = None


@dataclass(frozen=True)
class RunPlan:
    """What the rules need of a pipeline: its phases in pipeline order and its run-wide settings."""

    phases: tuple[PhasePlan, ...]
    max_parallel: int = 1
    fail_fast: bool = False
    max_cost_usd: float | None = None


@dataclass(frozen=True)
class Start:
    """Start this phase now."""

    name: str


@dataclass(frozen=True)
class Skip:
    """Skip this phase: it is reported as skipped with this reason (and kind, when the run budget is why)."""

    name: str
    reason: str
    kind: PhaseKind | None = None


Step = Start | Skip


@dataclass
class PhaseState:
    status: PhaseStatus = PhaseStatus.PENDING
    #: what the phase has spent (every attempt's cost the CLI reported)
    cost_usd: float = 0.0


@dataclass
class RunState:
    """Where a run stands. Change it only through ``drain`` (which applies the steps it returns),
    ``ended`` (a started phase's end) and ``kept`` phases given to ``new``."""

    plan: RunPlan
    phases: dict[str, PhaseState] = field(default_factory=dict)
    #: set by the first phase that ended unsuccessfully under fail_fast
    stop_reason: str = ""
    #: a phase was skipped because the run's budget was spent
    budget_exhausted: bool = False

    @classmethod
    def new(cls, plan: RunPlan, kept: Mapping[str, float | None] = {}) -> RunState:
        """A run about to start; ``kept`` are phases that already succeeded (a resume), with their cost."""
        state = cls(plan, {p.name: PhaseState() for p in plan.phases})
        for name, cost in kept.items():
            state.phases[name] = PhaseState(PhaseStatus.SUCCEEDED, cost or 0.0)
        return state

    @property
    def spent(self) -> float:
        return sum(p.cost_usd for p in self.phases.values())

    @property
    def running(self) -> list[str]:
        return [n for n, p in self.phases.items() if p.status is PhaseStatus.RUNNING]

    @property
    def done(self) -> bool:
        """Every phase has ended (succeeded, failed, timed out, cancelled or skipped)."""
        return all(p.status.ended for p in self.phases.values())

    def ended(self, name: str, status: PhaseStatus, cost_usd: float | None) -> None:
        """A started phase ended with ``status`` having spent ``cost_usd``."""
        phase = self.phases[name]
        if phase.status is not PhaseStatus.RUNNING:
            raise ValueError(f"phase {name!r} ended but it was {phase.status.value}, not running")
        if not status.ended:
            raise ValueError(f"phase {name!r} cannot end as {status.value}")
        phase.status, phase.cost_usd = status, cost_usd or 0.0
        if status is not PhaseStatus.SUCCEEDED and self.plan.fail_fast and not self.stop_reason:
            self.stop_reason = f"fail_fast: phase {name!r} {status.value}"

    def drain(self) -> list[Step]:
        """Every step that can be taken now, applied to this state, in the order they were decided: a skip
        can make its dependents skippable at once, so the rules are applied until nothing changes."""
        taken: list[Step] = []
        while steps := decide(self):
            for step in steps:
                self._apply(step)
            taken.extend(steps)
        return taken

    def _apply(self, step: Step) -> None:
        phase = self.phases[step.name]
        if phase.status is not PhaseStatus.PENDING:
            raise ValueError(f"phase {step.name!r} is {phase.status.value}, not pending")
        if isinstance(step, Start):
            phase.status = PhaseStatus.RUNNING
        else:
            phase.status = PhaseStatus.SKIPPED
            self.budget_exhausted |= step.kind is PhaseKind.RUN_BUDGET_SPENT


def resolve_dependencies(declared: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Each phase's prerequisites, ``declared`` in pipeline order: as declared, or, when no phase declares
    any, the previous phase (a pipeline without ``depends_on`` is a sequence)."""
    if any(declared.values()):
        return {name: tuple(deps) for name, deps in declared.items()}
    names = list(declared)
    return {name: (names[i - 1],) if i else () for i, name in enumerate(names)}


def decide(state: RunState) -> list[Step]:
    """The steps the rules allow in ``state`` (see the module doc), without applying them. Pure."""
    plan = state.plan
    steps: list[Step] = []
    slots = plan.max_parallel - len(state.running)
    budget = plan.max_cost_usd
    for phase in plan.phases:
        if state.phases[phase.name].status is not PhaseStatus.PENDING:
            continue
        deps = [state.phases[d].status for d in phase.depends_on]
        if not all(s.ended for s in deps):
            continue
        failed = next((d for d, s in zip(phase.depends_on, deps, strict=True) if s is not PhaseStatus.SUCCEEDED),
                      None)
        if failed is not None:
            steps.append(Skip(phase.name, f"dependency {failed!r} {state.phases[failed].status.value}"))
        elif state.stop_reason:
            steps.append(Skip(phase.name, state.stop_reason))
        elif budget is not None and state.spent >= budget:
            steps.append(Skip(phase.name, f"run budget spent ({state.spent:.4f} of {budget} USD)",
                              PhaseKind.RUN_BUDGET_SPENT))
        elif slots > 0:
            steps.append(Start(phase.name))
            slots -= 1
    return steps

