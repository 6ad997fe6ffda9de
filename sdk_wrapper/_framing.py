"""Splitting the CLI's stdout into lines without losing or altering a byte.

The raw SDK strips and re-joins *chunks* (so a text with runs of spaces across a chunk boundary is
corrupted) and buffers without bound. Here a line is everything up to ``\\n``; nothing inside it is touched,
and a line longer than the limit is an error as soon as the limit is passed, not after it is all in memory.
"""

from __future__ import annotations

from ._errors import LineTooLongError
from ._redact import redact


class LineFramer:
    """Feed chunks, get complete lines (without the newline). Bounded by ``max_line_bytes``.

    A line over the bound is an error, but the lines before it in the same chunk are still returned
    (they are valid protocol): ``feed`` keeps the error and ``raise_pending`` raises it after the caller
    has handled them. A part of a line that is already over the bound raises at once.
    """

    __slots__ = ("_buffer", "_lines_seen", "_pending", "max_line_bytes")

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self._buffer = b""
        self._lines_seen = 0
        self._pending: LineTooLongError | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        self.raise_pending()
        if b"\n" not in chunk:
            self._buffer += chunk  # quadratic only for one line spread over many chunks, and bounded
            self._check_buffer()
            return []
        parts = (self._buffer + chunk).split(b"\n") if self._buffer else chunk.split(b"\n")
        self._buffer = parts.pop()
        limit = self.max_line_bytes
        for index, part in enumerate(parts):
            if len(part) > limit:
                self._lines_seen += index + 1
                self._pending, self._buffer = self._too_long(part, self._lines_seen), b""
                return parts[:index]
        self._lines_seen += len(parts)
        self._check_buffer()
        return parts

    def raise_pending(self) -> None:
        """Raise the over-long line found by the last ``feed``, if any (once its earlier lines are handled)."""
        if self._pending is not None:
            error, self._pending = self._pending, None
            raise error

    def tail(self) -> bytes:
        """What is left after EOF: a last line without a newline (the CLI always ends lines, but be exact)."""
        self.raise_pending()
        rest, self._buffer = self._buffer, b""
        return rest

    @property
    def pending(self) -> bool:
        """Whether part of a line is buffered, waiting for its newline."""
        return bool(self._buffer)

    @property
    def line_number(self) -> int:
        """The number (from 1) of the next line to complete."""
        return self._lines_seen + 1

    def _check_buffer(self) -> None:
        if len(self._buffer) > self.max_line_bytes:
            error, self._buffer = self._too_long(self._buffer, self._lines_seen + 1), b""
            raise error

    def _too_long(self, line: bytes, line_number: int) -> LineTooLongError:
        # The excerpt goes into errors and logs: redacted like every other piece of CLI output.
        excerpt = redact(line[:120].decode(errors="replace"))
        return LineTooLongError(limit=self.max_line_bytes, excerpt=excerpt, line_number=line_number)
