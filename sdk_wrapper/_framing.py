"""Splitting the CLI's stdout into lines without losing or altering a byte.

The raw SDK strips and re-joins *chunks* (so a text with runs of spaces across a chunk boundary is
corrupted) and buffers without bound. Here a line is everything up to ``\\n``; nothing inside it is touched,
and a line longer than the limit is an error as soon as the limit is passed, not after it is all in memory.
"""

from __future__ import annotations

from ._errors import LineTooLongError


class LineFramer:
    """Feed chunks, get complete lines (without the newline). Bounded by ``max_line_bytes``."""

    __slots__ = ("_buffer", "_lines_seen", "max_line_bytes")

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self._buffer = b""
        self._lines_seen = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        if b"\n" not in chunk:
            self._buffer += chunk  # quadratic only for one line spread over many chunks, and bounded
            self._check(len(self._buffer))
            return []
        parts = (self._buffer + chunk).split(b"\n") if self._buffer else chunk.split(b"\n")
        self._buffer = parts.pop()
        for part in parts:
            self._lines_seen += 1
            if len(part) > self.max_line_bytes:
                self._check(len(part), part)
        self._check(len(self._buffer))
        return parts

    def tail(self) -> bytes:
        """What is left after EOF: a last line without a newline (the CLI always ends lines, but be exact)."""
        rest, self._buffer = self._buffer, b""
        return rest

    @property
    def pending(self) -> bool:
        """Whether part of a line is buffered, waiting for its newline."""
        return bool(self._buffer)

    @property
    def line_number(self) -> int:
        return self._lines_seen + 1

    def _check(self, size: int, line: bytes | None = None) -> None:
        if size > self.max_line_bytes:
            sample = (line if line is not None else self._buffer)[:120]
            self._buffer = b""
            raise LineTooLongError(
                limit=self.max_line_bytes, excerpt=sample.decode(errors="replace"), line_number=self._lines_seen + 1
            )
