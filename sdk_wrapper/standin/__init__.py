"""The stand-in ``claude`` CLI: a real executable speaking the CLI's stream-json protocol, scripted by a scenario.

A product component, not only a test aid: ``claude-scope demo`` runs its pipeline offline against it,
``claude-scope doctor`` proves containment with it, and a phase with a ``simulate`` scenario runs it. The
scenario format is in ``README.md`` beside this file; ``sdk_wrapper.testing`` (the pytest plugin and the
Messages API mock) builds on it and re-exports these names.
"""

from __future__ import annotations

from ._install import install_standin, process_alive, read_pids
from ._scenario import PID_FILE_ENV, PRESETS, SCENARIO_ENV, Scenario, ScenarioError, load_scenario, scenario_env

__all__ = [
    "PID_FILE_ENV",
    "PRESETS",
    "SCENARIO_ENV",
    "Scenario",
    "ScenarioError",
    "install_standin",
    "load_scenario",
    "process_alive",
    "read_pids",
    "scenario_env",
]
