"""Checking a query's arguments and finding the CLI, before any process starts.

Wrong argument types are programming errors and raise ``TypeError`` at once; a misuse the SDK itself
forbids (``can_use_tool`` with a string prompt, say) raises its ``ValueError`` at once too. The CLI is found
from, in order: the ``cli_path`` argument, ``options.cli_path`` (claude-agent-sdk options have it), the
``CLAUDE_SCOPE_CLI`` environment variable (read at call time), then the options' SDK's own search
(claude-code-sdk: PATH, then its usual install locations; claude-agent-sdk: its bundled CLI first).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claude_code_sdk import ClaudeCodeOptions

from ._backends import Backend, Prompt, backend_for, code_backend
from ._containment._caps import CapsError
from ._containment._caps import support as cap_support
from ._containment._cgroup import host_cgroup
from ._errors import ArgumentTypeError, CLIPathError
from ._outcome import QueryLimits
from ._retry import RetryPolicy
from ._webhook import ResultWebhook

CLI_ENV = "CLAUDE_SCOPE_CLI"


@dataclass(frozen=True)
class Checked:
    """A query's arguments after ``check_arguments``: the options to run and the backend they belong to."""

    prompt: Prompt
    options: Any
    limits: QueryLimits
    backend: Backend


def check_arguments(prompt: object, options: object, limits: object, *, webhook: object = None,
                    retry: object = None) -> Checked:
    """Raise TypeError for an argument of the wrong type (ValueError for a misuse the SDK forbids)."""
    if not isinstance(prompt, str | AsyncIterable):
        raise ArgumentTypeError(f"prompt must be a str or an AsyncIterable of dicts, got {type(prompt).__name__}")
    if options is None:
        options = ClaudeCodeOptions()
    backend = backend_for(options)
    if backend is None:
        raise ArgumentTypeError("options must be claude_code_sdk.ClaudeCodeOptions, claude_agent_sdk."
                                f"ClaudeAgentOptions or None, got {type(options).__name__}")
    if limits is None:
        limits = QueryLimits()
    for name, value, kind in (("limits", limits, QueryLimits), ("webhook", webhook, ResultWebhook),
                              ("retry", retry, RetryPolicy)):
        if value is not None and not isinstance(value, kind):
            raise ArgumentTypeError(f"{name} must be {kind.__name__} or None, got {type(value).__name__}")
    assert isinstance(limits, QueryLimits)
    if limits.memory_mb is not None or limits.max_pids is not None:
        check_caps(limits.memory_mb, limits.max_pids)  # CapsError now, before any process, not a silent no-cap
    options = backend.prepare(prompt, options)
    if limits.max_cost_usd is not None:  # the CLI stops itself there, mid-query, not only judged after
        options = backend.with_budget(options, limits.max_cost_usd)
    return Checked(prompt, options, limits, backend)


def check_caps(memory_mb: int | None, max_pids: int | None) -> None:
    """``CapsError`` unless this host can enforce the caps asked for (see ``_caps``)."""
    host = host_cgroup().host
    found = cap_support(None if host is None else host.path)
    for controller, asked in (("memory", memory_mb), ("pids", max_pids)):
        if asked is not None and found[controller].startswith("not enforceable"):
            raise CapsError(f"QueryLimits.{'memory_mb' if controller == 'memory' else 'max_pids'}={asked} cannot be "
                            f"enforced here: {found[controller]} (claude-scope doctor)")


def resolve_cli(cli_path: str | os.PathLike[str] | None, options: Any, backend: Backend | None = None) -> str:
    """The CLI to run. Raises CLIPathError (explicit path is wrong) or the SDK's CLINotFoundError."""
    for value, source in ((cli_path, "cli_path"), (getattr(options, "cli_path", None), "options.cli_path"),
                          (os.environ.get(CLI_ENV) or None, CLI_ENV)):
        if value is not None:
            path = Path(value)
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise CLIPathError(os.fspath(value), source)
            return os.path.abspath(path)  # checked here; the CLI starts in options.cwd, where a relative path breaks
    # The SDK's own discovery, as a plain query() would do it.
    return (backend or code_backend()).find_cli()
