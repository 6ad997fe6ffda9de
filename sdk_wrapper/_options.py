"""Checking a query's arguments and finding the CLI, before any process starts.

Wrong argument types are programming errors and raise ``TypeError`` at once. The CLI is found from, in
order: the ``cli_path`` argument, ``options.cli_path`` (claude-agent-sdk options have it), the
``CLAUDE_SCOPE_CLI`` environment variable (read at call time), then the SDK's own search (PATH, then its
list of usual install locations).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

from claude_code_sdk import ClaudeCodeOptions
from claude_code_sdk._internal.transport.subprocess_cli import SubprocessCLITransport

from ._errors import CLIPathError
from ._outcome import QueryLimits

CLI_ENV = "CLAUDE_SCOPE_CLI"


def check_arguments(prompt: object, options: object, limits: object) -> tuple[ClaudeCodeOptions, QueryLimits]:
    if not isinstance(prompt, str | AsyncIterable):
        raise TypeError(f"prompt must be a str or an AsyncIterable of dicts, got {type(prompt).__name__}")
    if options is None:
        options = ClaudeCodeOptions()
    if not isinstance(options, ClaudeCodeOptions):
        raise TypeError(f"options must be claude_code_sdk.ClaudeCodeOptions or None, got {type(options).__name__}")
    if limits is None:
        limits = QueryLimits()
    if not isinstance(limits, QueryLimits):
        raise TypeError(f"limits must be QueryLimits or None, got {type(limits).__name__}")
    return options, limits


def resolve_cli(cli_path: str | os.PathLike[str] | None, options: Any) -> str:
    """The CLI to run. Raises CLIPathError (explicit path is wrong) or the SDK's CLINotFoundError."""
    for value, source in ((cli_path, "cli_path"), (getattr(options, "cli_path", None), "options.cli_path"),
                          (os.environ.get(CLI_ENV) or None, CLI_ENV)):
        if value is not None:
            path = Path(value)
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise CLIPathError(os.fspath(value), source)
            return os.fspath(path)
    # The SDK's own discovery, as a plain query() would do it.
    return SubprocessCLITransport(prompt="", options=ClaudeCodeOptions())._cli_path
