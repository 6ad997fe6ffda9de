"""The scheduling rules, one table: each row is a run (its plan) and a script of phase ends; the rules must
give exactly the listed steps after each end. Both engines call these rules; the engines' own tests run
the same pipelines through real processes (tests/orchestrator/test_both_engines.py)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator._schedule import PhasePlan, RunPlan, RunState, Skip, Start, Step
from orchestrator._status import PhaseKind, PhaseStatus

S, F, T = PhaseStatus.SUCCEEDED, PhaseStatus.FAILED, PhaseStatus.TIMED_OUT


def p(name: str, *deps: str, cap: float | None = None) -> PhasePlan:
    return PhasePlan(name, deps, cap)


def chain(*names: str) -> tuple[PhasePlan, ...]:
    return tuple(p(n, *((names[i - 1],) if i else ())) for i, n in enumerate(names))


@dataclass(frozen=True)
class Row:
    """``first``: the steps of the first drain. ``script``: (phase, status, cost) ends, each followed by the
    steps its drain must give."""

    id: str
    plan: RunPlan
    first: list[Step]
    script: list[tuple[tuple[str, PhaseStatus, float | None] | tuple[str, PhaseStatus, float | None, bool],
                       list[Step]]]
    kept: tuple[tuple[str, float | None], ...] = ()
    exhausted: bool = False
    earlier: tuple[tuple[str, float], ...] = ()


ROWS = [
    Row("sequence runs one at a time", RunPlan(chain("a", "b", "c")), [Start("a")],
        [(("a", S, 0.1), [Start("b")]), (("b", S, 0.1), [Start("c")]), (("c", S, 0.1), [])]),
    Row("a failure skips its dependents, transitively, with the first failed dependency named",
        RunPlan(chain("a", "b", "c")), [Start("a")],
        [(("a", T, None), [Skip("b", "dependency 'a' timed_out"), Skip("c", "dependency 'b' skipped")])]),
    Row("independent phases share max_parallel slots, in pipeline order",
        RunPlan((p("a"), p("b"), p("c"), p("d", "a")), max_parallel=2), [Start("a"), Start("b")],
        [(("b", S, 0.0), [Start("c")]), (("a", S, 0.0), [Start("d")]), (("c", S, 0.0), []), (("d", S, 0.0), [])]),
    Row("a phase waits for every dependency; one failed dependency skips it",
        RunPlan((p("a"), p("b"), p("c", "a", "b")), max_parallel=3), [Start("a"), Start("b")],
        [(("a", S, 0.0), []), (("b", F, 0.0), [Skip("c", "dependency 'b' failed")])]),
    Row("fail_fast skips what has not started; running phases end on their own",
        RunPlan((p("a"), p("b"), p("c"), p("d")), max_parallel=2, fail_fast=True), [Start("a"), Start("b")],
        [(("a", F, 0.0), [Skip("c", "fail_fast: phase 'a' failed"), Skip("d", "fail_fast: phase 'a' failed")]),
         (("b", S, 0.0), [])]),
    Row("without fail_fast a failure touches only its dependents",
        RunPlan((p("a"), p("b"), p("c", "a")), max_parallel=1), [Start("a")],
        [(("a", F, 0.0), [Start("b"), Skip("c", "dependency 'a' failed")]), (("b", S, 0.0), [])]),
    Row("the run budget, once spent, skips what has not started, with the numbers (an uncapped phase may spend "
        "all that is left; the CLI overshoots by its last turn)",
        RunPlan(chain("a", "b", "c"), max_cost_usd=0.2), [Start("a", 0.2)],
        [(("a", S, 0.25), [Skip("b", "run budget spent (0.2500 of 0.2 USD)", PhaseKind.RUN_BUDGET_SPENT),
                           Skip("c", "dependency 'b' skipped")])], exhausted=True),
    Row("under the budget the next phase starts with what is left", RunPlan(chain("a", "b"), max_cost_usd=1.0),
        [Start("a", 1.0)], [(("a", S, 0.5), [Start("b", 0.5)]), (("b", S, 0.5), [])]),
    Row("a resume keeps succeeded phases, and their cost counts against the budget",
        RunPlan(chain("a", "b", "c"), max_cost_usd=1.0), [Start("b", 0.5)],
        [(("b", S, 0.6), [Skip("c", "run budget spent (1.1000 of 1.0 USD)", PhaseKind.RUN_BUDGET_SPENT)])],
        kept=(("a", 0.5),), exhausted=True),
    Row("without a run budget a phase's Start carries its own cap", RunPlan((p("a", cap=0.5),)),
        [Start("a", 0.5)], [(("a", S, 0.1), [])]),
    Row("capped phases reserve before they start: one that does not fit waits for the unused part to come back; "
        "an uncapped one waits to run alone with all that is left",
        RunPlan((p("a", cap=0.6), p("b", cap=0.6), p("c", "a")), max_parallel=3, max_cost_usd=1.0),
        [Start("a", 0.6)],
        [(("a", S, 0.2), [Start("b", 0.6)]), (("b", S, 0.5), [Start("c", pytest.approx(0.3))]),
         (("c", S, 0.1), [])]),
    Row("a phase that cannot fit once nothing running holds a reservation is skipped, with the numbers",
        RunPlan((p("a", cap=0.8), p("b", cap=0.8), p("c", "a", cap=0.1)), max_parallel=2, max_cost_usd=1.0),
        [Start("a", 0.8)],
        [(("a", S, 0.3), [Skip("b", "run budget: phase may spend up to 0.8000 USD (its max_cost_usd), 0.7000 of "
                                    "1.0 USD left", PhaseKind.RUN_BUDGET_SPENT), Start("c", 0.1)]),
         (("c", S, 0.1), [])], exhausted=True),
    Row("an attempt whose cost is unknown counts as the phase's whole reservation",
        RunPlan((p("a", cap=0.6), p("b", cap=0.5), p("c", "a")), max_cost_usd=1.0), [Start("a", 0.6)],
        [(("a", T, 0.1, True), [Skip("b", "run budget: phase may spend up to 0.5000 USD (its max_cost_usd), "
                                          "0.4000 of 1.0 USD left", PhaseKind.RUN_BUDGET_SPENT),
                                Skip("c", "dependency 'a' timed_out")])], exhausted=True),
    Row("a resumed phase's cap is what its earlier attempts left of it, and their spend counts",
        RunPlan((p("a", cap=1.0), p("b", "a", cap=0.5)), max_cost_usd=1.5), [Start("a", pytest.approx(0.3))],
        [(("a", S, 0.9), [Start("b", 0.5)]), (("b", S, 0.2), [])], earlier=(("a", 0.7),)),
    Row("dependencies declared later in the file than the phase", RunPlan((p("b", "a"), p("a"))), [Start("a")],
        [(("a", S, 0.0), [Start("b")]), (("b", S, 0.0), [])]),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_rules(row: Row) -> None:
    state = RunState.new(row.plan, dict(row.kept), dict(row.earlier))
    assert state.drain() == row.first
    for (name, status, cost, *lower_bound), expected in row.script:
        assert not state.done
        state.ended(name, status, cost, *lower_bound)
        assert state.drain() == expected, f"after {name} {status.value}"
    assert state.done and state.running == []
    assert state.budget_exhausted is row.exhausted


def test_a_phase_that_did_not_start_cannot_end() -> None:
    state = RunState.new(RunPlan(chain("a", "b")))
    state.drain()
    with pytest.raises(ValueError, match="'b' ended but it was pending"):
        state.ended("b", S, 0.0)
    with pytest.raises(ValueError, match="cannot end as running"):
        state.ended("a", PhaseStatus.RUNNING, 0.0)


def test_the_rules_import_nothing_but_the_standard_library_and_the_status_enums() -> None:
    """The Temporal sandbox and a fast CLI import the rules: no SDK, no anyio, no clock."""
    source = Path(__file__).parents[2] / "orchestrator" / "_schedule.py"
    imported = {node.module if isinstance(node, ast.ImportFrom) else alias.name
                for node in ast.walk(ast.parse(source.read_text()))
                if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in node.names}
    assert imported <= {"__future__", "collections.abc", "dataclasses", "typing", "_status"}, imported


def test_a_plan_joins_after_its_planner_and_holds_back_its_dependants() -> None:
    """``expand``: planned phases come right after the planner; a phase that depended on the planner waits for
    every planned phase; nothing after the planner starts while the plan runs; a name already taken is refused."""
    state = RunState.new(RunPlan((PhasePlan("plan"), PhasePlan("after", ("plan",)), PhasePlan("beside")),
                                 max_parallel=4))
    assert [s.name for s in state.drain()] == ["plan", "beside"]
    state.expand("plan", (PhasePlan("plan/a", ("plan",)), PhasePlan("plan/b", ("plan", "plan/a"))))
    state.ended("plan", S, 0.1)
    assert [p.name for p in state.plan.phases] == ["plan", "plan/a", "plan/b", "after", "beside"]
    assert state.plan.phases[3].depends_on == ("plan", "plan/a", "plan/b")
    assert [s.name for s in state.drain()] == ["plan/a"]
    state.ended("plan/a", S, 0.1)
    assert [s.name for s in state.drain()] == ["plan/b"]
    state.ended("plan/b", PhaseStatus.FAILED, 0.1)
    assert [(s.name, getattr(s, "reason", "")) for s in state.drain()] == [
        ("after", "dependency 'plan/b' failed")]
    with pytest.raises(ValueError, match="already in the run"):
        state.expand("plan", (PhasePlan("beside"),))
