"""The interface an SDK backend implements, and how the backend of a query is chosen.

Two packages can drive the CLI: ``claude-code-sdk`` (always installed) and ``claude-agent-sdk`` (the
``agent`` extra). They share the transport seam, the control protocol and the message shapes, but not their
classes: each has its own options, message, block and error types, its own command-line builder and its own
``Query``. A ``Backend`` is everything the wrapper needs from one package, so the scope, the transport and
the classifier work on either without knowing which; the options object a caller passes picks it, and
messages come back as that package's own objects.

As anyio loads its event-loop backends, a backend module is imported by name (``_code``, ``_agent``) the
first time its options are seen: ``claude_agent_sdk`` pulls in ``mcp`` and ``jsonschema``, so code that
never uses it never pays for it. Each backend module holds *all* of its SDK's private names, lists them in
``private_uses`` and names the SDK version they were checked against (``tests/sdk_wrapper/test_backends.py``
fails loudly when an installed SDK moves one). Imports run one way: backends import this module, never the
scope or the transport.
"""

from __future__ import annotations

import abc
import importlib
import importlib.metadata
import os
import sys
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from functools import cache
from typing import Any, ClassVar, Protocol

Prompt = str | AsyncIterable[dict[str, Any]]


#: the CLI flag that makes it stop itself once a query has spent this many USD
BUDGET_FLAG = "max-budget-usd"


def budget_text(usd: float) -> str:
    """A budget as the CLI's flag takes it (and echoes it in its error): ``0.5``, ``1.5123``."""
    return f"{usd:.10g}"


def budget_value(text: str | None) -> float | None:
    """A ``--max-budget-usd`` value a caller already put in ``extra_args``, or None if unset or unreadable."""
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


class Channel(Protocol):
    """What a backend sees of our transport: the SDK's ``Transport`` seam (handed to the SDK's own
    ``Query``) plus the typed error it kept, because the SDK's reader flattens any transport exception
    into a message text."""

    error: BaseException | None

    async def connect(self) -> None: ...

    def read_messages(self) -> AsyncIterator[dict[str, Any]]: ...

    def message_batches(self) -> AsyncIterator[list[dict[str, Any]]]: ...

#: (the SDK's import name, our backend module): the order is the order options are matched in.
_BACKENDS = (("claude_code_sdk", "sdk_wrapper._backends._code"), ("claude_agent_sdk", "sdk_wrapper._backends._agent"))


class Backend(abc.ABC):
    """One SDK package's classes and entry points, as the wrapper needs them."""

    #: the package's distribution name (also the ``sdk`` field of the query's log events)
    name: ClassVar[str]
    #: the installed version its ``private_uses`` were checked against
    checked_version: ClassVar[str]
    #: the CLI reads stream-json on stdin even for a string prompt (claude-agent-sdk always does).
    always_streaming: ClassVar[bool]
    #: variables of our own environment the CLI must not inherit.
    drop_env: ClassVar[tuple[str, ...]] = ()

    options_type: type[Any]
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

    @abc.abstractmethod
    def prepare(self, prompt: Prompt, options: Any) -> Any:
        """Check the SDK's own rules for prompt and options (ValueError at once); return the options to run."""

    @abc.abstractmethod
    def with_budget(self, options: Any, usd: float) -> Any:
        """The options with the CLI told to stop itself once the query has spent ``usd`` (``--max-budget-usd``;
        it then ends with an ``error_max_budget_usd`` result). A lower cap the caller set stays."""

    @abc.abstractmethod
    def build_argv(self, prompt: Prompt, options: Any, cli_path: str) -> list[str]:
        """The CLI's command line, built by the SDK itself so options map to flags exactly as it maps them."""

    @abc.abstractmethod
    def extra_env(self, options: Any) -> dict[str, str]:
        """What the SDK adds to the CLI's environment (``options.env`` included)."""

    @abc.abstractmethod
    def find_cli(self) -> str:
        """The SDK's own search for the CLI; raises its ``CLINotFoundError``."""

    @abc.abstractmethod
    def messages(self, prompt: Prompt, options: Any, channel: Channel) -> AsyncGenerator[Any, None]:
        """The SDK's parsed messages over ``channel``; the caller iterates and closes it in one task."""

    @abc.abstractmethod
    def private_uses(self) -> tuple[str, ...]:
        """Every private name of the SDK this backend touches, as ``module:attribute.path``."""

    def stderr_sink(self, options: Any) -> Callable[[str], None] | None:
        """Where the options ask for the CLI's stderr lines to go, if anywhere (besides our bounded tail)."""
        return None

    def exit_error(self, exit_code: int, stderr: str) -> Exception:
        """This SDK's ``ProcessError`` for a CLI that exited with ``exit_code``."""
        make: Any = self.process_error
        error: Exception = make("Claude Code CLI exited with an error", exit_code=exit_code, stderr=stderr)
        return error

    def installed_version(self) -> str:
        return importlib.metadata.version(self.name)

    def env(self, options: Any, marker_env: str, query_id: str) -> dict[str, str]:
        """The CLI's environment: ours, then the SDK's (options.env included), then the tree marker."""
        env = {key: value for key, value in os.environ.items() if key not in self.drop_env}
        env.update(self.extra_env(options))
        env[marker_env] = query_id
        cwd = getattr(options, "cwd", None)
        if cwd:
            env["PWD"] = str(cwd)
        return env


@cache
def _load(module: str) -> Backend:
    backend: Backend = importlib.import_module(module).BACKEND
    return backend


def code_backend() -> Backend:
    """The claude-code-sdk backend (the default for ``options=None``)."""
    return _load(_BACKENDS[0][1])


def agent_backend() -> Backend:
    """The claude-agent-sdk backend. Raises ImportError when the ``agent`` extra is not installed."""
    return _load(_BACKENDS[1][1])


def backend_for(options: object) -> Backend | None:
    """The backend whose options class ``options`` is, or None (a programming error for the caller to raise).

    Only packages already imported are asked: options of a package never imported cannot exist.
    """
    for package, module in _BACKENDS:
        if package in sys.modules:
            backend = _load(module)
            if isinstance(options, backend.options_type):
                return backend
    return None


def sdk_of(options: object) -> str | None:
    """The SDK an options object belongs to (``"claude-code-sdk"``, ``"claude-agent-sdk"``), or None when
    ``run_query`` would refuse it."""
    backend = backend_for(options)
    return None if backend is None else backend.name


def loaded_backends() -> tuple[Backend, ...]:
    """The backends whose package is imported: an error of a package never imported cannot occur."""
    return tuple(_load(module) for package, module in _BACKENDS if package in sys.modules)


def all_backends() -> tuple[Backend, ...]:
    """Every backend whose SDK is installed (for checks such as ``claude-scope doctor``)."""
    found = []
    for _package, module in _BACKENDS:
        try:
            found.append(_load(module))
        except ImportError:
            continue  # not installed: the optional extra
    return tuple(found)
