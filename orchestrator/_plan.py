"""Planner phases (``expands = "plan.toml"``): a phase that writes the rest of the pipeline.

Once the planner has succeeded, the file it wrote (relative to its cwd, in the project's checkout: an
isolated planner's file has been merged there) is read as ``[[phases]]`` tables and validated exactly like a
pipeline file's, then more:

- **bounded**: at most ``max_planned`` phases (default 100); a planned phase may plan again while its name
  has fewer ``/`` than the pipeline's ``max_plan_depth`` (default 2);
- **named under the planner**: ``plan/NAME``; a name with ``/``, ``..`` or anything but letters, digits,
  ``.``, ``_`` and ``-`` is refused; ``depends_on`` names phases of the same plan (none declared: the plan
  is a sequence), and every planned phase depends on the planner;
- **no more than its planner has**: a planned phase inherits the planner's SDK, environment, MCP servers,
  setting sources and options; its ``permission_mode`` may not be wider (plan < default < acceptEdits <
  bypassPermissions), its ``allowed_tools`` must be a subset of a planner's non-empty list, the planner's
  ``disallowed_tools`` stay disallowed, its ``cwd`` stays inside the project; no ``env`` or ``mcp_config``
  of its own, no race (``variants``), and no ``command`` or ``pytest`` check unless the planner says
  ``plan_commands = true``.

An invalid plan (a cycle, an unknown dependency, a duplicate name, too many phases, an unknown key, a grant
it may not make) fails the planner as ``plan_invalid`` with the error as its evidence.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from ._checks import CheckResult
from ._model import Phase, Pipeline, PipelineError
from ._pipeline_file import PHASE_KEYS, check_keys, parse_phase, read_pipeline_data
from ._schedule import resolve_dependencies

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
#: what a plan's phase may set (the rest it inherits from its planner)
_PLAN_KEYS = {k: v for k, v in PHASE_KEYS.items()
              if k not in ("env", "mcp_config", "sdk", "setting_sources", "variants")}
_OPTION_KEYS = ("model", "max_turns", "permission_mode", "allowed_tools", "disallowed_tools", "system_prompt",
                "append_system_prompt")
_PERMISSION_RANK = {"plan": 0, "default": 1, "acceptEdits": 2, "bypassPermissions": 3}


class PlanError(PipelineError):
    """A planner's plan cannot join the run; the message says which phase and key, and why."""


def plan_path(planner: Phase, project_dir: Path) -> Path:
    cwd = getattr(planner.options, "cwd", None) or project_dir
    return Path(cwd) / planner.expands


def read_plan(pipeline: Pipeline, planner: Phase, project_dir: Path) -> tuple[dict[str, Any], tuple[Phase, ...]]:
    """The plan ``planner`` wrote (its tables, as journalled) and its phases; ``PlanError`` if it cannot run."""
    path = plan_path(planner, project_dir)
    try:
        data = read_pipeline_data(path)
    except PipelineError as exc:
        raise PlanError(f"the plan {planner.expands!r}: {exc}") from None
    return data, plan_phases(pipeline, planner, data, project_dir)


def plan_phases(pipeline: Pipeline, planner: Phase, data: dict[str, Any], project_dir: Path) -> tuple[Phase, ...]:
    """A plan's tables as phases under ``planner`` (see the module doc for the rules)."""
    try:
        check_keys("plan", data, {"phases": list})
        tables = data.get("phases") or []
        if not tables:
            raise PlanError("the plan has no [[phases]]")
        if len(tables) > planner.max_planned:
            raise PlanError(f"the plan has {len(tables)} phases; its planner allows {planner.max_planned} "
                            "(max_planned)")
        names: list[str] = []
        for index, table in enumerate(tables):
            if not isinstance(table, dict):
                raise PlanError(f"phases[{index}]: expected a table")
            name = table.get("name")
            if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
                raise PlanError(f"phases[{index}]: name {name!r} must be letters, digits, '.', '_' or '-' (no '/', "
                                "no '..')")
            if name in names:
                raise PlanError(f"phase {name!r} is defined more than once")
            names.append(name)
        declared = {t["name"]: tuple(t.get("depends_on", ())) for t in tables}
        for name, deps in declared.items():
            unknown = [d for d in deps if d not in declared]
            if unknown:
                raise PlanError(f"phase {name!r}: depends_on names {unknown[0]!r}, not a phase of this plan")
        resolved = resolve_dependencies(declared)
        return tuple(_planned(pipeline, planner, t, resolved[t["name"]], project_dir) for t in tables)
    except PlanError:
        raise
    except PipelineError as exc:
        raise PlanError(str(exc)) from None


def _planned(pipeline: Pipeline, planner: Phase, table: dict[str, Any], deps: tuple[str, ...],
             project_dir: Path) -> Phase:
    where = f"phase {table['name']!r}"
    check_keys(where, table, _PLAN_KEYS)
    if "prompt" not in table:
        raise PlanError(f"{where}: missing required key 'prompt'")
    prefix = f"{planner.name}/"
    if "expands" in table and planner.name.count("/") + 1 >= pipeline.max_plan_depth:
        raise PlanError(f"{where}: plans nest at most {pipeline.max_plan_depth} deep (max_plan_depth); it may not "
                        "plan again")
    for check in table.get("checks", []):
        if isinstance(check, dict) and check.get("type") in ("command", "pytest") and not planner.plan_commands:
            raise PlanError(f"{where}: a {check['type']} check runs a command of the plan's choosing; its planner "
                            "must allow that (plan_commands = true)")
    if "cwd" in table and not (project_dir / table["cwd"]).resolve().is_relative_to(project_dir.resolve()):
        raise PlanError(f"{where}: cwd {table['cwd']!r} is outside the project")
    base = planner.options
    mode = table.get("permission_mode")
    granted = getattr(base, "permission_mode", None) or "default"
    if mode is not None and _PERMISSION_RANK.get(mode, 99) > _PERMISSION_RANK.get(granted, 1):
        raise PlanError(f"{where}: permission_mode {mode!r} is wider than its planner's {granted!r}")
    allowed = list(getattr(base, "allowed_tools", []) or [])
    if allowed and "allowed_tools" in table and (not table["allowed_tools"]
                                                 or not set(table["allowed_tools"]) <= set(allowed)):
        raise PlanError(f"{where}: allowed_tools {table['allowed_tools']} are not among its planner's {allowed}")
    local = {k: v for k, v in table.items() if k not in _OPTION_KEYS and k != "depends_on"}
    phase = parse_phase(where, {**local, "sdk": "claude-code-sdk", "name": prefix + table["name"]}, project_dir,
                        pipeline.simulate)
    overrides: dict[str, Any] = {k: table[k] for k in _OPTION_KEYS if k in table}
    if base is None:
        options = phase.options
    else:
        fields = {f.name for f in dataclasses.fields(base)}
        wrong = [k for k in overrides if k not in fields]
        if wrong:
            raise PlanError(f"{where}: {wrong[0]} is not an option of its planner's SDK")
        overrides["disallowed_tools"] = sorted({*base.disallowed_tools, *overrides.get("disallowed_tools", [])})
        overrides["cwd"] = getattr(phase.options, "cwd", None) if "cwd" in table else base.cwd
        env = dict(getattr(base, "env", {}) or {})
        env.update(getattr(phase.options, "env", {}) or {})  # a scenario, under --simulate
        options = dataclasses.replace(base, **overrides, env=env)
    return dataclasses.replace(phase, options=options, depends_on=(planner.name, *(prefix + d for d in deps)))


def plan_evidence(planner: Phase, planned: list[str]) -> CheckResult:
    """A planner's plan joined the run: how many phases, named (the first 20)."""
    names = ", ".join(planned[:20]) + (f" and {len(planned) - 20} more" if len(planned) > 20 else "")
    return CheckResult("plan", True, f"{len(planned)} phase(s) planned from {planner.expands}: {names}",
                       {"plan": planner.expands, "phases": len(planned)})


def plan_failure(planner: Phase, error: PipelineError) -> CheckResult:
    return CheckResult("plan", False, f"{planner.expands}: {error}", {"plan": planner.expands})
