"""Evidence handed on: a prompt reads an earlier phase's result and a project file, through Jinja2's sandbox.
Wrong names are refused when the pipeline is loaded; what is handed on survives a resume (the journal keeps
the result text). The stand-in agent reacts to what it was handed (``when_prompt_contains``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError

from orchestrator import Orchestrator, PhaseStatus, PipelineError, parse_pipeline
from sdk_wrapper.testing.pytest_plugin import LeakGuard

pytestmark = pytest.mark.anyio

FINDINGS = "FINDINGS: keep the journal in SQLite"
PLAN_PROMPT = 'Plan from the research:\n{{ phases.research.result }}\nNotes: {{ file("notes.md") }}\n'


def data(plan_prompt: str = PLAN_PROMPT, **plan: Any) -> dict[str, Any]:
    wrote = {"steps": [{"tool": {"name": "Write", "input": {"file_path": "plan.md", "content": "the plan"}}}]}
    return {"phases": [
        {"name": "research", "prompt": "research", "scenario": {"steps": [{"text": FINDINGS}]}},
        {"name": "plan", "prompt": plan_prompt, "depends_on": ["research"],
         "scenario": {"steps": [{"text": "I was not told"}], "when_prompt_contains": {FINDINGS: wrote}}, **plan}]}


def load(tmp_path: Path, body: dict[str, Any]) -> Any:
    return parse_pipeline(body, project_dir=tmp_path, simulate=True)


async def test_a_prompt_is_handed_the_research_and_a_file(leak_guard: LeakGuard, standin_cli: Path,
                                                          tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("use WAL")
    with Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=standin_cli) as orch:
        report = await orch.run(load(tmp_path, data()), run_id="r")
        prompt = next(a["prompt"] for a in orch.journal.attempts("r") if a["name"] == "plan")
    assert report.ok
    assert prompt == f"Plan from the research:\n{FINDINGS}\nNotes: use WAL\n"
    assert (tmp_path / "plan.md").read_text() == "the plan"  # the agent acted on what it was handed


async def test_what_is_handed_on_survives_a_resume(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    """The plan fails its check; on resume the research is kept, not rerun, and the plan is handed its
    result from the journal."""
    (tmp_path / "notes.md").write_text("use WAL")
    body = data(checks=[{"type": "file_exists", "path": "approved.md"}])
    with Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=standin_cli) as orch:
        first = await orch.run(load(tmp_path, body), run_id="r")
        assert first.phases["plan"].status is PhaseStatus.FAILED
        (tmp_path / "approved.md").write_text("yes")
        resumed = await orch.resume("r", load(tmp_path, body))
        prompts = [a["prompt"] for a in orch.journal.attempts("r") if a["name"] == "plan"]
    assert resumed.ok and resumed.phases["research"].from_journal
    assert len(prompts) == 2 and FINDINGS in prompts[1]


async def test_a_file_that_is_missing_fails_the_phase_with_the_reason(leak_guard: LeakGuard, standin_cli: Path,
                                                                      tmp_path: Path) -> None:
    with Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=standin_cli) as orch:
        report = await orch.run(load(tmp_path, data()))
    plan = report.phases["plan"]
    assert plan.status is PhaseStatus.FAILED and "file('notes.md') cannot be read: No such file" in plan.message


@pytest.mark.parametrize(("prompt", "error"), [
    ("{{ phase.research.result }}", r"phase 'plan': prompt uses unknown name\(s\) \['phase'\]"),
    ("{{ phases.research.output }}", r"prompt reads phases.research.output: a phase has cost_usd, num_turns"),
    ("{{ phases.plan.result }}", r"prompt reads phases.plan, a phase it does not depend on"),
    ("{{ phases.reserch.result }}", r"prompt reads phases.reserch, not a phase of this pipeline"),
    ("{{ phases }}", r"prompt uses phases without naming what it reads"),
    ("{{ phases.research }}", r"prompt uses phases without naming what it reads"),
    ("{{ phases[name].result }}", r"unknown name\(s\) \['name'\]"),
    ("{{ phases.research.result ", r"prompt is not a valid template \(line 1\)"),
])
def test_wrong_names_are_refused_when_the_pipeline_is_loaded(prompt: str, error: str, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=error):
        load(tmp_path, data(prompt))


def test_a_literal_brace_and_a_file_outside_the_project(tmp_path: Path) -> None:
    pipeline = load(tmp_path, data('Write {{ "{{" }} literally, {% raw %}{{ this too }}{% endraw %}'))
    render = pipeline.phase("plan").prompt
    assert render.render({}, tmp_path) == "Write {{ literally, {{ this too }}"
    outside = load(tmp_path, data('{{ file("../secret") }}')).phase("plan").prompt
    with pytest.raises(RuntimeError, match=r"file\('../secret'\) is outside the project"):
        outside.render({}, tmp_path)


def test_the_sandbox_refuses_reaching_into_python(tmp_path: Path) -> None:
    sneaky = load(tmp_path, data('{{ file.__globals__ }}')).phase("plan").prompt
    with pytest.raises(SecurityError):
        sneaky.render({}, tmp_path)
