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

import anyio
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


async def _next(query: Query) -> dict[str, Any] | None:
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
    if kind == "error":  # the SDK's reader flattens every transport error to this; the transport kept the type
        raise Exception(data.get("error", "Unknown error"))
    return data


async def sdk_messages(
    prompt: str | AsyncIterable[dict[str, Any]], options: ClaudeCodeOptions, transport: ScopedTransport
) -> AsyncGenerator[Message, None]:
    """Yield parsed messages; on exit (any way) close the Query and its streams (the pump closes the transport).

    A string prompt needs no control protocol (the CLI's stdin is closed: it can send no request that
    could be answered), so its lines are parsed straight from the transport, one task hop fewer per
    message than through ``Query``'s reader task. A streaming prompt goes through ``Query``.
    """
    await transport.connect()
    if isinstance(prompt, str):
        async with contextlib.aclosing(transport.read_messages()) as lines:
            async for line in lines:
                if not str(line.get("type", "")).startswith("control_"):
                    yield parse_message(line)
        return
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
        while (message := await _next(query)) is not None:
            yield parse_message(message)
    finally:
        try:
            await query.close()
        finally:
            query._message_send.close()
            query._message_receive.close()
