"""The claude-code-sdk backend: every use of that package's internals is here, and listed in ``private_uses``.

Why not call the SDK's ``InternalClient.process_query``: it leaves the ``Query``'s two memory streams
unclosed (a ResourceWarning pair per query, from the garbage collector) and nests a second async generator
that nobody closes. ``messages`` runs the same steps in one generator that the pump iterates and closes in
its own task, and closes every stream in its ``finally``; the SDK's ``Query`` and ``parse_message`` still do
the protocol work. Its command line is the SDK's own ``_build_command``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any, cast

import anyio
from claude_code_sdk import (
    AssistantMessage,
    ClaudeCodeOptions,
    CLIConnectionError,
    CLIJSONDecodeError,
    CLINotFoundError,
    Message,
    ProcessError,
    ResultMessage,
    SystemMessage,
    ToolUseBlock,
    Transport,
)
from claude_code_sdk._errors import MessageParseError
from claude_code_sdk._internal.client import InternalClient
from claude_code_sdk._internal.message_parser import parse_message
from claude_code_sdk._internal.query import Query
from claude_code_sdk._internal.transport.subprocess_cli import SubprocessCLITransport

from .._backends import BUDGET_FLAG, Backend, Channel, Prompt, budget_text, budget_value
from .._errors import SDKReaderError, UsageError


class CodeBackend(Backend):
    name = "claude-code-sdk"
    checked_version = "0.0.25"
    always_streaming = False

    options_type = ClaudeCodeOptions
    result_type = ResultMessage
    system_type = SystemMessage
    assistant_type = AssistantMessage
    tool_use_type = ToolUseBlock
    not_found_error = CLINotFoundError
    connection_error = CLIConnectionError
    process_error = ProcessError
    invalid_output_errors = (CLIJSONDecodeError, MessageParseError)

    def private_uses(self) -> tuple[str, ...]:
        return (
            "claude_code_sdk._errors:MessageParseError",
            "claude_code_sdk._internal.client:InternalClient._convert_hooks_to_internal_format",
            "claude_code_sdk._internal.message_parser:parse_message",
            "claude_code_sdk._internal.query:Query",
            "claude_code_sdk._internal.query:Query._tg",
            "claude_code_sdk._internal.query:Query._message_send",
            "claude_code_sdk._internal.query:Query._message_receive",
            "claude_code_sdk._internal.transport.subprocess_cli:SubprocessCLITransport._build_command",
            "claude_code_sdk._internal.transport.subprocess_cli:SubprocessCLITransport._find_cli",
        )

    def prepare(self, prompt: Prompt, options: ClaudeCodeOptions) -> ClaudeCodeOptions:
        """The SDK's rules for ``can_use_tool``; a misuse is a programming error, raised at once."""
        if options.can_use_tool:
            if isinstance(prompt, str):
                raise UsageError("can_use_tool requires a streaming prompt (an AsyncIterable), as in the SDK")
            if options.permission_prompt_tool_name:
                raise UsageError("can_use_tool and permission_prompt_tool_name are mutually exclusive")
            return replace(options, permission_prompt_tool_name="stdio")
        return options

    def with_budget(self, options: ClaudeCodeOptions, usd: float) -> ClaudeCodeOptions:
        """claude-code-sdk has no option for it: the flag goes through ``extra_args``."""
        given = budget_value(options.extra_args.get(BUDGET_FLAG))
        if given is not None and given <= usd:
            return options
        return replace(options, extra_args={**options.extra_args, BUDGET_FLAG: budget_text(usd)})

    def build_argv(self, prompt: Prompt, options: ClaudeCodeOptions, cli_path: str) -> list[str]:
        return SubprocessCLITransport(prompt=prompt, options=options, cli_path=cli_path)._build_command()

    def extra_env(self, options: ClaudeCodeOptions) -> dict[str, str]:
        return {**options.env, "CLAUDE_CODE_ENTRYPOINT": "sdk-py"}

    def find_cli(self) -> str:
        return SubprocessCLITransport(prompt="", options=ClaudeCodeOptions(), cli_path="claude")._find_cli()

    def stderr_sink(self, options: ClaudeCodeOptions) -> Callable[[str], None] | None:
        """claude-code-sdk sends stderr to ``debug_stderr`` (a file) when ``extra_args`` has debug-to-stderr."""
        target = options.debug_stderr
        if "debug-to-stderr" not in options.extra_args or not target:
            return None

        def write(line: str) -> None:
            target.write(line + "\n")
            target.flush()

        return write

    def messages(self, prompt: Prompt, options: Any, channel: Channel) -> AsyncGenerator[Message, None]:
        return _messages(prompt, options, channel)


async def _next(query: Query, channel: Channel) -> dict[str, Any] | None:
    """``Query.receive_messages`` without a checkpoint per buffered message (the SDK's reader task fills a
    100-message buffer; taking what is there at once lets messages move in batches). None at the end."""
    stream = query._message_receive
    try:
        try:
            data = stream.receive_nowait()
        except anyio.WouldBlock:
            data = await stream.receive()
    except anyio.EndOfStream:
        return None
    kind = data.get("type")
    if kind == "end":
        return None
    if kind == "error":  # the SDK's reader passes any error on as text; the channel kept the typed one
        raise channel.error or SDKReaderError(str(data.get("error", "unknown error")))
    return data


async def _messages(prompt: Prompt, options: ClaudeCodeOptions, channel: Channel) -> AsyncGenerator[Message, None]:
    """Yield parsed messages; on exit (any way) close the Query and its streams (the pump closes the transport).

    A string prompt needs no control protocol (the CLI's stdin is closed: it can send no request that
    could be answered), so its lines are parsed straight from the transport, one task hop fewer per
    message than through ``Query``'s reader task. A streaming prompt goes through ``Query``.
    """
    await channel.connect()
    if isinstance(prompt, str):
        async for batch in channel.message_batches():  # a read at a time: one await per read, not per line
            for line in batch:
                if not str(line.get("type", "")).startswith("control_"):
                    yield parse_message(line)
        return
    sdk_servers = {
        name: config["instance"]  # type: ignore[typeddict-item]
        for name, config in (options.mcp_servers.items() if isinstance(options.mcp_servers, dict) else ())
        if isinstance(config, dict) and config.get("type") == "sdk"
    }
    query = Query(
        transport=cast(Transport, channel),
        is_streaming_mode=True,
        can_use_tool=options.can_use_tool,
        hooks=InternalClient()._convert_hooks_to_internal_format(options.hooks) if options.hooks else None,
        sdk_mcp_servers=sdk_servers,
    )
    try:
        await query.start()
        await query.initialize()
        if query._tg is not None:
            query._tg.start_soon(query.stream_input, prompt)
        while (message := await _next(query, channel)) is not None:
            yield parse_message(message)
    finally:
        try:
            await query.close()
        finally:
            query._message_send.close()
            query._message_receive.close()


BACKEND = CodeBackend()
