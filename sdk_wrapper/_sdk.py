"""Driving the SDK's control-protocol ``Query`` over our transport, as ``InternalClient.process_query`` does.

Why not call ``process_query``: it leaves the ``Query``'s two memory streams unclosed (a ResourceWarning
pair per query, from the garbage collector) and nests a second async generator that nobody closes. Here
the same steps run in one generator that the pump iterates and closes in its own task, and every stream
is closed in its ``finally``. The SDK's ``Query`` and ``parse_message`` still do the protocol work.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import replace
from typing import Any

from claude_code_sdk import ClaudeCodeOptions, Message
from claude_code_sdk._internal.client import InternalClient
from claude_code_sdk._internal.message_parser import parse_message
from claude_code_sdk._internal.query import Query

from ._transport import ScopedTransport


def effective_options(prompt: str | AsyncIterable[dict[str, Any]], options: ClaudeCodeOptions) -> ClaudeCodeOptions:
    """The SDK's rules for ``can_use_tool``; a misuse is a programming error, raised at once."""
    if options.can_use_tool:
        if isinstance(prompt, str):
            raise ValueError("can_use_tool requires a streaming prompt (an AsyncIterable), as in the SDK")
        if options.permission_prompt_tool_name:
            raise ValueError("can_use_tool and permission_prompt_tool_name are mutually exclusive")
        return replace(options, permission_prompt_tool_name="stdio")
    return options


async def sdk_messages(
    prompt: str | AsyncIterable[dict[str, Any]], options: ClaudeCodeOptions, transport: ScopedTransport
) -> AsyncGenerator[Message, None]:
    """Yield parsed messages; on exit (any way) close the Query, its streams and the transport."""
    await transport.connect()
    sdk_servers = {
        name: config["instance"]  # type: ignore[typeddict-item]
        for name, config in (options.mcp_servers.items() if isinstance(options.mcp_servers, dict) else ())
        if isinstance(config, dict) and config.get("type") == "sdk"
    }
    query = Query(
        transport=transport,
        is_streaming_mode=not isinstance(prompt, str),
        can_use_tool=options.can_use_tool,
        hooks=InternalClient()._convert_hooks_to_internal_format(options.hooks) if options.hooks else None,
        sdk_mcp_servers=sdk_servers,
    )
    try:
        await query.start()
        if not isinstance(prompt, str):
            await query.initialize()
            if query._tg is not None:
                query._tg.start_soon(query.stream_input, prompt)
        async with contextlib.aclosing(query.receive_messages()) as raw_messages:  # type: ignore[type-var]
            async for data in raw_messages:
                yield parse_message(data)
    finally:
        try:
            await query.close()
        finally:
            query._message_send.close()
            query._message_receive.close()
