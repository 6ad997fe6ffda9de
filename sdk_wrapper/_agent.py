"""The claude-agent-sdk flavor: its options build the command line, its ``Query`` speaks the protocol.

Imported only when a ``ClaudeAgentOptions`` is passed (see ``_flavor``). The agent SDK drives the CLI in
stream-json input mode for every prompt (a string prompt is sent as a ``user`` message after
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
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, cast

import claude_agent_sdk as agent
from claude_agent_sdk import Transport
from claude_agent_sdk._internal.client import InternalClient
from claude_agent_sdk._internal.session_store_validation import validate_session_store_options
from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport
from claude_agent_sdk._version import __version__ as agent_version
from claude_agent_sdk.types import _configure_can_use_tool

from ._flavor import Flavor, Prompt

if TYPE_CHECKING:
    from ._transport import ScopedTransport

_SESSION_STATE_ENV = "CLAUDE_CODE_SDK_READS_SESSION_STATE"


def _prepare(prompt: Prompt, options: agent.ClaudeAgentOptions) -> agent.ClaudeAgentOptions:
    """The checks ``process_query`` makes, made before any process starts; the options stay as given
    (``process_query`` configures them itself, and its configuring is not idempotent)."""
    validate_session_store_options(options)
    _configure_can_use_tool(options)
    if options.session_store is not None and (options.resume is not None or options.continue_conversation):
        # process_query skips this for any custom transport; silently starting a fresh session instead of
        # the stored one would be a wrong answer, so it is refused until it is built here.
        raise ValueError("resuming from a session_store is not supported by claude-scope yet: pass resume= without "
                         "session_store (the CLI's own session files), or use claude_agent_sdk.query() for it")
    return options


def _argv(prompt: Prompt, options: agent.ClaudeAgentOptions, cli_path: str) -> list[str]:
    # The flags of the options process_query will run with (can_use_tool routes permission prompts over stdio).
    transport = SubprocessCLITransport(prompt=prompt, options=_configure_can_use_tool(options))
    transport._cli_path = cli_path
    return transport._build_command()


def _env(options: agent.ClaudeAgentOptions) -> dict[str, str]:
    env = {"CLAUDE_CODE_ENTRYPOINT": "sdk-py", **options.env, "CLAUDE_AGENT_SDK_VERSION": agent_version}
    if not any(key.upper() == _SESSION_STATE_ENV for key in (*os.environ, *env)):  # a caller's choice wins
        env[_SESSION_STATE_ENV] = "1"
    if options.enable_file_checkpointing:
        env["CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING"] = "true"
    return env


def _find_cli() -> str:
    """The agent SDK's own search: its bundled CLI first, then PATH and the usual install locations."""
    return SubprocessCLITransport(prompt="", options=agent.ClaudeAgentOptions())._find_cli()


def _messages(prompt: Prompt, options: Any, transport: ScopedTransport) -> AsyncGenerator[Any, None]:
    """The SDK's own generator, handed to the pump as is (it is closed there with ``aclosing``): a wrapping
    generator would cost a frame switch per message. Ours implements the same Transport interface
    (claude-code-sdk's ABC, which the agent SDK's repeats)."""
    generator = InternalClient().process_query(prompt, options, transport=cast(Transport, transport))
    return cast(AsyncGenerator[Any, None], generator)  # an async generator, annotated as an AsyncIterator


def build_flavor() -> Flavor:
    return Flavor(
        name="claude-agent-sdk",
        options_type=agent.ClaudeAgentOptions,
        always_streaming=True,
        result_type=agent.ResultMessage,
        system_type=agent.SystemMessage,
        assistant_type=agent.AssistantMessage,
        tool_use_type=agent.ToolUseBlock,
        not_found_error=agent.CLINotFoundError,
        connection_error=agent.CLIConnectionError,
        process_error=agent.ProcessError,
        invalid_output_errors=(agent.CLIJSONDecodeError, agent._errors.MessageParseError),
        prepare=_prepare,
        build_argv=_argv,
        extra_env=_env,
        find_cli=_find_cli,
        messages=_messages,
        drop_env=("CLAUDECODE",),
        stderr_sink=lambda options: options.stderr,  # the agent SDK's per-line callback
    )
