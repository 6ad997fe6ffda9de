"""Which SDK a query speaks through: ``claude-code-sdk`` (always) or ``claude-agent-sdk`` (the ``agent`` extra).

The two packages share the transport seam, the control protocol and the message shapes, but not their
classes: each has its own options, message, block and error types, its own command-line builder and its own
``Query``. A ``Flavor`` bundles those for one package, so the scope, the transport and the classifier work
on either without knowing which. The options object a caller passes picks the flavor; messages come back
as that package's own objects.

``claude_agent_sdk`` is imported only when a ``ClaudeAgentOptions`` is seen (it pulls in ``mcp`` and
``jsonschema``), so code that never uses it never pays for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from claude_code_sdk import (
    AssistantMessage,
    ClaudeCodeOptions,
    CLIConnectionError,
    CLIJSONDecodeError,
    CLINotFoundError,
    ProcessError,
    ResultMessage,
    SystemMessage,
    ToolUseBlock,
)
from claude_code_sdk._errors import MessageParseError
from claude_code_sdk._internal.transport.subprocess_cli import SubprocessCLITransport

if TYPE_CHECKING:
    from ._transport import ScopedTransport

Prompt = str | AsyncIterable[dict[str, Any]]
MessageSource = Callable[[Prompt, Any, "ScopedTransport"], AsyncGenerator[Any, None]]

AGENT_MODULE = "claude_agent_sdk"


@dataclass(frozen=True)
class Flavor:
    """One SDK package's classes and entry points, as the wrapper needs them."""

    name: str
    options_type: type[Any]
    #: the CLI reads stream-json on stdin even for a string prompt (claude-agent-sdk always does).
    always_streaming: bool
    result_type: type[Any]
    system_type: type[Any]
    assistant_type: type[Any]
    tool_use_type: type[Any]
    #: the error classes the transport raises, so the SDK's own code paths see the types it expects.
    not_found_error: type[Exception]
    connection_error: type[Exception]
    process_error: type[Exception]
    #: every class of this SDK that means "the CLI's output was not the protocol".
    invalid_output_errors: tuple[type[Exception], ...]
    #: checks the SDK's own rules for prompt and options (ValueError at once) and returns the options to run.
    prepare: Callable[[Prompt, Any], Any]
    build_argv: Callable[[Prompt, Any, str], list[str]]
    extra_env: Callable[[Any], dict[str, str]]
    find_cli: Callable[[], str]
    messages: MessageSource
    #: variables of our own environment the CLI must not inherit.
    drop_env: tuple[str, ...] = ()
    #: where the options ask for the CLI's stderr lines to go, if anywhere (besides our bounded tail).
    stderr_sink: Callable[[Any], Callable[[str], None] | None] = lambda _options: None

    def exit_error(self, exit_code: int, stderr: str) -> Exception:
        """This SDK's ``ProcessError`` for a CLI that exited with ``exit_code``."""
        make: Any = self.process_error
        error: Exception = make("Claude Code CLI exited with an error", exit_code=exit_code, stderr=stderr)
        return error


def _code_prepare(prompt: Prompt, options: ClaudeCodeOptions) -> ClaudeCodeOptions:
    from ._sdk import effective_options

    return effective_options(prompt, options)


def _code_argv(prompt: Prompt, options: ClaudeCodeOptions, cli_path: str) -> list[str]:
    return SubprocessCLITransport(prompt=prompt, options=options, cli_path=cli_path)._build_command()


def _code_env(options: ClaudeCodeOptions) -> dict[str, str]:
    return {**options.env, "CLAUDE_CODE_ENTRYPOINT": "sdk-py"}


def _code_stderr_sink(options: ClaudeCodeOptions) -> Callable[[str], None] | None:
    """claude-code-sdk sends stderr to ``debug_stderr`` (a file) when ``extra_args`` has debug-to-stderr."""
    target = options.debug_stderr
    if "debug-to-stderr" not in options.extra_args or not target:
        return None

    def write(line: str) -> None:
        target.write(line + "\n")
        target.flush()

    return write


def _code_find_cli() -> str:
    return SubprocessCLITransport(prompt="", options=ClaudeCodeOptions())._cli_path


def _code_messages(prompt: Prompt, options: Any, transport: ScopedTransport) -> AsyncGenerator[Any, None]:
    from ._sdk import sdk_messages  # the SDK driver imports the transport, which imports this module

    return sdk_messages(prompt, options, transport)


CODE = Flavor(
    name="claude-code-sdk",
    options_type=ClaudeCodeOptions,
    always_streaming=False,
    result_type=ResultMessage,
    system_type=SystemMessage,
    assistant_type=AssistantMessage,
    tool_use_type=ToolUseBlock,
    not_found_error=CLINotFoundError,
    connection_error=CLIConnectionError,
    process_error=ProcessError,
    invalid_output_errors=(CLIJSONDecodeError, MessageParseError),
    prepare=_code_prepare,
    build_argv=_code_argv,
    extra_env=_code_env,
    find_cli=_code_find_cli,
    messages=_code_messages,
    stderr_sink=_code_stderr_sink,
)


@cache
def agent_flavor() -> Flavor:
    """The claude-agent-sdk flavor. Raises ImportError when the ``agent`` extra is not installed."""
    from ._agent import build_flavor

    return build_flavor()


def flavor_of(options: object) -> Flavor | None:
    """The flavor whose options class ``options`` is, or None (a programming error for the caller to raise)."""
    if isinstance(options, ClaudeCodeOptions):
        return CODE
    module = type(options).__module__
    if module == AGENT_MODULE or module.startswith(AGENT_MODULE + "."):
        flavor = agent_flavor()
        if isinstance(options, flavor.options_type):
            return flavor
    return None


def loaded_flavors() -> tuple[Flavor, ...]:
    """The flavors whose package is imported: an error of a package never imported cannot occur."""
    if AGENT_MODULE in sys.modules:
        return (CODE, agent_flavor())
    return (CODE,)


def base_env(flavor: Flavor, options: Any, marker_env: str, query_id: str) -> dict[str, str]:
    """The CLI's environment: ours, then the flavor's (options.env included), then the tree marker."""
    env = {key: value for key, value in os.environ.items() if key not in flavor.drop_env}
    env.update(flavor.extra_env(options))
    env[marker_env] = query_id
    cwd = getattr(options, "cwd", None)
    if cwd:
        env["PWD"] = str(cwd)
    return env
