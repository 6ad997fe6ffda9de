"""The same pipelines through both engines, the local ``Orchestrator`` and the Temporal workflow, against
the stand-in CLI: they must report the same, compared on what both record (order, statuses, kinds,
attempts, costs, skip reasons, whether the run budget was exhausted). Both schedule by one set of rules
(``orchestrator._schedule``); this is the test that nothing around the rules makes them differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Orchestrator, RunReport, parse_pipeline
from orchestrator._feedback import HEADER
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.temporal.conftest import Client, queue_name, temporal, worker

pytestmark = pytest.mark.anyio

_RETRY = {"attempts": 2, "initial_wait_s": 0, "max_wait_s": 0, "jitter_s": 0}


def phases(*specs: tuple[str, str, list[str] | None]) -> list[dict[str, Any]]:
    return [{"name": n, "prompt": f"do {n}", "scenario": s, **({} if d is None else {"depends_on": d})}
            for n, s, d in specs]


#: a retryable failure (API 429) that still cost 0.50, as a CLI that spent tokens before the error reports
COSTLY_429 = {"steps": [], "exit_code": 1, "result": {
    "subtype": "success", "is_error": True, "terminal_reason": "api_error", "api_error_status": 429,
    "result": "API Error: 429 rate_limit_error", "total_cost_usd": 0.5}}

def _writes(content: str) -> dict[str, Any]:
    return {"steps": [{"tool": {"name": "Write", "input": {"file_path": "notes.md", "content": content}}}]}


PIPELINES: dict[str, dict[str, Any]] = {
    # no depends_on anywhere: a sequence; the first failure skips the rest (Temporal ran them before)
    "implicit order": {"phases": phases(("a", "ok", None), ("b", "max_turns", None), ("c", "ok", None))},
    "dag": {"pipeline": {"max_parallel": 2}, "phases": [
        *phases(("research", "ok", None), ("plan", "ok", ["research"]), ("docs", "crash", ["research"])),
        {"name": "lint", "prompt": "x", "scenario": "rate_limited", "depends_on": ["research"], "retry": _RETRY},
        *phases(("commit", "ok", ["plan", "lint"]), ("publish", "ok", ["docs"]))]},
    "fail fast": {"pipeline": {"fail_fast": True}, "phases": phases(
        ("a", "ok", []), ("b", "crash", []), ("c", "ok", []), ("d", "ok", ["c"]))},
    # a phase costs all its attempts (3 x 0.50); a crash reports no cost: its phase's cost is unknown, and the
    # run's a lower bound
    "retries' cost": {"phases": [
        {"name": "base", "prompt": "x", "scenario": "ok"},
        {"name": "crash", "prompt": "x", "scenario": "exit_error"},
        {"name": "flaky", "prompt": "x", "scenario": COSTLY_429, "retry": {**_RETRY, "attempts": 3}},
        {"name": "after", "prompt": "x", "scenario": "ok", "depends_on": ["base"]}]},
    # the run budget is a cap: "b" may spend 0.80 and waits while "a" holds its 0.80; once "a" has spent 0.50
    # it cannot fit in what is left and is skipped with the numbers; "c" fits
    # a failed check retried with feedback: the stand-in writes enough only when told what failed; and a
    # retry limited to chosen kinds (max_turns is not retried by default)
    "feedback and kinds": {"pipeline": {"max_parallel": 2}, "phases": [
        {"name": "notes", "prompt": "x", "retry": {**_RETRY, "attempts": 3, "feedback": True},
         "scenario": {**_writes("tiny"), "when_prompt_contains": {HEADER: _writes("long enough notes, at last")}},
         "checks": [{"type": "file_exists", "path": "notes.md", "min_bytes": 20}]},
        {"name": "turns", "prompt": "x", "scenario": "max_turns", "retry": {**_RETRY, "kinds": ["max_turns"]},
         "depends_on": []},
        {"name": "after", "prompt": "x", "scenario": "ok", "depends_on": ["notes"]}]},
    # evidence handed on: the plan's prompt reads the research's result and a project file
    "handed on": {"phases": [
        {"name": "research", "prompt": "x", "scenario": {"steps": [{"text": "FINDINGS: use SQLite"}]}},
        {"name": "plan", "prompt": "From {{ phases.research.result }} and {{ file('wal.txt') }}",
         "depends_on": ["research"], "checks": [{"type": "file_exists", "path": "plan.md"}],
         "scenario": {"steps": [{"text": "not told"}], "when_prompt_contains": {"FINDINGS: use SQLite and WAL": {
             "steps": [{"tool": {"name": "Write", "input": {"file_path": "plan.md", "content": "plan"}}}]}}}}]},
    "run budget": {"pipeline": {"max_cost_usd": 1.0, "max_parallel": 2}, "phases": [
        {"name": "a", "prompt": "x", "scenario": {"result": {"total_cost_usd": 0.5}}, "max_cost_usd": 0.8},
        {"name": "b", "prompt": "x", "scenario": "ok", "max_cost_usd": 0.8},
        {"name": "c", "prompt": "x", "scenario": "ok", "max_cost_usd": 0.1, "depends_on": ["a"]}]},
    # an uncapped phase gets all that is left; its second attempt is given what the first left (0.50), and
    # then nothing is left for a third, nor for "after"
    "run budget and retries": {"pipeline": {"max_cost_usd": 1.0}, "phases": [
        {"name": "flaky", "prompt": "x", "scenario": COSTLY_429, "retry": {**_RETRY, "attempts": 3}},
        {"name": "after", "prompt": "x", "scenario": "ok", "depends_on": []},
        {"name": "other", "prompt": "x", "scenario": "ok", "depends_on": ["after"]}]},
}


def _planner(plan: str) -> dict[str, Any]:
    return {"name": "plan", "prompt": "plan", "expands": "plan.toml", "scenario": {
        "steps": [{"tool": {"name": "Write", "input": {"file_path": "plan.toml", "content": plan}}}]}}


#: a plan of three (one fails its check, so the one after it is skipped) and a phase after the whole plan
_PLAN = """
[[phases]]
name = "a"
prompt = "a"
scenario = "ok"
[[phases]]
name = "b"
prompt = "b"
scenario = "ok"
checks = [{ type = "file_exists", path = "never.txt" }]
[[phases]]
name = "c"
prompt = "c from {{ phases.plan.result }}"
scenario = "ok"
depends_on = ["a"]
"""
PIPELINES["planner"] = {"pipeline": {"max_parallel": 2}, "phases": [
    _planner(_PLAN), {"name": "after", "prompt": "x", "scenario": "ok", "depends_on": ["plan"]},
    {"name": "beside", "prompt": "x", "scenario": "ok", "depends_on": []}]}
PIPELINES["invalid plan"] = {"phases": [_planner(_PLAN.replace('depends_on = ["a"]', 'depends_on = ["c"]')),
                                        {"name": "after", "prompt": "x", "scenario": "ok"}]}


def recorded(report: RunReport) -> dict[str, Any]:
    """What both engines record of a run, comparable."""
    return {"budget_exhausted": report.budget_exhausted, "cost_usd": round(report.cost_usd, 6),
            "cost_lower_bound": report.cost_lower_bound, "phases": [
        (o.name, o.status.value, None if o.kind is None else o.kind.value, o.attempts,
         None if o.cost_usd is None else round(o.cost_usd, 6), o.message if o.status.value == "skipped" else "",
         o.cost_lower_bound) for o in report.phases.values()]}


async def test_both_engines_report_the_same(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    (tmp_path / "wal.txt").write_text("WAL")
    local: dict[str, Any] = {}
    with Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=standin_cli) as orch:
        for name, data in PIPELINES.items():
            report = await orch.run(parse_pipeline(data, project_dir=tmp_path, simulate=True))
            local[name] = recorded(report)
            if name == "feedback and kinds":  # what the local retry was told, to compare with Temporal's
                local_told = [a["prompt"] for a in orch.journal.attempts(report.run_id) if a["name"] == "notes"]
    remote: dict[str, Any] = {}
    queue = queue_name(tmp_path)
    async with worker(temporal_client, queue, tmp_path, standin_cli):
        runner = temporal.TemporalRunner(temporal_client, queue)
        for index, (name, data) in enumerate(PIPELINES.items()):
            report = await runner.run(temporal.spec_from_data(data, simulate=True), run_id=f"both-{index}-{queue}")
            remote[name] = recorded(report)
        learned = {p.name: p for p in (await runner.view(f"both-{list(PIPELINES).index('feedback and kinds')}-"
                                                         f"{queue}")).phases}["notes"]
        handed = {p.name: p for p in (await runner.view(f"both-{list(PIPELINES).index('handed on')}-"
                                                        f"{queue}")).phases}["plan"]
        budgeted = {p.name: p for p in (await runner.view(f"both-{list(PIPELINES).index('run budget')}-"
                                                          f"{queue}")).phases}
    for name in PIPELINES:
        assert remote[name] == local[name], name
    # and what the rules say, seen through the engines
    assert [p[1] for p in local["implicit order"]["phases"]] == ["succeeded", "failed", "skipped"]
    assert local["implicit order"]["phases"][2][5] == "dependency 'b' failed"
    assert {p[0]: p[1] for p in local["dag"]["phases"]} == {
        "research": "succeeded", "plan": "succeeded", "docs": "failed", "lint": "failed", "commit": "skipped",
        "publish": "skipped"}
    assert {p[0]: p[3] for p in local["dag"]["phases"]}["lint"] == 2
    assert [p[5] for p in local["fail fast"]["phases"]][2:] == ["fail_fast: phase 'b' failed",
                                                               "dependency 'c' skipped"]
    assert local["retries' cost"] == {"budget_exhausted": False, "cost_usd": 1.5246, "cost_lower_bound": True,
                                      "phases": [
        ("base", "succeeded", None, 1, 0.0123, "", False),
        ("crash", "failed", "process_exit", 1, None, "", True),
        ("flaky", "failed", "rate_limited", 3, 1.5, "", False),
        ("after", "succeeded", None, 1, 0.0123, "", False)]}
    assert local["run budget"] == {"budget_exhausted": True, "cost_usd": 0.5123, "cost_lower_bound": False,
                                   "phases": [
        ("a", "succeeded", None, 1, 0.5, "", False),
        ("b", "skipped", "run_budget_spent", 0, None,
         "run budget: phase may spend up to 0.8000 USD (its max_cost_usd), 0.5000 of 1.0 USD left", False),
        ("c", "succeeded", None, 1, 0.0123, "", False)]}
    assert local["run budget and retries"]["phases"][:2] == [
        ("flaky", "failed", "rate_limited", 2, 1.0, "", False),
        ("after", "skipped", "run_budget_spent", 0, None, "run budget spent (1.0000 of 1.0 USD)", False)]
    assert local["feedback and kinds"]["phases"] == [
        ("notes", "succeeded", None, 2, 0.0246, "", False), ("turns", "failed", "max_turns", 2, 0.0246, "", False),
        ("after", "succeeded", None, 1, 0.0123, "", False)]
    first, second = learned.attempts  # history keeps each attempt's prompt and checks, for the run page
    assert [first.prompt, second.prompt] == local_told  # both engines tell a retry the same
    assert HEADER not in first.prompt and HEADER in second.prompt and "need >= 20" in second.prompt
    assert [c["passed"] for c in first.checks] == [False] and [c["passed"] for c in second.checks] == [True]
    assert [p[1] for p in local["handed on"]["phases"]] == ["succeeded", "succeeded"]
    assert handed.attempts[0].prompt == "From FINDINGS: use SQLite and WAL"  # the worker rendered it from history
    assert (budgeted["a"].reserved_usd, budgeted["b"].reserved_usd, budgeted["c"].reserved_usd) == (0.8, None, 0.1)
    assert [(p[0], p[1], p[2]) for p in local["planner"]["phases"]] == [
        ("plan", "succeeded", None), ("plan/a", "succeeded", None), ("plan/b", "failed", "validation_failed"),
        ("plan/c", "succeeded", None), ("after", "skipped", None), ("beside", "succeeded", None)]
    assert [(p[0], p[1], p[2]) for p in local["invalid plan"]["phases"]] == [
        ("plan", "failed", "plan_invalid"), ("after", "skipped", None)]
