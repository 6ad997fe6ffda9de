"""Scenarios for the stand-in CLI: what it prints, how it misbehaves, and how a bad one is reported.

A scenario is plain JSON (a file, an inline string, or a preset name), validated here before the stand-in
prints anything, so a typo in a test scenario is a clear error naming the key, never a traceback or a
silently different run. The format is documented in ``sdk_wrapper/standin/README.md``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCENARIO_ENV = "CLAUDE_STANDIN_SCENARIO"
PID_FILE_ENV = "CLAUDE_STANDIN_PID_FILE"

STEP_KINDS: dict[str, type | tuple[type, ...]] = {
    "text": str,
    "thinking": str,
    "tool": dict,
    "sleep": (int, float),
    "hang": bool,
    "raw": str,
    "malformed_json": bool,
    "long_line_bytes": int,
    "spaces": int,
    "spawn": dict,
    "stderr": str,
    "burst": dict,
    "exit": int,
}
TOP_KEYS: dict[str, type | tuple[type, ...]] = {
    "preset": str,
    "description": str,
    "model": str,
    "session_id": str,
    "delay_s": (int, float),
    "ignore_sigterm": bool,
    "answer_initialize": bool,
    "init": bool,
    "steps": list,
    "result": (dict, type(None)),
    "exit_code": int,
    "stderr": str,
    "omit_result_keys": list,
    "when_prompt_contains": dict,
}
SPAWN_KEYS = {"hold_stdout": bool, "new_session": bool, "seconds": (int, float), "escape": bool}
BURST_KEYS = {"count": int, "text_bytes": int}
TOOL_KEYS = {"name": str, "input": dict, "output": str, "is_error": bool}


if __package__:  # imported with the package (sdk_wrapper.testing): under the project's exception root
    from .._errors import ClaudeScopeError as _Root
else:  # the stand-in runs as a script with the standard library only (python -I -S)

    class _Root(Exception):  # type: ignore[no-redef]
        """The root when there is no package to import it from."""


class ScenarioError(_Root, ValueError):
    """A scenario that cannot be run; the message names the offending key."""


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. ``result`` None means the CLI prints no result line."""

    model: str = "claude-standin-1"
    session_id: str | None = None
    delay_s: float = 0.0
    ignore_sigterm: bool = False
    answer_initialize: bool = True
    init: bool = True
    steps: tuple[dict[str, Any], ...] = ()
    result: dict[str, Any] | None = field(default_factory=dict)
    exit_code: int = 0
    stderr: str = ""
    #: keys of the default result line to leave out (an older CLI without total_cost_usd, say)
    omit_result_keys: tuple[str, ...] = ()
    #: (text, scenario): when the prompt contains the text, that scenario runs instead (the first that matches),
    #: so a stand-in agent can react to what it was told, e.g. a retry's feedback
    when_prompt_contains: tuple[tuple[str, Scenario], ...] = ()

    def for_prompt(self, prompt: str) -> Scenario:
        """The scenario to run for ``prompt``."""
        return next((s for text, s in self.when_prompt_contains if text in prompt), self)


def _result(**fields: Any) -> dict[str, Any]:
    return fields


_HANG = {"steps": [{"text": "working..."}, {"hang": True}], "result": None}
_SPAWN_FOREVER = 3600
PRESETS: dict[str, dict[str, Any]] = {
    "ok": {"description": "one text answer and a success result", "steps": [{"text": "Hello from the stand-in"}]},
    "tools": {
        "description": "thinking, a Write that really writes, a Bash that really runs, then text",
        "steps": [
            {"thinking": "I should write the file."},
            {"tool": {"name": "Write", "input": {"file_path": "standin-output.md", "content": "# Output\n"}}},
            {"tool": {"name": "Bash", "input": {"command": "echo hi"}}},
            {"text": "Done."},
        ],
        "result": _result(num_turns=3),
    },
    "slow": {
        "description": "ten texts 0.1 s apart", "delay_s": 0.1, "steps": [{"text": f"part {i}"} for i in range(10)],
    },
    "hang": {"description": "prints one text, then hangs forever", **_HANG},
    "hang_ignore_term": {"description": "hangs and ignores SIGTERM", "ignore_sigterm": True, **_HANG},
    "exit_error": {
        "description": "dies mid-stream with exit 1 and a stderr line",
        "steps": [{"text": "starting"}, {"stderr": "fatal: the stand-in failed on purpose"}],
        "result": None,
        "exit_code": 1,
    },
    "max_turns": {
        "description": "error_max_turns result, exit 1",
        "steps": [{"text": "turn"}],
        "result": _result(subtype="error_max_turns", is_error=True, num_turns=3,
                          errors=["Reached maximum number of turns (3)"]),
        "omit_result_keys": ["result"],  # as the real CLI: the reason is in errors, there is no result text
        "exit_code": 1,
    },
    "execution_error": {
        "description": "error_during_execution result",
        "steps": [{"text": "trying"}],
        "result": _result(subtype="error_during_execution", is_error=True),
        "exit_code": 1,
    },
    "not_logged_in": {
        "description": "what the real CLI prints when not logged in",
        "steps": [],
        "result": _result(
            subtype="success", is_error=True, terminal_reason="api_error", result="Not logged in · Please run /login",
            total_cost_usd=0, num_turns=1,
        ),
        "exit_code": 1,
    },
    "auth_error": {
        "description": "the API rejected the key (401)",
        "steps": [],
        "result": _result(
            subtype="success", is_error=True, terminal_reason="api_error", api_error_status=401,
            result="API Error: 401 authentication_error", total_cost_usd=0,
        ),
        "exit_code": 1,
    },
    "rate_limited": {
        "description": "API 429",
        "steps": [],
        "result": _result(
            subtype="success", is_error=True, terminal_reason="api_error", api_error_status=429,
            result="API Error: 429 rate_limit_error", total_cost_usd=0,
        ),
        "exit_code": 1,
    },
    "overloaded": {
        "description": "API 529",
        "steps": [],
        "result": _result(
            subtype="success", is_error=True, terminal_reason="api_error", api_error_status=529,
            result="API Error: 529 overloaded_error", total_cost_usd=0,
        ),
        "exit_code": 1,
    },
    "malformed_json": {
        "description": "a truncated JSON object, then a success result",
        "steps": [{"text": "before"}, {"malformed_json": True}, {"text": "after"}],
    },
    "non_json": {
        "description": "a plain log line among the JSON lines",
        "steps": [{"text": "before"}, {"raw": "Loading plugins... done"}, {"text": "after"}],
    },
    "long_line": {"description": "a 1.5 MB message", "steps": [{"long_line_bytes": 1_500_000}]},
    "spaces": {"description": "a text with 200,000 spaces", "steps": [{"spaces": 200_000}]},
    "grandchild_stdout": {
        "description": "spawns a sleeping grandchild that holds stdout, then succeeds",
        "steps": [{"spawn": {"hold_stdout": True, "seconds": _SPAWN_FOREVER}}, {"text": "spawned"}],
    },
    "grandchild_devnull": {
        "description": "spawns a sleeping grandchild with null fds, then succeeds",
        "steps": [{"spawn": {"hold_stdout": False, "seconds": _SPAWN_FOREVER}}, {"text": "spawned"}],
    },
    "grandchild_setsid": {
        "description": "spawns a grandchild in its own session (as the real CLI's Bash tool), then hangs",
        "steps": [{"spawn": {"new_session": True, "seconds": _SPAWN_FOREVER}}, {"text": "spawned"}, {"hang": True}],
        "result": None,
    },
    "burst": {"description": "10,000 messages as fast as possible", "steps": [{"burst": {"count": 10_000}}]},
    "million": {"description": "1,000,000 messages", "steps": [{"burst": {"count": 1_000_000}}]},
    "no_initialize": {"description": "streaming mode: never answers initialize", "answer_initialize": False},
}


def _check_type(where: str, value: Any, expected: type | tuple[type, ...]) -> None:
    # bool is an int subclass; a flag given as 1 or a count given as true is a mistake worth naming.
    expected_t = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in expected_t:
        raise ScenarioError(f"{where}: expected {_names(expected_t)}, got a boolean")
    if not isinstance(value, expected_t):
        raise ScenarioError(f"{where}: expected {_names(expected_t)}, got {type(value).__name__}")


def _names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def _check_keys(where: str, given: dict[str, Any], allowed: dict[str, Any]) -> None:
    for key, value in given.items():
        if key not in allowed:
            raise ScenarioError(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
        _check_type(f"{where}.{key}", value, allowed[key])


def _check_step(index: int, step: Any) -> dict[str, Any]:
    where = f"steps[{index}]"
    if not isinstance(step, dict) or len(step) != 1:
        raise ScenarioError(f"{where}: each step is an object with exactly one key, one of {sorted(STEP_KINDS)}")
    _check_keys(where, step, STEP_KINDS)
    kind, value = next(iter(step.items()))
    if kind == "spawn":
        _check_keys(f"{where}.spawn", value, SPAWN_KEYS)
    elif kind == "burst":
        _check_keys(f"{where}.burst", value, BURST_KEYS)
        if "count" not in value:
            raise ScenarioError(f"{where}.burst: missing 'count'")
    elif kind == "tool":
        _check_keys(f"{where}.tool", value, TOOL_KEYS)
        if "name" not in value:
            raise ScenarioError(f"{where}.tool: missing 'name'")
    elif kind in ("sleep", "long_line_bytes", "spaces") and value < 0:
        raise ScenarioError(f"{where}.{kind}: must not be negative")
    return dict(step)


def parse_scenario(data: Any) -> Scenario:
    """Validate decoded JSON into a Scenario; a ``preset`` key starts from that preset."""
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario: expected a JSON object, got {type(data).__name__}")
    _check_keys("scenario", data, TOP_KEYS)
    merged: dict[str, Any] = {}
    if "preset" in data:
        if data["preset"] not in PRESETS:
            raise ScenarioError(f"scenario.preset: unknown preset {data['preset']!r} (known: {', '.join(PRESETS)})")
        merged.update(PRESETS[data["preset"]])
    merged.update({k: v for k, v in data.items() if k != "preset"})
    merged.pop("description", None)
    steps = tuple(_check_step(i, s) for i, s in enumerate(merged.pop("steps", [])))
    if merged.get("delay_s", 0) < 0:
        raise ScenarioError("scenario.delay_s: must not be negative")
    omit = merged.pop("omit_result_keys", [])
    if not all(isinstance(k, str) for k in omit):
        raise ScenarioError("scenario.omit_result_keys: must be a list of strings")
    cases = []
    for text, case in merged.pop("when_prompt_contains", {}).items():
        try:
            cases.append((text, parse_scenario(case)))
        except ScenarioError as exc:
            raise ScenarioError(f"scenario.when_prompt_contains[{text!r}]: {exc}") from None
    return Scenario(steps=steps, omit_result_keys=tuple(omit), when_prompt_contains=tuple(cases), **merged)


def load_scenario(source: str | None) -> Scenario:
    """Load from inline JSON (starts with ``{`` or ``[``), a preset name, or a JSON file path; None is ``ok``."""
    if source is None or source == "":
        return parse_scenario({"preset": "ok"})
    text = source.strip()
    if text.startswith(("{", "[")):
        return parse_scenario(_decode(text, "inline scenario"))
    if text in PRESETS:
        return parse_scenario({"preset": text})
    path = Path(text)
    if not path.is_file():
        raise ScenarioError(f"scenario {text!r} is neither a preset ({', '.join(PRESETS)}) nor a readable file")
    return parse_scenario(_decode(path.read_text(encoding="utf-8"), str(path)))


def _decode(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def scenario_env(scenario: str | dict[str, Any], pid_file: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Environment variables that make the stand-in run ``scenario`` (preset name or dict)."""
    env = {SCENARIO_ENV: scenario if isinstance(scenario, str) else json.dumps(scenario)}
    if pid_file is not None:
        env[PID_FILE_ENV] = os.fspath(pid_file)
    return env
