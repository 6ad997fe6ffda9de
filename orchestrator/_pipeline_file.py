"""Pipeline files (TOML): parsed with ``tomllib``, validated with errors that name the phase and the key.

    [pipeline]                      # all optional
    name = "v3"; max_parallel = 2; max_cost_usd = 5.0; fail_fast = false; max_plan_depth = 2
    approval_webhook = { url = "https://...", headers = { Authorization = "ENV_VAR_NAME" } }

    [defaults]                      # optional: any phase key, applied to every phase that does not set it

    [[phases]]
    name = "research"               # required
    prompt = "..."                  # required; may hand on {{ phases.NAME.result }} and {{ file("PATH") }}
                                    # (see _template: Jinja2's sandbox, names checked when loaded)
    depends_on = ["..."]
    timeout_s = 600; idle_timeout_s = 120; max_cost_usd = 1.0
    max_repeats = 5                 # the same tool call 5 times in a row: the attempt ends as stuck
    memory_mb = 2048; max_pids = 256  # caps on the attempt's whole tree and its check commands (cgroups)
    approval = "after"              # or "before": a person approves (claude-scope approve RUN PHASE)
    retry = { attempts = 3, initial_wait_s = 1, max_wait_s = 30, after_side_effects = false }
    # feedback = true: a failed check is retried too, and each retry is told what failed before;
    # kinds = ["rate_limited", "process_exit"]: retry only these failure kinds (default: the retryable ones)
    sdk = "claude-agent-sdk"        # or "claude-code-sdk" (the default); also a [pipeline] key
    setting_sources = ["project"]   # claude-agent-sdk only: without it, no CLAUDE.md or settings are loaded
    mcp_config = "mcp.json"         # or inline: { github = { command = "...", env = { TOKEN = "${GH_TOKEN}" } } }
    model = "..."; max_turns = 50; permission_mode = "bypassPermissions"; cwd = "sub/dir"
    allowed_tools = ["Read"]; disallowed_tools = []; system_prompt = "..."; env = { KEY = "value" }
    isolation = "worktree"          # each attempt in a git worktree of its own, merged back on success
    [[phases.variants]]             # a race (isolation = "worktree"): variants run at once, the first that
    name = "careful"                # passes wins and is merged, the others are cancelled; each may set
    model = "..."                   # prompt, model, max_turns, permission_mode, tools, system prompts, env,
                                    # scenario; name defaults to v1, v2, ...
    expands = "plan.toml"           # a planner: the file it writes joins the run as [[phases]] (see _plan)
    max_planned = 100; plan_commands = false
    scenario = "ok"                 # used only with --simulate: the stand-in CLI's scenario (name or table)
    [[phases.checks]]
    type = "file_exists"; path = "milestone_1/research.md"; min_bytes = 100
    # or: type = "glob", pattern, min_count, min_bytes (each match)
    # or: type = "command", command (a string or a list), timeout_s, stdin, expect_output (a regex)
    # or: type = "grep", pattern (a regex), files (a glob, default "**/*"), absent (default false)
    # or: type = "pytest", args (a list), python (default: python on PATH), timeout_s

Relative ``cwd`` and check paths are relative to the project directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from claude_code_sdk import ClaudeCodeOptions

from sdk_wrapper import FailureKind, ResultWebhook, RetryPolicy
from sdk_wrapper.lowlevel import agent_backend
from sdk_wrapper.standin import SCENARIO_ENV

from ._checks import Check, command_succeeds, file_exists, glob_matches, grep, pytest_passes
from ._model import Phase, Pipeline, PipelineError, Variant
from ._template import TemplatePrompt, is_template

_NUM = (int, float)
_PIPELINE_KEYS: dict[str, Any] = {"name": str, "max_parallel": int, "max_cost_usd": _NUM, "fail_fast": bool,
                                  "sdk": str, "max_plan_depth": int, "approval_webhook": dict}
PHASE_KEYS: dict[str, Any] = {
    "name": str, "prompt": str, "description": str, "depends_on": list, "timeout_s": _NUM,
    "idle_timeout_s": _NUM, "max_cost_usd": _NUM, "retry": dict, "model": str, "max_turns": int,
    "permission_mode": str, "cwd": str, "allowed_tools": list, "disallowed_tools": list, "system_prompt": str,
    "append_system_prompt": str, "env": dict, "scenario": (str, dict), "checks": list, "sdk": str,
    "setting_sources": list, "mcp_config": (str, dict), "isolation": str, "variants": list, "expands": str,
    "max_planned": int, "plan_commands": bool, "max_repeats": int, "memory_mb": int, "max_pids": int,
    "approval": str,
}
#: what a race's variant may change of its phase
_VARIANT_KEYS: dict[str, Any] = {
    "name": str, "prompt": str, "model": str, "max_turns": int, "permission_mode": str, "allowed_tools": list,
    "disallowed_tools": list, "system_prompt": str, "append_system_prompt": str, "env": dict,
    "scenario": (str, dict),
}
SDKS = ("claude-code-sdk", "claude-agent-sdk")
_SETTING_SOURCES = {"user", "project", "local"}
#: keys of an MCP server whose values are secrets unless they are ${VAR} references
#: (AUTH, but not AUTHOR: GIT_AUTHOR_NAME is no secret; AUTHORIZATION is)
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL|AUTH(?!OR(?!IZ))", re.IGNORECASE)
_ENV_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$")
_RETRY_KEYS: dict[str, Any] = {"attempts": int, "initial_wait_s": _NUM, "max_wait_s": _NUM, "jitter_s": _NUM,
                               "after_side_effects": bool, "feedback": bool, "kinds": list}
_CHECK_KEYS: dict[str, dict[str, Any]] = {
    "file_exists": {"type": str, "path": str, "min_bytes": int, "name": str},
    "glob": {"type": str, "pattern": str, "min_count": int, "min_bytes": int, "name": str},
    "command": {"type": str, "command": (str, list), "timeout_s": _NUM, "name": str, "stdin": str,
                "expect_output": str},
    "grep": {"type": str, "pattern": str, "files": str, "absent": bool, "name": str},
    "pytest": {"type": str, "args": list, "python": str, "timeout_s": _NUM, "name": str},
}
_PERMISSION_MODES = {"default", "acceptEdits", "plan", "bypassPermissions"}


def read_pipeline_data(path: Path) -> dict[str, Any]:
    """A pipeline file's TOML tables; PipelineError naming the file when it cannot be read or parsed."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PipelineError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{path}: invalid TOML: {exc}") from None


def load_pipeline(path: str | Path, *, project_dir: str | Path | None = None, simulate: bool = False) -> Pipeline:
    """Read and validate a pipeline file. ``simulate`` passes each phase's ``scenario`` to the stand-in CLI."""
    path = Path(path)
    data = read_pipeline_data(path)
    try:
        pipeline = parse_pipeline(data, project_dir=Path(project_dir) if project_dir else path.parent,
                                  simulate=simulate)
    except PipelineError as exc:
        raise PipelineError(f"{path}: {exc}") from None
    return dataclasses.replace(pipeline, source=str(path.resolve()))


def check_keys(where: str, table: Mapping[str, Any], allowed: Mapping[str, Any]) -> None:
    # The stand-in's scenario parser checks keys the same way (sdk_wrapper/standin/_scenario.py): it runs
    # isolated (python -I -S, stdlib only, from its own directory), so it cannot share this one.
    for key, value in table.items():
        if key not in allowed:
            raise PipelineError(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
        expected = allowed[key] if isinstance(allowed[key], tuple) else (allowed[key],)
        if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
            names = " or ".join(t.__name__ for t in expected)
            raise PipelineError(f"{where}: key {key!r} must be {names}, got {type(value).__name__}")


def _finite_positive(where: str, key: str, value: float, *, zero: bool = False) -> None:
    # TOML has nan and inf; neither is a limit (nan compares false with everything, so it is never hit).
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise PipelineError(f"{where}: key {key!r} must be a finite {'non-negative' if zero else 'positive'} "
                            f"number, got {value!r}")


def parse_pipeline(data: Mapping[str, Any], *, project_dir: Path, simulate: bool = False) -> Pipeline:
    check_keys("file", data, {"pipeline": dict, "defaults": dict, "phases": list})
    settings = data.get("pipeline", {})
    check_keys("[pipeline]", settings, _PIPELINE_KEYS)
    for key in ("max_cost_usd", "max_parallel", "max_plan_depth"):
        if key in settings:
            _finite_positive("[pipeline]", key, settings[key])
    defaults = data.get("defaults", {})
    check_keys("[defaults]", defaults, {k: v for k, v in PHASE_KEYS.items() if k not in ("name", "depends_on")})
    tables = data.get("phases")
    if not tables:
        raise PipelineError("no [[phases]] defined")
    phases = []
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            raise PipelineError(f"phases[{index}]: expected a table")
        where = f"phase {table.get('name', f'#{index + 1}')!r}"
        check_keys(where, table, PHASE_KEYS)
        merged = {**defaults, **table}
        for required in ("name", "prompt"):
            if required not in merged:
                raise PipelineError(f"{where}: missing required key {required!r}")
        phases.append(parse_phase(where, {"sdk": settings.get("sdk", SDKS[0]), **merged}, project_dir, simulate))
    return Pipeline(tuple(phases), max_parallel=settings.get("max_parallel", 1),
                    max_cost_usd=settings.get("max_cost_usd"), fail_fast=settings.get("fail_fast", False),
                    name=settings.get("name", "pipeline"), simulate=simulate,
                    max_plan_depth=settings.get("max_plan_depth", 2),
                    approval_webhook=_webhook(settings["approval_webhook"]) if "approval_webhook" in settings else None)


def parse_phase(where: str, t: dict[str, Any], project_dir: Path, simulate: bool) -> Phase:
    options = _phase_options(where, t, project_dir, simulate)
    retry, feedback = _retry(where, t.get("retry"))
    for key in ("timeout_s", "idle_timeout_s", "max_cost_usd", "max_turns"):
        if key in t:
            _finite_positive(where, key, t[key])
    prompt = _prompt(where, t["prompt"])
    return Phase(
        variants=tuple(_variant(f"{where}.variants[{i}]", i, v, t, project_dir, simulate)
                       for i, v in enumerate(t.get("variants", []))),
        name=t["name"], prompt=prompt, options=options, timeout_s=t.get("timeout_s", 600.0),
        isolation=t.get("isolation", "in_place"), expands=t.get("expands", ""),
        max_planned=t.get("max_planned", 100), plan_commands=t.get("plan_commands", False),
        max_repeats=t.get("max_repeats"), memory_mb=t.get("memory_mb"), max_pids=t.get("max_pids"),
        approval=t.get("approval", ""),
        idle_timeout_s=t.get("idle_timeout_s"), max_cost_usd=t.get("max_cost_usd"), retry=retry, feedback=feedback,
        depends_on=tuple(t.get("depends_on", ())), description=t.get("description", ""),
        checks=tuple(_check_spec(f"{where}.checks[{i}]", c) for i, c in enumerate(t.get("checks", []))),
    )


def _prompt(where: str, text: str) -> str | TemplatePrompt:
    return TemplatePrompt(text, where) if is_template(text) else text


def _variant(where: str, index: int, v: Any, phase: dict[str, Any], project_dir: Path, simulate: bool) -> Variant:
    """A race's variant: its phase's table with the variant's keys over it (``name`` defaults to v1, v2...)."""
    if not isinstance(v, dict):
        raise PipelineError(f"{where}: expected a table")
    check_keys(where, v, _VARIANT_KEYS)
    name = v.get("name", f"v{index + 1}")
    where = f"{where} ({name!r})"
    merged = {**phase, **{k: val for k, val in v.items() if k != "name"}}
    if "env" in v:  # a variant's env adds to its phase's
        merged["env"] = {**phase.get("env", {}), **v["env"]}
    options = _phase_options(where, merged, project_dir, simulate)
    return Variant(name, _prompt(where, v["prompt"]) if "prompt" in v else None, options)


def _phase_options(where: str, t: dict[str, Any], project_dir: Path, simulate: bool) -> Any:
    if t.get("permission_mode") not in (None, *_PERMISSION_MODES):
        raise PipelineError(f"{where}: key 'permission_mode' must be one of {sorted(_PERMISSION_MODES)}")
    for key in ("allowed_tools", "disallowed_tools", "depends_on"):
        if not all(isinstance(v, str) for v in t.get(key, [])):
            raise PipelineError(f"{where}: key {key!r} must be a list of strings")
    env = {str(k): str(v) for k, v in t.get("env", {}).items()}
    if simulate and "scenario" in t:
        scenario = t["scenario"]
        env[SCENARIO_ENV] = scenario if isinstance(scenario, str) else json.dumps(scenario)
    cwd = project_dir / t["cwd"] if "cwd" in t else project_dir
    return _options(where, t, cwd, env, project_dir)


def _options(where: str, t: dict[str, Any], cwd: Path, env: dict[str, str], project_dir: Path) -> Any:
    """The phase's SDK options: claude-code-sdk's, or claude-agent-sdk's with ``sdk = "claude-agent-sdk"`` (the
    maintained SDK; without ``setting_sources`` it loads no CLAUDE.md or settings)."""
    sdk = t["sdk"]
    if sdk not in SDKS:
        raise PipelineError(f"{where}: key 'sdk' must be one of {list(SDKS)}, got {sdk!r}")
    common: dict[str, Any] = {
        "model": t.get("model"), "max_turns": t.get("max_turns"), "permission_mode": t.get("permission_mode"),
        "allowed_tools": list(t.get("allowed_tools", [])), "disallowed_tools": list(t.get("disallowed_tools", [])),
        "system_prompt": t.get("system_prompt"), "cwd": str(cwd), "env": env,
    }
    if "mcp_config" in t:
        common["mcp_servers"] = _mcp_config(where, t["mcp_config"], project_dir)
    if sdk == SDKS[0]:
        if "setting_sources" in t:
            raise PipelineError(f"{where}: key 'setting_sources' is a claude-agent-sdk option; set sdk = "
                                "\"claude-agent-sdk\"")
        return ClaudeCodeOptions(**common, append_system_prompt=t.get("append_system_prompt"))
    try:
        options_type = agent_backend().options_type
    except ImportError:
        raise PipelineError(f"{where}: sdk \"claude-agent-sdk\" needs the agent extra: "
                            "pip install 'claude-scope[agent]'") from None
    sources = t.get("setting_sources")
    if sources is not None and (not isinstance(sources, list) or not set(sources) <= _SETTING_SOURCES):
        raise PipelineError(f"{where}: key 'setting_sources' must list some of {sorted(_SETTING_SOURCES)}")
    if "append_system_prompt" in t:  # the agent SDK appends to its preset prompt
        if t.get("system_prompt") is not None:
            raise PipelineError(f"{where}: with claude-agent-sdk, set system_prompt or append_system_prompt, not both")
        common["system_prompt"] = {"type": "preset", "preset": "claude_code", "append": t["append_system_prompt"]}
    return options_type(**common, setting_sources=sources)


def _mcp_config(where: str, config: str | dict[str, Any], project_dir: Path) -> str | dict[str, Any]:
    """A path to an MCP config file (relative to the project), or an inline table of servers. An inline
    config reaches the CLI's command line, which any local user can read in /proc: a secret-looking env or
    header value must be a ``${VAR}`` reference the CLI expands, never the secret itself."""
    if isinstance(config, str):
        return str(project_dir / config)
    servers = config.get("mcpServers", config)
    if not isinstance(servers, dict) or not all(isinstance(v, dict) for v in servers.values()):
        raise PipelineError(f"{where}: key 'mcp_config' must be a path or a table of servers (name = {{ command = "
                            "..., args = [...] }})")
    for name, server in servers.items():
        for table in ("env", "headers"):
            for key, value in dict(server.get(table, {})).items():
                if SECRET_NAME.search(str(key)) and not _ENV_REFERENCE.match(str(value)):
                    raise PipelineError(f"{where}: mcp_config server {name!r} {table} {key!r} looks like a secret: "
                                        f"write it as a reference, {key} = \"${{{key}}}\", and set {key} in the "
                                        "environment (an inline config is readable on the CLI's command line)")
    return dict(servers)


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _webhook(table: dict[str, Any]) -> ResultWebhook:
    """``approval_webhook = { url = "https://...", headers = { Authorization = "ENV_NAME" }, timeout_s = 5 }``:
    each header's value is the name of an environment variable, read now, so no secret is in the file."""
    where = "[pipeline] approval_webhook"
    check_keys(where, table, {"url": str, "headers": dict, "timeout_s": _NUM})
    if "url" not in table:
        raise PipelineError(f"{where}: missing required key 'url'")
    headers = {}
    for name, env in dict(table.get("headers", {})).items():
        if not isinstance(env, str) or not _ENV_NAME.match(env):
            raise PipelineError(f"{where}: header {name!r} must name an environment variable (its value is read "
                                f"from there), got {env!r}")
        if env not in os.environ:
            raise PipelineError(f"{where}: header {name!r} names environment variable {env}, which is not set")
        headers[str(name)] = os.environ[env]
    try:
        return ResultWebhook(table["url"], headers, float(table.get("timeout_s", 5.0)))
    except ValueError as exc:
        raise PipelineError(f"{where}: {exc}") from None


def _retry(where: str, table: dict[str, Any] | None) -> tuple[RetryPolicy | None, bool]:
    """The phase's retry policy, and whether its retries learn from feedback."""
    if table is None:
        return None, False
    where = f"{where}.retry"
    check_keys(where, table, _RETRY_KEYS)
    for key in ("initial_wait_s", "max_wait_s", "jitter_s"):
        if key in table:
            _finite_positive(where, key, table[key], zero=True)
    settings = {k: v for k, v in table.items() if k != "feedback"}
    if "kinds" in settings:
        known = {k.value for k in FailureKind}
        wrong = [k for k in settings["kinds"] if k not in known]
        if wrong or not settings["kinds"]:
            raise PipelineError(f"{where}: key 'kinds' must list failure kinds, of {sorted(known)}; got {wrong}")
        settings["kinds"] = frozenset(FailureKind(k) for k in settings["kinds"])
    try:
        return RetryPolicy(**settings), bool(table.get("feedback", False))
    except ValueError as exc:
        raise PipelineError(f"{where}: {exc}") from None


def _check_spec(where: str, c: Any) -> Check:
    if not isinstance(c, dict) or c.get("type") not in _CHECK_KEYS:
        raise PipelineError(f"{where}: key 'type' must be one of {sorted(_CHECK_KEYS)}")
    check_keys(where, c, _CHECK_KEYS[c["type"]])
    for key in ("min_bytes", "min_count"):
        if key in c:
            _finite_positive(where, key, c[key], zero=True)
    if "timeout_s" in c:
        _finite_positive(where, "timeout_s", c["timeout_s"])
    name = c.get("name", "")
    if c["type"] == "file_exists":
        if "path" not in c:
            raise PipelineError(f"{where}: missing required key 'path'")
        return file_exists(c["path"], c.get("min_bytes", 1), name)
    for key in ("pattern", "expect_output"):
        if key in c and c["type"] in ("grep", "command"):
            try:
                re.compile(c[key])
            except re.error as exc:
                raise PipelineError(f"{where}: key {key!r} is not a valid regular expression: {exc}") from None
    if c["type"] in ("glob", "grep") and "pattern" not in c:
        raise PipelineError(f"{where}: missing required key 'pattern'")
    if c["type"] == "glob":
        return glob_matches(c["pattern"], c.get("min_count", 1), name, c.get("min_bytes", 0))
    if c["type"] == "grep":
        return grep(c["pattern"], c.get("files", "**/*"), c.get("absent", False), name)
    if c["type"] == "pytest":
        if not all(isinstance(a, str) for a in c.get("args", [])):
            raise PipelineError(f"{where}: key 'args' must be a list of strings")
        return pytest_passes(*c.get("args", []), python=c.get("python", ""), timeout_s=c.get("timeout_s", 600.0),
                             name=name)
    if "command" not in c:
        raise PipelineError(f"{where}: missing required key 'command'")
    command = c["command"] if isinstance(c["command"], str) else tuple(str(a) for a in c["command"])
    return command_succeeds(command, c.get("timeout_s", 120.0), name, c.get("stdin"), c.get("expect_output"))
