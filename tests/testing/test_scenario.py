"""Scenario validation: a bad scenario is a clear error naming the key, from the real executable too."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sdk_wrapper.testing import PRESETS, ScenarioError, install_standin, load_scenario, scenario_env


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_valid(name: str) -> None:
    assert load_scenario(name) is not None


@pytest.mark.parametrize(("scenario", "expected"), [
    ({"stepz": []}, "unknown key 'stepz'"),
    ({"steps": [{"text": 3}]}, "steps[0].text: expected str, got int"),
    ({"steps": [{"sleep": True}]}, "steps[0].sleep: expected int or float, got a boolean"),
    ({"steps": [{"text": "a", "sleep": 1}]}, "exactly one key"),
    ({"steps": [{"spawn": {"hold": True}}]}, "steps[0].spawn: unknown key 'hold'"),
    ({"steps": [{"burst": {}}]}, "steps[0].burst: missing 'count'"),
    ({"steps": [{"tool": {"input": {}}}]}, "steps[0].tool: missing 'name'"),
    ({"preset": "nope"}, "unknown preset 'nope'"),
    ({"delay_s": -1}, "delay_s: must not be negative"),
    ({"result": "yes"}, "scenario.result: expected dict or null, got str"),
    ([1, 2], "expected a JSON object, got list"),
])
def test_bad_scenarios_name_the_problem(scenario: object, expected: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(json.dumps(scenario))
    assert expected in str(info.value)


def test_bad_json_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="invalid JSON at line 1 column 2"):
        load_scenario("{oops")
    with pytest.raises(ScenarioError, match="neither a preset"):
        load_scenario(str(tmp_path / "missing.json"))
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"steps": [{"text": "from a file"}]}))
    assert load_scenario(str(path)).steps == ({"text": "from a file"},)


def test_executable_reports_bad_scenario_without_traceback(tmp_path: Path) -> None:
    cli = install_standin(tmp_path)
    env = {"PATH": "/usr/bin:/bin", **scenario_env({"steps": [{"bogus": 1}]})}
    proc = subprocess.run([cli, "--output-format", "stream-json", "--verbose", "--print", "--", "x"],
                          env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("claude-standin: bad scenario: steps[0]: unknown key 'bogus'")
    assert "Traceback" not in proc.stderr
