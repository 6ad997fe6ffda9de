"""The claude-agent-sdk backend: every use of that package's internals is here, and listed in ``private_uses``.

Imported by name (see ``_backends``) only when a ``ClaudeAgentOptions`` is passed. The agent SDK drives the
CLI in stream-json input mode for every prompt (a string prompt is sent as a ``user`` message after
``initialize``), and its ``InternalClient.process_query`` accepts a custom transport; ours is given, so the
process, its session and its tree stay ours, while the SDK does what it does for its own transport:
hooks, ``can_use_tool``, in-process MCP servers, agents, skills and the run-end handshake. That generator
is iterated and closed (``aclosing``) in the pump's task, like the code SDK's.

Its environment mirrors the agent SDK's ``SubprocessCLITransport.connect``: ``CLAUDECODE`` dropped (so
the CLI does not think it runs inside another Claude Code), ``CLAUDE_AGENT_SDK_VERSION`` set, and the
session-state frames that its ``Query`` reads to tell when a run is over requested.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any, cast

import claude_agent_sdk as agent
from claude_agent_sdk import Transport
from claude_agent_sdk._errors import MessageParseError
from claude_agent_sdk._internal.client import InternalClient
from claude_agent_sdk._internal.session_store_validation import validate_session_store_options
from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport
from claude_agent_sdk._version import __version__ as agent_version
from claude_agent_sdk.types import _configure_can_use_tool

from .._backends import Backend, Channel, Prompt, budget_text
from .._errors import UsageError

_SESSION_STATE_ENV = "CLAUDE_CODE_SDK_READS_SESSION_STATE"


class AgentBackend(Backend):
    name = "claude-agent-sdk"
    checked_version = "0.2.189"
    always_streaming = True
    drop_env = ("CLAUDECODE",)

    options_type = agent.ClaudeAgentOptions
    result_type = agent.ResultMessage
    system_type = agent.SystemMessage
    assistant_type = agent.AssistantMessage
    tool_use_type = agent.ToolUseBlock
    not_found_error = agent.CLINotFoundError
    connection_error = agent.CLIConnectionError
    process_error = agent.ProcessError
    invalid_output_errors = (agent.CLIJSONDecodeError, MessageParseError)

    def private_uses(self) -> tuple[str, ...]:
        return (
            "claude_agent_sdk._errors:MessageParseError",
            "claude_agent_sdk._internal.client:InternalClient.process_query",
            "claude_agent_sdk._internal.session_store_validation:validate_session_store_options",
            "claude_agent_sdk._internal.transport.subprocess_cli:SubprocessCLITransport._build_command",
            "claude_agent_sdk._internal.transport.subprocess_cli:SubprocessCLITransport._find_cli",
            "claude_agent_sdk._version:__version__",
            "claude_agent_sdk.types:_configure_can_use_tool",
        )

    def prepare(self, prompt: Prompt, options: agent.ClaudeAgentOptions) -> agent.ClaudeAgentOptions:
        """The checks ``process_query`` makes, made before any process starts; the options stay as given
        (``process_query`` configures them itself, and configuring twice is refused by its own check)."""
        validate_session_store_options(options)
        _configure_can_use_tool(options)
        if options.session_store is not None and (options.resume is not None or options.continue_conversation):
            # process_query skips this for any custom transport; silently starting a fresh session instead
            # of the stored one would be a wrong answer, so it is refused until it is built here.
            raise UsageError("resuming from a session_store is not supported by claude-scope yet: pass resume= "
                             "without session_store (the CLI's own session files), or use claude_agent_sdk.query()")
        return options

    def with_budget(self, options: agent.ClaudeAgentOptions, usd: float) -> agent.ClaudeAgentOptions:
        if options.max_budget_usd is not None and options.max_budget_usd <= usd:
            return options
        return replace(options, max_budget_usd=float(budget_text(usd)))

    def build_argv(self, prompt: Prompt, options: agent.ClaudeAgentOptions, cli_path: str) -> list[str]:
        # The flags of the options process_query will run with: can_use_tool (checked in prepare) routes
        # permission prompts over stdio.
        run_as = replace(options, cli_path=cli_path)
        if options.can_use_tool:
            run_as = replace(run_as, permission_prompt_tool_name="stdio")
        return SubprocessCLITransport(prompt=prompt, options=run_as)._build_command()

    def extra_env(self, options: agent.ClaudeAgentOptions) -> dict[str, str]:
        env = {"CLAUDE_CODE_ENTRYPOINT": "sdk-py", **options.env, "CLAUDE_AGENT_SDK_VERSION": agent_version}
        if not any(key.upper() == _SESSION_STATE_ENV for key in (*os.environ, *env)):  # a caller's choice wins
            env[_SESSION_STATE_ENV] = "1"
        if options.enable_file_checkpointing:
            env["CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING"] = "true"
        return env

    def find_cli(self) -> str:
        """The agent SDK's own search: its bundled CLI first, then PATH and the usual install locations."""
        return SubprocessCLITransport(prompt="", options=agent.ClaudeAgentOptions())._find_cli()

    def stderr_sink(self, options: agent.ClaudeAgentOptions) -> Callable[[str], None] | None:
        return options.stderr  # the agent SDK's per-line callback

    def messages(self, prompt: Prompt, options: Any, channel: Channel) -> AsyncGenerator[Any, None]:
        """The SDK's own generator, handed to the pump as is (it is closed there with ``aclosing``): a wrapping
        generator would cost a frame switch per message. Our transport implements the same Transport
        interface (claude-code-sdk's ABC, which the agent SDK's repeats). The SDK re-raises a transport
        error as a plain ``Exception`` whose text is ours; the pump reads the typed one from the channel."""
        generator = InternalClient().process_query(prompt, options, transport=cast(Transport, channel))
        return cast(AsyncGenerator[Any, None], generator)  # an async generator, annotated as an AsyncIterator


BACKEND = AgentBackend()
