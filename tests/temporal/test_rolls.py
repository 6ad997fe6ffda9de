"""Continue-as-new (a run whose history grows long hands over to a new run of the same workflow id): the
same pipelines, rolled every few phases on a real dev server, report what the local orchestrator reports,
and the workflow's chain of runs shows the hand-overs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator import Orchestrator, parse_pipeline
from orchestrator._schedule import PhasePlan, RunPlan, RunState
from orchestrator._status import PhaseStatus
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.temporal.conftest import Client, queue_name, temporal, worker
from tests.temporal.test_both_engines import PIPELINES, recorded

pytestmark = pytest.mark.anyio

#: a planner (its plan joins across a roll), a DAG with a retry and a skip, a run budget with retries
ROLLED = ("planner", "dag", "run budget and retries")


def test_the_rules_state_survives_its_data() -> None:
    plan = RunPlan((PhasePlan("a"), PhasePlan("b", ("a",), 0.5, "before")), 2, True, 1.0)
    state = RunState.new(plan)
    state.drain()
    state.ended("a", PhaseStatus.FAILED, 0.25, lower_bound=True)
    state.drain()
    again = RunState.from_data(state.to_data())
    assert again == state and again.to_data() == state.to_data()


async def chain(client: Client, run_id: str, expected: int) -> list[Any]:
    """The workflow's runs as the server lists them (its visibility store may lag a moment behind)."""
    with anyio.move_on_after(10):
        while True:
            runs = [w async for w in client.list_workflows(f"WorkflowId = '{run_id}'")]
            if len(runs) >= expected and all(r.status is not None and r.close_time for r in runs):
                return runs
            await anyio.sleep(0.1)
    return runs


async def test_rolled_runs_report_what_the_local_engine_reports(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    local: dict[str, Any] = {}
    with Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=standin_cli) as orch:
        for name in ROLLED:
            local[name] = recorded(await orch.run(parse_pipeline(PIPELINES[name], project_dir=tmp_path,
                                                                 simulate=True)))
    queue = queue_name(tmp_path)
    async with worker(temporal_client, queue, tmp_path, standin_cli):
        runner = temporal.TemporalRunner(temporal_client, queue, roll_after_events=20)
        for name in ROLLED:
            run_id = f"rolled-{ROLLED.index(name)}-{queue}"
            report = await runner.run(temporal.spec_from_data(PIPELINES[name], simulate=True), run_id=run_id)
            assert recorded(report) == local[name], name
            result = await temporal_client.get_workflow_handle(run_id).result()
            runs = await chain(temporal_client, run_id, int(result["rolls"]) + 1)
            assert result["rolls"] >= 1 and len(runs) == result["rolls"] + 1, (name, result.get("rolls"), len(runs))
            assert sorted(str(r.status.name) for r in runs).count("CONTINUED_AS_NEW") == result["rolls"]
            view = await runner.view(run_id)  # the run page of the last run has every phase's attempts
            first = min(r.start_time.timestamp() for r in runs)
            assert abs(view.started - first) < 1.0  # since the first run, not the last (the server's start)
            assert [p.name for p in view.phases] == [p[0] for p in local[name]["phases"]]
            assert sum(len(p.attempts) for p in view.phases) == sum(p[3] for p in local[name]["phases"])


async def test_a_plan_past_the_run_limit_fails_its_planner(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    """A run's records travel in its result and status (2 MB each at most): a plan that would make the run
    more phases than ``max_run_phases`` fails its planner as ``plan_invalid``, saying why, not the workflow."""
    from orchestrator.temporal._requests import WORKFLOW, PipelineRequest

    spec = temporal.spec_from_data(PIPELINES["planner"], simulate=True)
    queue = queue_name(tmp_path)
    async with worker(temporal_client, queue, tmp_path, standin_cli):
        await temporal_client.start_workflow(WORKFLOW, PipelineRequest(queue, spec.to_json(), spec.plan(),
                                                                       max_run_phases=5), id=queue, task_queue=queue)
        report = await temporal.TemporalRunner(temporal_client, queue).wait(queue)
    plan = report.phases["plan"]
    assert (plan.status.value, plan.kind.value if plan.kind else None) == ("failed", "plan_invalid")
    assert "the plan would make the run 6 phases; a run on Temporal has at most 5" in plan.message
    assert [report.phases[n].status.value for n in ("after", "beside")] == ["skipped", "succeeded"]


def test_a_roll_keeps_whole_the_results_later_phases_read() -> None:
    """A big run's records are cut to fit a payload; a result that a phase yet to run hands on is carried
    whole across continue-as-new, so that phase is told what it would have been told without the roll."""
    from orchestrator.temporal._workflow import _read_later, _within_limits

    long = "FINDINGS " * 2000
    phases = {f"p{i}": {"name": f"p{i}", "status": "succeeded", "result_text": long, "prompt": long,
                        "history": [{"number": 1, "prompt": long}]} for i in range(150)}
    phases["later"] = {"name": "later", "status": "pending"}
    phases["done"] = {"name": "done", "status": "succeeded", "result_text": long}
    specs = {"later": {"name": "later", "hands_on": ["p3"]}, "done": {"name": "done", "hands_on": ["p4"]}}
    assert _read_later(specs, phases) == {"p3"}  # "done" ran already: what it read matters no more
    carried = _within_limits(phases, _read_later(specs, phases))
    assert carried["p3"]["result_text"] == long and len(carried["p4"]["result_text"]) < 1000
    assert len(carried["p3"]["history"][0]["prompt"]) < 1000  # the rest of its record is cut as before
