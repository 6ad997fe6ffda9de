"""Keeping secrets out of logs, errors and journals.

Redaction is by the shape of a secret (Anthropic keys, bearer tokens, ``*_KEY=``/``*_TOKEN=`` assignments),
applied to every text we store or log that came from outside: stderr tails, exception messages, excerpts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

_PATTERNS = (
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"sk-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]{4,}"),
)
REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """Replace anything shaped like a secret with ``[REDACTED]``."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


def redact_data(value: Any) -> Any:
    """A copy of JSON-like data (dicts, lists, strings) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


def redact_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """structlog processor: redact every string value of the event (add it to your own chain, too)."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


def redact_tail(data: bytes, limit: int, cut: bool) -> str:
    """The last ``limit`` characters of a stream's text, redacted *before* it is cut.

    Cutting first could split a secret and leave its random part unrecognised; so the text is redacted on
    whole lines, then cut, and a line cut at its start (``cut``: the buffer lost its head; or the cut here)
    is dropped rather than shown in part, unless it is the only line.
    """
    text = data.decode(errors="replace")
    if cut and "\n" in text:
        text = text.split("\n", 1)[1]
    text = redact(text)
    if len(text) > limit:
        text = text[-limit:]
        if "\n" in text[:-1]:
            text = text.split("\n", 1)[1]
    return text
