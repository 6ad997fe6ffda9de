"""Pipeline files choose the SDK (``sdk = "claude-agent-sdk"``, the maintained one), its ``setting_sources``,
and MCP servers (``mcp_config``: a path, or inline with secrets as ``${VAR}`` references). What reaches the
CLI is checked on each SDK's own command-line builder; a phase on the agent SDK runs on the stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import claude_agent_sdk
import claude_code_sdk
import pytest

from orchestrator import Orchestrator, PipelineError, parse_pipeline
from sdk_wrapper.lowlevel import backend_for
from sdk_wrapper.testing.pytest_plugin import LeakGuard

pytestmark = pytest.mark.anyio

GITHUB = {"github": {"command": "github-mcp", "args": ["stdio"], "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}}}


def argv_of(tmp_path: Path, table: dict[str, object], pipeline: dict[str, object] | None = None) -> list[str]:
    data = {"pipeline": pipeline or {}, "phases": [{"name": "p", "prompt": "hi", **table}]}
    options = parse_pipeline(data, project_dir=tmp_path).phases[0].options
    backend = backend_for(options)
    assert backend is not None
    return backend.build_argv("hi", options, "claude")


def flag(argv: list[str], name: str) -> str:
    """A flag's value, given as ``--name value`` or ``--name=value`` (each SDK has its own way)."""
    for i, arg in enumerate(argv):
        if arg == name:
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {argv}")


def test_the_agent_sdk_with_its_setting_sources(tmp_path: Path) -> None:
    argv = argv_of(tmp_path, {"setting_sources": ["project"], "append_system_prompt": "be brief"},
                   {"sdk": "claude-agent-sdk"})
    options = parse_pipeline({"pipeline": {"sdk": "claude-agent-sdk"}, "phases": [{"name": "p", "prompt": "x"}]},
                             project_dir=tmp_path).phases[0].options
    assert isinstance(options, claude_agent_sdk.ClaudeAgentOptions)
    assert flag(argv, "--setting-sources") == "project"
    assert flag(argv, "--append-system-prompt") == "be brief"
    code = argv_of(tmp_path, {"sdk": "claude-code-sdk"}, {"sdk": "claude-agent-sdk"})  # a phase overrides
    assert not any(a.startswith("--setting-sources") for a in code)


@pytest.mark.parametrize("sdk", ["claude-code-sdk", "claude-agent-sdk"])
def test_an_inline_mcp_config_reaches_the_cli_with_references_not_secrets(sdk: str, tmp_path: Path) -> None:
    argv = argv_of(tmp_path, {"sdk": sdk, "mcp_config": GITHUB})
    config = json.loads(flag(argv, "--mcp-config"))
    assert config["mcpServers"]["github"]["env"] == {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}
    path = argv_of(tmp_path, {"sdk": sdk, "mcp_config": "mcp.json"})
    assert flag(path, "--mcp-config") == str(tmp_path / "mcp.json")


@pytest.mark.parametrize(("table", "error"), [
    ({"mcp_config": {"github": {"command": "x", "env": {"GITHUB_TOKEN": "ghp_literal"}}}},
     r"mcp_config server 'github' env 'GITHUB_TOKEN' looks like a secret: write it as a reference"),
    ({"mcp_config": {"api": {"url": "https://x", "headers": {"Authorization": "Bearer abc"}}}},
     r"headers 'Authorization' looks like a secret"),
    ({"setting_sources": ["project"]}, r"'setting_sources' is a claude-agent-sdk option"),
    ({"sdk": "claude-sdk"}, r"key 'sdk' must be one of \['claude-code-sdk', 'claude-agent-sdk'\]"),
    ({"sdk": "claude-agent-sdk", "setting_sources": ["team"]}, r"'setting_sources' must list some of"),
])
def test_bad_sdk_keys_are_refused_with_the_phase_named(table: dict[str, object], error: str, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"phase 'p': .*" + error):
        argv_of(tmp_path, table)


async def test_a_phase_runs_on_the_agent_sdk(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    data = {"pipeline": {"sdk": "claude-agent-sdk"},
            "phases": [{"name": "p", "prompt": "hi", "scenario": "ok", "setting_sources": ["project"]}]}
    with Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=standin_cli) as orch:
        report = await orch.run(parse_pipeline(data, project_dir=tmp_path, simulate=True), run_id="r")
    phase = report.phases["p"]
    assert report.ok and phase.query is not None
    assert isinstance(phase.query.result, claude_agent_sdk.ResultMessage)  # the agent SDK's own message class
    assert not isinstance(phase.query.result, claude_code_sdk.ResultMessage)


def test_the_keys_travel_to_temporal(tmp_path: Path) -> None:
    temporal = pytest.importorskip("orchestrator.temporal")
    spec = temporal.spec_from_data({"pipeline": {"sdk": "claude-agent-sdk"}, "phases": [
        {"name": "p", "prompt": "x", "setting_sources": ["project"], "mcp_config": GITHUB}]})
    options = spec.pipeline(tmp_path).phases[0].options
    assert isinstance(options, claude_agent_sdk.ClaudeAgentOptions) and options.setting_sources == ["project"]


def test_secret_names_are_told_from_author_names() -> None:
    from orchestrator._pipeline_file import SECRET_NAME

    assert [n for n in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "AUTHORIZATION", "Authorization", "AUTH_TOKEN",
                        "X_AUTH", "API_KEY", "PATH") if SECRET_NAME.search(n)] == [
        "AUTHORIZATION", "Authorization", "AUTH_TOKEN", "X_AUTH", "API_KEY"]
