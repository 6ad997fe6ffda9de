"""Every exception claude-scope raises derives from ``ClaudeScopeError`` (the SDK's own are translated in
``_classify`` into a ``Failure``, never raised). One that stands for a builtin error keeps that base too, so
``except ValueError`` around a call still works. Each package defines its own (layering runs one way:
``orchestrator`` builds on ``sdk_wrapper``); the whole tree, drawn once:

    ClaudeScopeError                              sdk_wrapper
     ├── InvalidOutputError                       the CLI printed something that is not stream-json
     │    └── LineTooLongError                    one line over QueryLimits.max_line_bytes
     ├── CLIPathError                             cli_path / CLAUDE_SCOPE_CLI names nothing executable
     ├── SDKReaderError                           the SDK's reader task failed on its own (text only)
     ├── UsageError (ValueError)                  an argument or setting out of range, a misuse the SDK forbids
     │    └── CapsError                           caps (memory_mb, max_pids) this host cannot enforce
     ├── ArgumentTypeError (TypeError)            an argument of the wrong type
     ├── StateError (RuntimeError)                a QueryStream used out of order (entered twice, read early)
     ├── LegacyModeError (RuntimeError)           CLAUDE_SCOPE_MODE=legacy but the V3 module cannot run here
     ├── ScenarioError (ValueError)               sdk_wrapper.testing: a stand-in scenario that cannot run
     ├── PipelineError (ValueError)               orchestrator: a pipeline that cannot run (phase and key named)
     │    └── PlanError                           a planner's plan that cannot join the run (plan_invalid)
     ├── PromptRenderError (RuntimeError)         orchestrator: a prompt template that could not be rendered
     ├── GitCommandError (RuntimeError)          orchestrator: a git command of an isolated phase failed
     ├── RunNotFoundError (KeyError)              orchestrator: no such run (journal, or Temporal server)
     ├── RunExistsError (ValueError)              orchestrator: a run id that is already taken
     ├── PruneError (ValueError)                  orchestrator: a prune that cannot be done as asked
     ├── JournalError (RuntimeError)              orchestrator: the journal cannot be used (its path named)
     │    ├── JournalCorruptError                 not a usable SQLite database (left untouched)
     │    ├── JournalLockedError                  locked longer than the busy timeout
     │    ├── JournalFullError                    no space left on the device that holds it
     │    └── RunBusyError                        the run is running in another live orchestrator
     └── ServerError (RuntimeError)               orchestrator.temporal: the dev server would not start

Each carries its context as attributes, so callers and the classifier read fields, not messages.
"""

from __future__ import annotations


class ClaudeScopeError(Exception):
    """Base of this package's exceptions."""


class InvalidOutputError(ClaudeScopeError):
    """A line from the CLI that is not valid stream-json. ``excerpt`` is the first bytes of it."""

    def __init__(self, message: str, *, excerpt: str, line_number: int) -> None:
        super().__init__(f"{message} (line {line_number}): {excerpt!r}")
        self.excerpt = excerpt
        self.line_number = line_number


class LineTooLongError(InvalidOutputError):
    """A single line longer than the configured bound; kept out of memory rather than buffered."""

    def __init__(self, *, limit: int, excerpt: str, line_number: int) -> None:
        super().__init__(f"line longer than {limit} bytes", excerpt=excerpt, line_number=line_number)
        self.limit = limit


class CLIPathError(ClaudeScopeError):
    """An explicitly configured CLI path that does not exist or is not executable."""

    def __init__(self, path: str, source: str) -> None:
        super().__init__(f"{source} names {path!r}, which is not an executable file")
        self.path = path
        self.source = source


class UsageError(ClaudeScopeError, ValueError):
    """An argument or setting out of range (a negative timeout, an unknown mode), or a use of an SDK option
    that the SDK itself forbids; raised at once, before any process starts."""


class ArgumentTypeError(ClaudeScopeError, TypeError):
    """An argument of the wrong type (options that belong to no SDK, a prompt that is neither text nor a
    stream of messages)."""


class StateError(ClaudeScopeError, RuntimeError):
    """An object used out of order: a ``QueryStream`` entered twice, or its outcome read before its block
    was left."""


class SDKReaderError(ClaudeScopeError):
    """The SDK's own reader task failed with an error that was not our transport's (it passes errors on
    as text only); classified as unexpected, with the text it gave."""
