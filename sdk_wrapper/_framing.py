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
        self._buffer = bytearray()
        self._lines_seen = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += chunk
        if b"\n" not in chunk:
            self._check(len(buffer))
            return []
        parts = buffer.split(b"\n")
        self._buffer = bytearray(parts.pop())
        for part in parts:
            self._lines_seen += 1
            self._check(len(part), part)
        self._check(len(self._buffer))
        return [bytes(p) for p in parts]

    def tail(self) -> bytes:
        """What is left after EOF: a last line without a newline (the CLI always ends lines, but be exact)."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        return rest

    @property
    def line_number(self) -> int:
        return self._lines_seen + 1

    def _check(self, size: int, line: bytes | bytearray | None = None) -> None:
        if size > self.max_line_bytes:
            sample = bytes((line if line is not None else self._buffer)[:120])
            self._buffer = bytearray()
            raise LineTooLongError(
                limit=self.max_line_bytes, excerpt=sample.decode(errors="replace"), line_number=self._lines_seen + 1
            )
