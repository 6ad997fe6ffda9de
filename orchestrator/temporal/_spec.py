"""Pipelines as they travel to Temporal: validated, JSON-safe specs, and the plain records that come back.

A spec is the pipeline file's own data (the TOML tables), checked on the client before it is submitted
and parsed again on the worker, where the phases run: what cannot travel is refused here with a
``PipelineError`` that says why (a callable prompt or check, hooks, ``can_use_tool``, MCP servers).
Secrets never travel: a literal ``env`` value under a secret-looking name is refused; the CLI inherits the
worker's own environment, which is where such values belong.

What comes back (records, reports, the retry rules on a record) is ``_records``. Nothing here imports
``temporalio``: the workflow imports it through the sandbox's pass-through, and the tests use it without a
server.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claude_code_sdk import ClaudeCodeOptions

from .._checks import CallableCheck
from .._model import Phase, Pipeline, PipelineError
from .._pipeline_file import SDKS, SECRET_NAME, parse_phase, parse_pipeline, read_pipeline_data
from .._plan import read_plan
from .._template import TemplatePrompt

#: ClaudeCodeOptions fields a spec carries (the pipeline file's keys); any other field set is refused
_OPTION_KEYS = ("model", "max_turns", "permission_mode", "allowed_tools", "disallowed_tools", "system_prompt",
                "append_system_prompt", "env")


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline that can travel: the file format's data, and whether phases run the stand-in's scenario."""

    data: dict[str, Any]
    simulate: bool = False
    #: where it came from (a path, or "python"), for the report
    source: str = ""

    def pipeline(self, workspace: Path) -> Pipeline:
        """The pipeline as a worker runs it, relative paths against its ``workspace``."""
        return parse_pipeline(self.data, project_dir=workspace, simulate=self.simulate)

    def plan(self) -> dict[str, Any]:
        """What the workflow schedules by: names, dependencies, limits and retry policies (JSON)."""
        pipeline = self.pipeline(Path("."))
        return {
            "name": pipeline.name, "max_parallel": pipeline.max_parallel, "fail_fast": pipeline.fail_fast,
            "max_cost_usd": pipeline.max_cost_usd,
            "phases": [plan_entry(p) for p in pipeline.phases],
            **({"approval_webhook": True} if pipeline.approval_webhook is not None else {}),
        }

    def to_json(self) -> dict[str, Any]:
        return {"data": self.data, "simulate": self.simulate, "source": self.source}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PipelineSpec:
        return cls(dict(raw["data"]), bool(raw.get("simulate", False)), str(raw.get("source", "")))


def plan_entry(p: Phase) -> dict[str, Any]:
    """What the workflow schedules a phase by (JSON)."""
    return {"name": p.name, "depends_on": list(p.depends_on), "timeout_s": p.timeout_s,
            # what the phase may spend: a race's is its max_cost_usd for each variant
            "max_cost_usd": p.reservation_usd,
            "retry": None if p.retry is None else _retry_dict(p.retry, p.feedback),
            # the phases its prompt reads: the workflow hands their records to its attempts
            "hands_on": sorted(frozenset().union(
                *(getattr(prompt, "phases_referenced", frozenset()) for prompt in p.prompts()))),
            **({"approval": p.approval} if p.approval else {}),
            # a race: each variant is an activity of its own, the workflow its judge
            **({"variants": [v.name for v in p.variants]} if p.variants else {})}


def planned_record(pipeline: Pipeline, planner: Phase, workspace: Path) -> dict[str, Any]:
    """A planner's plan as it travels back to the workflow: each planned phase's table (what its attempts are
    built from, alone) and its entry in the plan (what the workflow schedules it by). ``PipelineError`` (a
    ``PlanError``) when the plan cannot run, checked as the local orchestrator checks it."""
    _data, planned = read_plan(pipeline, planner, workspace)
    # the plan checked as a whole with its planner first (cycles, prompts handed on): the rest of the run's
    # phases live in the workflow, which checks the names
    Pipeline((dataclasses.replace(planner, depends_on=(), prompt="-"), *planned), simulate=pipeline.simulate,
             max_plan_depth=pipeline.max_plan_depth)
    return {"tables": [_phase_data(p) for p in planned], "entries": [plan_entry(p) for p in planned]}


def planned_phase(spec: PipelineSpec, table: dict[str, Any], workspace: Path) -> Phase:
    """A planned phase, built alone from the table its planner's attempt sent back (``planned_record``)."""
    sdk = spec.data.get("pipeline", {}).get("sdk", SDKS[0])
    return parse_phase(f"phase {table.get('name')!r}", {"sdk": sdk, **table}, workspace, spec.simulate)


def planned_pipeline(spec: PipelineSpec, phase: Phase) -> Pipeline:
    """What a planned phase's attempt needs of its pipeline (the run's settings: a nested plan's depth)."""
    settings = spec.data.get("pipeline", {})
    # a stand-in of the phase: its prompt may read phases that are not in this one-phase pipeline
    return Pipeline((Phase(phase.name, "-"),), simulate=spec.simulate,
                    max_plan_depth=int(settings.get("max_plan_depth", 2)))


def lean_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec a planned phase's attempt is sent: the pipeline's settings, none of its phases (1,000 planned
    attempts each carrying the whole file overflowed the workflow's 50 MB history at phase 715)."""
    data = spec.get("data", {})
    return {**spec, "data": {"pipeline": data.get("pipeline", {}), "defaults": data.get("defaults", {})}}


def spec_from_file(path: str | Path, *, simulate: bool = False) -> PipelineSpec:
    """Read, validate and check that a pipeline file can travel."""
    path = Path(path)
    data = read_pipeline_data(path)
    try:
        return spec_from_data(data, simulate=simulate, source=str(path.resolve()))
    except PipelineError as exc:
        raise PipelineError(f"{path}: {exc}") from None


def spec_from_data(data: dict[str, Any], *, simulate: bool = False, source: str = "") -> PipelineSpec:
    """Validate the pipeline file format's data (as ``parse_pipeline`` does) and check that it can travel."""
    try:
        if json.loads(json.dumps(data, allow_nan=False)) != data:
            raise ValueError("not plain JSON data")
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"the pipeline cannot travel as JSON ({exc}): dates, times and nan are not allowed") \
            from None
    spec = PipelineSpec(data, simulate, source)
    spec.pipeline(Path("."))  # every error the local orchestrator would raise, raised now
    for index, table in enumerate([data.get("defaults", {}), *data.get("phases", [])]):
        where = "[defaults]" if index == 0 else f"phase {table.get('name', f'#{index}')!r}"
        for name, value in dict(table.get("env", {})).items():
            if SECRET_NAME.search(str(name)) and value:
                raise PipelineError(f"{where}: env {name!r} looks like a secret; its value would be written into "
                                    "workflow history: set it in the worker's environment instead (the CLI "
                                    "inherits it) and leave it out of the pipeline")
    return spec


def spec_from_pipeline(pipeline: Pipeline) -> PipelineSpec:
    """A pipeline built in Python, as a spec; refuses what cannot travel, naming the phase and the reason."""
    phases = [_phase_data(p) for p in pipeline.phases]
    settings: dict[str, Any] = {"name": pipeline.name, "max_parallel": pipeline.max_parallel,
                                "fail_fast": pipeline.fail_fast}
    if pipeline.max_cost_usd is not None:
        settings["max_cost_usd"] = pipeline.max_cost_usd
    return spec_from_data({"pipeline": settings, "phases": phases}, source="python")


def _prompt_text(where: str, prompt: Any) -> str:
    if isinstance(prompt, TemplatePrompt):
        return prompt.source
    if isinstance(prompt, str):
        return prompt
    raise PipelineError(f"{where}: a callable prompt cannot travel to a worker; build the prompt before "
                        "submitting (a string)")


def _phase_data(phase: Phase) -> dict[str, Any]:
    where = f"phase {phase.name!r}"
    prompt = _prompt_text(where, phase.prompt)
    table: dict[str, Any] = {"name": phase.name, "prompt": prompt, "depends_on": list(phase.depends_on),
                             "timeout_s": phase.timeout_s}
    for key in ("idle_timeout_s", "max_cost_usd", "max_repeats", "memory_mb", "max_pids"):
        if getattr(phase, key) is not None:
            table[key] = getattr(phase, key)
    if phase.description:
        table["description"] = phase.description
    if phase.isolation != "in_place":
        table["isolation"] = phase.isolation
    if phase.expands:
        table.update(expands=phase.expands, max_planned=phase.max_planned, plan_commands=phase.plan_commands)
    if phase.approval:
        table["approval"] = phase.approval
    if phase.variants:
        table["variants"] = [_variant_data(where, v) for v in phase.variants]
    if phase.retry is not None:
        table["retry"] = {k: v for k, v in _retry_dict(phase.retry, phase.feedback).items()
                          if k != "wait" and not (k == "kinds" and v is None)}
    if phase.options is not None:
        table.update(_options_data(where, phase.options))
    checks = []
    for check in phase.checks:
        if isinstance(check, CallableCheck):
            raise PipelineError(f"{where}: check {check.name!r} is a callable and cannot travel to a worker; use "
                                "one of the pipeline file's check types")
        checks.append({k: v for k, v in {**check.to_dict(), "name": check.name}.items() if v is not None})
    if checks:
        table["checks"] = checks
    return table


def _variant_data(where: str, variant: Any) -> dict[str, Any]:
    table: dict[str, Any] = {"name": variant.name}
    if variant.prompt is not None:
        table["prompt"] = _prompt_text(f"{where} variant {variant.name!r}", variant.prompt)
    if variant.options is not None:
        table.update({k: v for k, v in _options_data(where, variant.options).items() if k != "cwd"})
    return table


def _options_data(where: str, options: Any) -> dict[str, Any]:
    if not isinstance(options, ClaudeCodeOptions):
        raise PipelineError(f"{where}: only ClaudeCodeOptions travel to a worker")
    default = ClaudeCodeOptions()
    extra = [f.name for f in dataclasses.fields(options)
             if f.name not in (*_OPTION_KEYS, "cwd") and getattr(options, f.name) != getattr(default, f.name)]
    if extra:
        raise PipelineError(f"{where}: options {', '.join(extra)} cannot travel to a worker (callables, servers "
                            "and file handles live in one process); set them in the worker instead")
    data: dict[str, Any] = {}
    for key in _OPTION_KEYS:
        value = getattr(options, key)
        if value not in (None, [], {}):
            data[key] = dict(value) if key == "env" else list(value) if isinstance(value, list) else value
    if options.cwd is not None:
        data["cwd"] = str(options.cwd)
    return data


def _retry_dict(retry: Any, feedback: bool) -> dict[str, Any]:
    return {"attempts": retry.attempts, "initial_wait_s": retry.initial_wait_s, "max_wait_s": retry.max_wait_s,
            "jitter_s": retry.jitter_s, "after_side_effects": retry.after_side_effects, "wait": retry.wait,
            "kinds": None if retry.kinds is None else sorted(k.value for k in retry.kinds), "feedback": feedback}
