"""Pipelines as they travel to Temporal: validated, JSON-safe specs, and the plain records that come back.

A spec is the pipeline file's own data (the TOML tables), checked on the client before it is submitted
and parsed again on the worker, where the phases run: what cannot travel is refused here with a
``PipelineError`` that says why (a callable prompt or check, hooks, ``can_use_tool``, MCP servers).
Secrets never travel: a literal ``env`` value under a secret-looking name is refused; the CLI inherits the
worker's own environment, which is where such values belong.

Nothing here imports ``temporalio``: the workflow imports it through the sandbox's pass-through, and the
tests use it without a server.
"""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claude_code_sdk import ClaudeCodeOptions

from sdk_wrapper import FailureKind, redact

from .._checks import CallableCheck
from .._feedback import told_after
from .._journal import RESULT_KEPT, STDERR_KEPT
from .._model import Phase, PhaseOutcome, Pipeline, PipelineError, RunReport, parse_kind
from .._pipeline_file import SDKS, SECRET_NAME, parse_phase, parse_pipeline, read_pipeline_data
from .._plan import read_plan
from .._runview import AttemptView, CleanupView, PhaseView, RunView, Transcript, read_transcript
from .._status import PhaseKind, PhaseStatus
from .._template import TemplatePrompt

#: how much of an attempt's prompt its record in history keeps (the host's journal keeps more)
PROMPT_IN_HISTORY = 20_000
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


# -- the records that come back ----------------------------------------------------------------------------
def outcome_record(outcome: PhaseOutcome, *, host: str = "", message_log: str = "", prompt: str = "") -> dict[str, Any]:
    """A phase outcome as history keeps it (JSON): small, no message bodies, no live objects; the attempt's
    query facts (its cleanup, a redacted stderr tail of at most 2,000 characters) for the run page."""
    query = outcome.query
    failure = None if query is None else query.failure
    return {
        "name": outcome.name, "status": outcome.status.value, "attempts": outcome.attempts,
        "cost_usd": outcome.cost_usd, "cost_lower_bound": outcome.cost_lower_bound, "duration_s": outcome.duration_s,
        "result_text": None if outcome.result_text is None else redact(outcome.result_text)[:RESULT_KEPT],
        "kind": None if outcome.kind is None else outcome.kind.value, "message": outcome.message,
        "session_id": outcome.session_id, "num_turns": outcome.num_turns,
        "checks": [c.to_dict() for c in outcome.checks],
        "retryable": failure is not None and failure.retryable,
        "side_effects": failure is not None and failure.side_effects,
        "host": host, "message_log": message_log, "prompt": redact(prompt)[:PROMPT_IN_HISTORY],
        "query_ok": query is not None and query.ok,
        "query_id": None if query is None else query.query_id,
        "message_count": None if query is None else query.message_count,
        "stderr_tail": "" if failure is None else redact(failure.stderr_tail)[-STDERR_KEPT:],
        "cleanup": None if query is None else query.cleanup.to_dict(),
    }


def outcome_from_record(record: dict[str, Any]) -> PhaseOutcome:
    status = PhaseStatus(record["status"])
    cost = record.get("cost_usd")
    return PhaseOutcome(
        name=record["name"], status=status, attempts=int(record.get("attempts") or 0),
        cost_usd=None if cost is None else float(cost), duration_s=float(record.get("duration_s") or 0.0),
        kind=parse_kind(record.get("kind"), status), message=str(record.get("message") or ""),
        session_id=record.get("session_id"), num_turns=record.get("num_turns"), from_journal=True,
        cost_lower_bound=bool(record.get("cost_lower_bound")), result_text=record.get("result_text"),
    )


def run_view_from_record(record: dict[str, Any], *, state: str, started: float, ended: float | None,
                         source: str) -> RunView:
    """The run page's view of a workflow's ``status`` record: each phase's attempts as the workflow timed
    them (``history``), transcripts read from the worker's message log where it is on this host."""
    order = record.get("order") or list(record["phases"])
    plan = {p["name"]: p for p in record.get("plan", {}).get("phases", [])}
    here = socket.gethostname()
    phases = []
    for name in order:
        phase = record["phases"][name]
        attempts = []
        for entry in phase.get("history") or []:
            log = entry.get("message_log") or ""
            transcript = (read_transcript(Path(log)) if log and entry.get("host") == here else
                          Transcript(note=f"message log on host {entry.get('host') or '?'}: {log or '-'}"))
            attempts.append(AttemptView(
                number=int(entry["number"]), started=float(entry["started"]),
                ended=None if entry.get("ended") is None else float(entry["ended"]),
                ok=None if entry.get("ended") is None else bool(entry.get("query_ok")), kind=entry.get("kind"),
                message="" if entry.get("query_ok") else str(entry.get("message") or ""),
                cost_usd=entry.get("cost_usd"), num_turns=entry.get("num_turns"), session_id=entry.get("session_id"),
                query_id=entry.get("query_id"), message_count=entry.get("message_count"),
                stderr_tail=str(entry.get("stderr_tail") or ""), cleanup=CleanupView.of(entry.get("cleanup")),
                prompt=str(entry.get("prompt") or ""), checks=tuple(entry.get("checks") or ()),
                transcript=transcript))
        spec = plan.get(name, {})
        phases.append(PhaseView(
            name=name, status=str(phase["status"]), kind=phase.get("kind"),
            message=redact(str(phase.get("message") or "")),
            cost_usd=phase.get("cost_usd"), num_turns=phase.get("num_turns"), duration_s=phase.get("duration_s"),
            cost_lower_bound=bool(phase.get("cost_lower_bound")), reserved_usd=phase.get("reserved_usd"),
            depends_on=tuple(spec.get("depends_on", ())), description=str(spec.get("description", "")),
            checks=tuple(phase.get("checks") or ()), attempts=tuple(attempts)))
    return RunView(run_id=str(record["run_id"]), pipeline=str(record.get("name") or ""), status=state, note="",
                   started=started, ended=ended, made=time.time(), phases=tuple(phases), source=source)


def report_from_record(record: dict[str, Any]) -> RunReport:
    """The workflow's result (or its status) as the same ``RunReport`` the local orchestrator returns."""
    # in pipeline order (the payload converter writes JSON objects with sorted keys)
    order = record.get("order") or list(record["phases"])
    phases = {name: outcome_from_record(record["phases"][name]) for name in order}
    return RunReport(run_id=record["run_id"], phases=phases, cost_usd=float(record.get("cost_usd") or 0.0),
                     cost_lower_bound=any(o.cost_lower_bound for o in phases.values()),
                     duration_s=float(record.get("duration_s") or 0.0),
                     budget_exhausted=bool(record.get("budget_exhausted")))


def should_retry(retry: dict[str, Any] | None, record: dict[str, Any], attempt: int) -> bool:
    """The local phase's retry rule (``_execute.run_phase``'s ``again``) on a phase record: a failed check
    only when the phase learns from feedback; a failed query as ``RetryPolicy.should_retry`` decides."""
    if retry is None or attempt >= int(retry["attempts"]) or record["status"] == PhaseStatus.SUCCEEDED.value:
        return False
    kind = record.get("kind")
    if kind == PhaseKind.VALIDATION_FAILED.value:
        return bool(retry.get("feedback"))
    if kind in (None, FailureKind.CANCELLED.value):
        return False
    if record.get("side_effects") and not retry.get("after_side_effects", False):
        return False
    kinds = retry.get("kinds")
    return kind in kinds if kinds is not None else bool(record.get("retryable"))


def attempt_feedback(retry: dict[str, Any] | None, record: dict[str, Any], attempt: int) -> str:
    """What the next attempt is told of this one, when the phase learns (see ``_feedback``); else nothing."""
    if retry is None or not retry.get("feedback"):
        return ""
    return told_after(attempt, query_ok=bool(record.get("query_ok")), kind=record.get("kind"),
                      message=str(record.get("message") or ""), stderr_tail=str(record.get("stderr_tail") or ""),
                      checks=record.get("checks") or ())


def backoff_s(retry: dict[str, Any], attempt: int, random01: float) -> float:
    """``RetryPolicy``'s wait (tenacity's exponential wait, capped, plus a uniform jitter), with the
    workflow's random."""
    if not retry.get("wait", True):
        return 0.0
    exponential = float(retry["initial_wait_s"]) * 2 ** (attempt - 1)
    base = float(retry["max_wait_s"]) if not math.isfinite(exponential) else exponential
    return min(base, float(retry["max_wait_s"])) + random01 * float(retry["jitter_s"])
