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
   A ready phase with an ``approval = "before"`` gate that is not approved yet waits for a person instead
   (``Wait``): it holds no slot and no reservation. One waiting at its ``after`` gate (it ran) holds no
   slot but keeps its reservation.
5. Under a run budget a phase starts only with a reservation that fits: its own ``max_cost_usd`` (less
   what its earlier attempts spent, on a resume) must fit in the budget less what was spent and what
   running phases hold. If it does not fit, it waits while a running phase holds a reservation (its
   unused part comes back when it ends), and is skipped as ``run_budget_spent``, with the numbers, once
   none does. A phase without a cap waits until no running phase holds anything, then reserves all that
   is left: it runs alone. Its ``Start`` carries the cap its attempts share (``cap_usd``), which the
   engine passes on to the CLI, so the reservation is a cap, not a hope.
6. When a phase ends, it is charged what its attempts cost; if an attempt's cost is unknown (it was
   cancelled, crashed, timed out), its whole reservation, so the budget still holds.

The state is plain data (dataclasses of str, float and enums), so it can be journalled, put in workflow
history or compared between engines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._status import ENDED, PhaseKind, PhaseStatus


@dataclass(frozen=True)
class PhasePlan:
    """What the rules need of a phase: its name, its (resolved) dependencies, its own spending cap, and its
    approval gate (``"before"``: it starts only once approved)."""

    name: str
    depends_on: tuple[str, ...] = ()
    max_cost_usd: float | None = None
    approval: str = ""


@dataclass(frozen=True)
class RunPlan:
    """What the rules need of a pipeline: its phases in pipeline order and its run-wide settings."""

    phases: tuple[PhasePlan, ...]
    max_parallel: int = 1
    fail_fast: bool = False
    max_cost_usd: float | None = None
    #: rules 5 and 6 (reservations). False only to replay Temporal workflows started before them, which
    #: started a phase whenever the spend was under the budget
    reserve: bool = True


@dataclass(frozen=True)
class Start:
    """Start this phase now; its attempts may spend ``cap_usd`` together (None: no cap)."""

    name: str
    cap_usd: float | None = None


@dataclass(frozen=True)
class Skip:
    """Skip this phase: it is reported as skipped with this reason (and kind, when the run budget is why)."""

    name: str
    reason: str
    kind: PhaseKind | None = None


@dataclass(frozen=True)
class Wait:
    """This phase is ready but waits for a person's approval (its ``approval = "before"`` gate): it holds no
    slot and no reservation until ``RunState.approve``."""

    name: str


Step = Start | Skip | Wait


#: money compared with this slack, so that 0.1 + 0.2 fits in 0.3
_EPS = 1e-9


@dataclass
class PhaseState:
    status: PhaseStatus = PhaseStatus.PENDING
    #: what the phase is charged: every attempt's cost, an unknown one as the whole reservation (pending
    #: phases of a resume: what their earlier attempts spent)
    cost_usd: float = 0.0
    #: what a running phase holds of the run budget (its cap_usd)
    reserved_usd: float = 0.0


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
    #: phases whose ``before`` gate was approved
    approved: set[str] = field(default_factory=set)

    @classmethod
    def new(cls, plan: RunPlan, kept: Mapping[str, float | None] = {},
            earlier: Mapping[str, float] = {}, waiting: Mapping[str, float | None] = {}) -> RunState:
        """A run about to start. On a resume, ``kept`` are phases that already succeeded, with their cost,
        ``earlier`` what the attempts of phases that will run again already spent, and ``waiting`` phases
        that ran and still wait at their ``after`` gate, with their cost."""
        state = cls(plan, {p.name: PhaseState(cost_usd=earlier.get(p.name, 0.0)) for p in plan.phases})
        for name, cost in kept.items():
            state.phases[name] = PhaseState(PhaseStatus.SUCCEEDED, cost or 0.0)
        for name, cost in waiting.items():
            state.phases[name] = PhaseState(PhaseStatus.WAITING_APPROVAL, cost or 0.0)
        return state

    @property
    def spent(self) -> float:
        return sum(p.cost_usd for p in self.phases.values())

    @property
    def held(self) -> float:
        """What running phases hold of the run budget (a phase waiting at its ``after`` gate keeps its hold)."""
        return sum(p.reserved_usd for p in self.phases.values()
                   if p.status in (PhaseStatus.RUNNING, PhaseStatus.WAITING_APPROVAL))

    @property
    def waiting(self) -> list[str]:
        return [n for n, p in self.phases.items() if p.status is PhaseStatus.WAITING_APPROVAL]

    @property
    def running(self) -> list[str]:
        return [n for n, p in self.phases.items() if p.status is PhaseStatus.RUNNING]

    @property
    def done(self) -> bool:
        """Every phase has ended (succeeded, failed, timed out, cancelled or skipped)."""
        return all(p.status.ended for p in self.phases.values())

    def to_data(self) -> dict[str, Any]:
        """The state as plain JSON data: a Temporal workflow carries it across continue-as-new."""
        plan = self.plan
        return {"plan": {"phases": [[p.name, list(p.depends_on), p.max_cost_usd, p.approval] for p in plan.phases],
                         "max_parallel": plan.max_parallel, "fail_fast": plan.fail_fast,
                         "max_cost_usd": plan.max_cost_usd, "reserve": plan.reserve},
                "phases": {n: [p.status.value, p.cost_usd, p.reserved_usd] for n, p in self.phases.items()},
                "stop_reason": self.stop_reason, "budget_exhausted": self.budget_exhausted,
                "approved": sorted(self.approved)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RunState:
        """The state ``to_data`` wrote."""
        plan = data["plan"]
        return cls(RunPlan(tuple(PhasePlan(n, tuple(d), c, a) for n, d, c, a in plan["phases"]),
                           int(plan["max_parallel"]), bool(plan["fail_fast"]), plan["max_cost_usd"],
                           bool(plan["reserve"])),
                   {n: PhaseState(PhaseStatus(s), float(c), float(r)) for n, (s, c, r) in data["phases"].items()},
                   str(data["stop_reason"]), bool(data["budget_exhausted"]), set(data["approved"]))

    def ended(self, name: str, status: PhaseStatus, cost_usd: float | None, lower_bound: bool = False) -> None:
        """A started phase ended with ``status``; its attempts cost ``cost_usd`` (all of them, a resume's
        earlier ones included), a lower bound if one attempt's cost is unknown."""
        phase = self.phases[name]
        if phase.status not in (PhaseStatus.RUNNING, PhaseStatus.WAITING_APPROVAL):
            raise ValueError(f"phase {name!r} ended but it was {phase.status.value}, not running")
        if not status.ended:
            raise ValueError(f"phase {name!r} cannot end as {status.value}")
        charged = cost_usd or 0.0
        if lower_bound:  # an attempt that may have spent anything up to the reservation: count all of it
            charged = max(charged, phase.cost_usd + phase.reserved_usd)
        phase.status, phase.cost_usd, phase.reserved_usd = status, charged, 0.0
        if status is not PhaseStatus.SUCCEEDED and self.plan.fail_fast and not self.stop_reason:
            self.stop_reason = f"fail_fast: phase {name!r} {status.value}"

    def expand(self, planner: str, planned: tuple[PhasePlan, ...]) -> None:
        """A planner's phases join the run (see ``expand_plan``), pending; call it before ``ended`` for the
        planner, so that nothing after the planner can start without them."""
        self.plan = expand_plan(self.plan, planner, planned)
        for phase in planned:
            self.phases[phase.name] = PhaseState()

    def approve(self, name: str) -> None:
        """A person approved ``name`` at its ``before`` gate: it may start, as the rules allow."""
        phase = self.phases[name]
        if phase.status is not PhaseStatus.WAITING_APPROVAL:
            raise ValueError(f"phase {name!r} is {phase.status.value}, not waiting for approval")
        self.approved.add(name)
        phase.status = PhaseStatus.PENDING

    def wait_after(self, name: str) -> None:
        """``name`` ran and waits at its ``after`` gate: it gives back its slot and keeps its reservation."""
        phase = self.phases[name]
        if phase.status is not PhaseStatus.RUNNING:
            raise ValueError(f"phase {name!r} is {phase.status.value}, not running")
        phase.status = PhaseStatus.WAITING_APPROVAL

    def rerun(self, name: str) -> None:
        """A rejection with a retry: the phase waiting at its ``after`` gate runs again (taking a slot back,
        even past ``max_parallel``: it held its place while a person looked)."""
        phase = self.phases[name]
        if phase.status is not PhaseStatus.WAITING_APPROVAL:
            raise ValueError(f"phase {name!r} is {phase.status.value}, not waiting for approval")
        phase.status = PhaseStatus.RUNNING

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
        if isinstance(step, Wait):
            phase.status = PhaseStatus.WAITING_APPROVAL
        elif isinstance(step, Start):
            phase.status = PhaseStatus.RUNNING
            budgeted = self.plan.max_cost_usd is not None and self.plan.reserve
            phase.reserved_usd = step.cap_usd if budgeted and step.cap_usd else 0.0
        else:
            phase.status = PhaseStatus.SKIPPED
            self.budget_exhausted |= step.kind is PhaseKind.RUN_BUDGET_SPENT


def expand_plan(plan: RunPlan, planner: str, planned: tuple[PhasePlan, ...]) -> RunPlan:
    """``plan`` with a planner's expansion: the ``planned`` phases (their dependencies resolved; each depends on
    the planner) come right after it, and every phase that depended on the planner also waits for all of
    them (a phase after a planner waits for its whole plan)."""
    known = {p.name for p in plan.phases}
    clash = sorted(known & {p.name for p in planned})
    if clash:
        raise ValueError(f"planned phases {clash} are already in the run")
    added = tuple(p.name for p in planned)
    phases: list[PhasePlan] = []
    for phase in plan.phases:
        if planner in phase.depends_on:
            phase = PhasePlan(phase.name, (*phase.depends_on, *added), phase.max_cost_usd, phase.approval)
        phases.append(phase)
        if phase.name == planner:
            phases.extend(planned)
    return RunPlan(tuple(phases), plan.max_parallel, plan.fail_fast, plan.max_cost_usd, plan.reserve)


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
    spent, held = state.spent, state.held
    phases, pending = state.phases, PhaseStatus.PENDING
    for phase in plan.phases:  # a plain loop: a planner's 1,000 phases pass through here at every phase's end
        if phases[phase.name].status is not pending:
            continue
        deps = [phases[d].status for d in phase.depends_on]
        if not all(s in ENDED for s in deps):
            continue
        failed = next((d for d, s in zip(phase.depends_on, deps, strict=True) if s is not PhaseStatus.SUCCEEDED),
                      None)
        if failed is not None:
            steps.append(Skip(phase.name, f"dependency {failed!r} {state.phases[failed].status.value}"))
        elif state.stop_reason:
            steps.append(Skip(phase.name, state.stop_reason))
        elif budget is not None and spent >= budget - _EPS:
            steps.append(Skip(phase.name, f"run budget spent ({spent:.4f} of {budget} USD)",
                              PhaseKind.RUN_BUDGET_SPENT))
        elif phase.approval == "before" and phase.name not in state.approved:
            steps.append(Wait(phase.name))  # rule 4a: no slot and no reservation while a person decides
        elif slots > 0:
            own = None if phase.max_cost_usd is None else max(
                phase.max_cost_usd - state.phases[phase.name].cost_usd, 0.0)
            if budget is None or not plan.reserve:
                steps.append(Start(phase.name, own))
                slots -= 1
                continue
            left = budget - spent - held
            if own is None and held > _EPS:
                continue  # no cap: it runs alone, with all that is left
            need = left if own is None else own
            if need <= left + _EPS:
                steps.append(Start(phase.name, need))
                slots, held = slots - 1, held + need
            elif held <= _EPS:
                steps.append(Skip(phase.name, f"run budget: phase may spend up to {need:.4f} USD (its "
                                  f"max_cost_usd), {left:.4f} of {budget} USD left", PhaseKind.RUN_BUDGET_SPENT))
    return steps

