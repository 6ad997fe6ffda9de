"""Exceptions raised by claude-scope itself (the SDK's own are translated in ``_classify``).

    ClaudeScopeError
     ├── InvalidOutputError       the CLI printed something that is not the stream-json protocol
     │    └── LineTooLongError     one line over QueryLimits.max_line_bytes
     ├── CLIPathError             cli_path / CLAUDE_SCOPE_CLI names nothing executable
     └── SDKReaderError           the SDK's reader task failed on its own (it passes only text on)

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


class SDKReaderError(ClaudeScopeError):
    """The SDK's own reader task failed with an error that was not our transport's (it passes errors on
    as text only); classified as unexpected, with the text it gave."""
