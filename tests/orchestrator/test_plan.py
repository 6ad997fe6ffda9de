"""Planner phases (``expands``): the plan a phase writes joins the run under it, journalled before any of its
phases runs, bounded and validated like a pipeline file; an invalid plan fails the planner with the error as
evidence; a resume never reruns a planner that succeeded (its plan comes from the journal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Orchestrator, PhaseKind, parse_pipeline
from sdk_wrapper.testing.pytest_plugin import LeakGuard

pytestmark = pytest.mark.anyio


def toml_phase(name: str, extra: str = "") -> str:
    writes = {"steps": [{"tool": {"name": "Write", "input": {"file_path": f"{name}.md", "content": name}}}]}
    return f'[[phases]]\nname = "{name}"\nprompt = "do {name}"\nscenario = {json.dumps(json.dumps(writes))}\n{extra}\n'


def planner(plan: str, **keys: Any) -> dict[str, Any]:
    return {"name": "plan", "prompt": "plan the work", "expands": "plan.toml", **keys,
            "scenario": {"steps": [{"tool": {"name": "Write", "input": {"file_path": "plan.toml", "content": plan}}}]}}


async def run(tmp_path: Path, cli: Path, phases: list[dict[str, Any]], run_id: str = "r",
              **settings: Any) -> Orchestrator:
    orch = Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=cli)
    await orch.run(parse_pipeline({"pipeline": settings, "phases": phases}, project_dir=tmp_path, simulate=True),
                   run_id=run_id)
    return orch


async def test_a_plan_joins_the_run_under_its_planner(leak_guard: LeakGuard, standin_cli: Path,
                                                      tmp_path: Path) -> None:
    plan = toml_phase("research") + toml_phase("build", 'depends_on = ["research"]') + toml_phase("docs")
    phases = [planner(plan), {"name": "after", "prompt": "wrap up", "scenario": "ok"}]  # a sequence
    with await run(tmp_path, standin_cli, phases) as orch:
        rows = orch.journal.phases("r")
        attempts = {a["name"]: a for a in orch.journal.attempts("r")}
        plans = orch.journal.plans("r")
        described = [p["name"] for p in orch.journal.pipeline_of("r")["phases"]]
    assert {n: r["status"] for n, r in rows.items()} == {
        "plan": "succeeded", "plan/research": "succeeded", "plan/build": "succeeded", "plan/docs": "succeeded",
        "after": "succeeded"}
    assert described == ["plan", "plan/research", "plan/build", "plan/docs", "after"]
    assert [p for p, _ in plans] == ["plan"] and len(plans[0][1]["phases"]) == 3
    # "after" depended on the planner: it waited for the whole plan
    assert attempts["after"]["started"] > max(attempts[f"plan/{n}"]["ended"] for n in ("research", "build", "docs"))
    assert attempts["plan/build"]["started"] > attempts["plan/research"]["ended"]
    assert all((tmp_path / f"{n}.md").exists() for n in ("research", "build", "docs"))
    evidence = json.loads(rows["plan"]["evidence"])
    assert evidence[-1]["name"] == "plan" and evidence[-1]["passed"]
    assert "3 phase(s) planned" in evidence[-1]["evidence"]


@pytest.mark.parametrize(("plan", "keys", "error"), [
    (toml_phase("a", 'depends_on = ["b"]') + toml_phase("b", 'depends_on = ["a"]'), {}, "cycle"),
    (toml_phase("a", 'depends_on = ["nope"]'), {}, "'nope', not a phase of this plan"),
    (toml_phase("a") + toml_phase("a"), {}, "defined more than once"),
    (toml_phase("a") + toml_phase("b") + toml_phase("c"), {"max_planned": 2}, "allows 2 (max_planned)"),
    (toml_phase("a", 'colour = "red"'), {}, "unknown key 'colour'"),
    (toml_phase("a", 'env = { X = "1" }'), {}, "unknown key 'env'"),
    (toml_phase("a", 'permission_mode = "bypassPermissions"'), {"permission_mode": "acceptEdits"},
     "wider than its planner's 'acceptEdits'"),
    (toml_phase("a", 'allowed_tools = ["Bash"]'), {"allowed_tools": ["Read", "Write"]}, "not among"),
    (toml_phase("a", 'checks = [{ type = "command", command = "true" }]'), {}, "plan_commands = true"),
    (toml_phase("a", 'cwd = "../elsewhere"'), {}, "outside the project"),
    (toml_phase("x/y"), {}, "no '/'"),
    (toml_phase("a..b"), {}, "no '..'"),
    ("[[phases]]\nname = 'a'\n", {}, "missing required key 'prompt'"),
    ("not toml [", {}, "invalid TOML"),
])
async def test_an_invalid_plan_fails_its_planner(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path,
                                                 plan: str, keys: dict[str, Any], error: str) -> None:
    phases = [planner(plan, **keys), {"name": "after", "prompt": "x", "scenario": "ok"}]
    with await run(tmp_path, standin_cli, phases) as orch:
        rows = orch.journal.phases("r")
        assert orch.journal.plans("r") == []
    assert (rows["plan"]["status"], rows["plan"]["kind"]) == ("failed", PhaseKind.PLAN_INVALID)
    assert error in rows["plan"]["message"], rows["plan"]["message"]
    assert rows["after"]["status"] == "skipped" and set(rows) == {"plan", "after"}


async def test_a_missing_plan_file_fails_the_planner(leak_guard: LeakGuard, standin_cli: Path,
                                                     tmp_path: Path) -> None:
    phases = [{"name": "plan", "prompt": "x", "expands": "plan.toml", "scenario": "ok"}]
    with await run(tmp_path, standin_cli, phases) as orch:
        row = orch.journal.phases("r")["plan"]
    assert row["kind"] == PhaseKind.PLAN_INVALID and "cannot read" in row["message"]


async def test_plans_nest_to_a_bounded_depth(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    inner = toml_phase("leaf")
    middle_toml = (f'[[phases]]\nname = "sub"\nprompt = "plan more"\nexpands = "inner.toml"\n'
                   f'scenario = {json.dumps(json.dumps({"steps": [{"tool": {"name": "Write", "input": {"file_path": "inner.toml", "content": inner}}}]}))}\n')  # noqa: E501
    with await run(tmp_path, standin_cli, [planner(middle_toml)]) as orch:  # the default depth, 2
        rows = orch.journal.phases("r")
    assert {n: r["status"] for n, r in rows.items()} == {"plan": "succeeded", "plan/sub": "succeeded",
                                                         "plan/sub/leaf": "succeeded"}
    with await run(tmp_path, standin_cli, [planner(middle_toml)], "r2", max_plan_depth=1) as orch:
        rows = orch.journal.phases("r2")
    assert rows["plan"]["kind"] == PhaseKind.PLAN_INVALID and "max_plan_depth" in rows["plan"]["message"]


async def test_a_resume_keeps_the_plan_and_never_reruns_its_planner(leak_guard: LeakGuard, standin_cli: Path,
                                                                   tmp_path: Path) -> None:
    plan = toml_phase("a") + toml_phase("b", 'checks = [{ type = "file_exists", path = "ready.txt" }]')
    data = {"phases": [planner(plan)]}
    with await run(tmp_path, standin_cli, data["phases"]) as orch:
        assert orch.journal.phases("r")["plan/b"]["status"] == "failed"
        (tmp_path / "plan.toml").write_text("garbage [")  # the file changed since: the journal's plan is used
        (tmp_path / "ready.txt").write_text("now")
        report = await orch.resume("r", parse_pipeline(data, project_dir=tmp_path, simulate=True))
        rows = orch.journal.phases("r")
    assert report.ok and list(report.phases) == ["plan", "plan/a", "plan/b"]
    assert (rows["plan"]["attempts"], rows["plan/a"]["attempts"], rows["plan/b"]["attempts"]) == (1, 1, 2)


def test_the_milestones_example_runs_offline(leak_guard: LeakGuard, tmp_path: Path) -> None:
    """orchestrator/examples/milestones.toml: V3's 11 phases per milestone as a planner phase, on the stand-in."""
    import subprocess
    import sys

    example = Path(__file__).parents[2] / "orchestrator" / "examples" / "milestones.toml"
    done = subprocess.run([sys.executable, "-m", "orchestrator._cli", "--project-dir", str(tmp_path), "run",
                           str(example), "--simulate", "--run-id", "m"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    from orchestrator import Journal

    with Journal(tmp_path / ".claude-scope" / "runs.db") as journal:
        rows = journal.phases("m")
    assert len(rows) == 13 and all(r["status"] == "succeeded" for r in rows.values())
    assert (tmp_path / "src" / "app.py").exists() and (tmp_path / "milestone_1" / "commit.md").exists()


def test_the_pipeline_snippets_in_the_docs_load(tmp_path: Path) -> None:
    """docs/parallel.md shows an isolated phase, a race and a planner: each snippet is a valid pipeline."""
    import re
    import tomllib

    text = (Path(__file__).parents[2] / "docs" / "parallel.md").read_text()
    snippets = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(snippets) == 3
    loaded = [parse_pipeline(tomllib.loads(s), project_dir=tmp_path) for s in snippets]
    race = loaded[1].phases[0]
    assert [v.name for v in race.variants] == ["careful", "quick", "v3"] and race.reservation_usd == 1.5
    assert loaded[2].phases[0].expands == "plan.toml" and loaded[0].phases[0].isolation == "worktree"
