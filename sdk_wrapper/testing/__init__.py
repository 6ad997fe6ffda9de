"""Offline testing for claude-scope users: a stand-in ``claude`` CLI and a leak-proving pytest fixture.

The stand-in is a real executable speaking the CLI's stream-json protocol, scripted by a scenario (see
``README.md`` beside this file), as httpx ships ``MockTransport`` beside its transport seam. The pytest
plugin (``sdk_wrapper.testing.pytest_plugin``) provides the ``leak_guard`` fixture. ``MessagesAPIMock``
is a loopback Anthropic Messages API for running the *real* CLI offline.
"""

from __future__ import annotations

from ._install import install_standin, process_alive, read_pids, standin_command, standin_script
from ._messages_api import DUMMY_KEY, MessagesAPIMock
from ._scenario import PID_FILE_ENV, PRESETS, SCENARIO_ENV, Scenario, ScenarioError, load_scenario, scenario_env

__all__ = [
    "DUMMY_KEY",
    "PID_FILE_ENV",
    "PRESETS",
    "SCENARIO_ENV",
    "MessagesAPIMock",
    "Scenario",
    "ScenarioError",
    "install_standin",
    "load_scenario",
    "process_alive",
    "read_pids",
    "scenario_env",
    "standin_command",
    "standin_script",
]
