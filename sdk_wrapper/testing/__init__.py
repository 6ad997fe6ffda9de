"""Offline testing for claude-scope users: a stand-in ``claude`` CLI and a leak-proving pytest fixture.

The stand-in (``sdk_wrapper.standin``, re-exported here) is a real executable speaking the CLI's
stream-json protocol, scripted by a scenario (see ``sdk_wrapper/standin/README.md``), as httpx ships
``MockTransport`` beside its transport seam. The pytest
plugin (``sdk_wrapper.testing.pytest_plugin``) provides the ``leak_guard`` fixture. ``MessagesAPIMock``
is a loopback Anthropic Messages API for running the *real* CLI offline.
"""

from __future__ import annotations

from ..standin import (
    PID_FILE_ENV,
    PRESETS,
    SCENARIO_ENV,
    Scenario,
    ScenarioError,
    install_standin,
    load_scenario,
    process_alive,
    read_pids,
    scenario_env,
)
from ._messages_api import DUMMY_KEY, MessagesAPIMock

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
]
