"""V3's stability log and its summary, kept in V3's formats but fed with real failures.

V3 appended one JSON line per masked "TaskGroup" error to ``<working_dir>/.cc_automator/stability_logs/
taskgroup_errors.jsonl`` and its ``get_taskgroup_error_summary()`` (and the repo's stability tools) read
that file. The drop-in keeps the file and the line format, so those tools keep working, but each line is
now a failure that really happened and was reported as one (``specific_type`` is its ``FailureKind``),
never one that was hidden behind a made-up success.

Line format (V3's): ``timestamp``, ``iso_timestamp``, ``error_analysis`` (``error_class``, ``timestamp``,
``specific_type``, ``severity`` in low/medium/high, ``likely_cause``, ``operational_impact``,
``recovery_action``), ``full_error_text`` (500 characters at most, secrets redacted), ``session_info``
(``working_dir``, ``verbose_mode``).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from .._outcome import Failure, FailureKind
from .._redact import redact

LOG_RELATIVE = Path(".cc_automator") / "stability_logs" / "taskgroup_errors.jsonl"
_SEVERITY = {
    FailureKind.CANCELLED: "low", FailureKind.RATE_LIMITED: "low",
    FailureKind.PROCESS_EXIT: "high", FailureKind.INVALID_OUTPUT: "high",
    FailureKind.CLEANUP_INCOMPLETE: "high", FailureKind.UNEXPECTED: "high", FailureKind.CLI_NOT_FOUND: "high",
    FailureKind.AUTH: "high",
}
_lock = threading.Lock()


def analysis(failure: Failure) -> dict[str, Any]:
    """V3's ``error_analysis`` keys, with what really happened in them."""
    return {
        "error_class": type(failure.cause).__name__ if failure.cause is not None else failure.kind.value,
        "timestamp": time.time(),
        "specific_type": failure.kind.value,
        "severity": _SEVERITY.get(failure.kind, "medium"),
        "likely_cause": redact(failure.message)[:200],
        "operational_impact": "work_not_completed",
        "recovery_action": "retry" if failure.retryable else "investigate",
    }


def append(working_dir: Path, verbose: bool, failure: Failure) -> None:
    """One line for ``failure``; a log that cannot be written is skipped (V3 did the same)."""
    entry = {
        "timestamp": time.time(),
        "iso_timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime()),
        "error_analysis": analysis(failure),
        "full_error_text": redact(f"{failure.kind.value}: {failure.message}")[:500],
        "session_info": {"working_dir": str(working_dir), "verbose_mode": verbose},
    }
    path = working_dir / LOG_RELATIVE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _lock, path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
    except OSError:
        pass


def summary(working_dir: Path) -> dict[str, Any]:
    """V3's summary of the log, key for key (``no_data`` when there is none)."""
    path = working_dir / LOG_RELATIVE
    errors: list[dict[str, Any]] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(item, dict) and isinstance(item.get("timestamp"), int | float):
                    errors.append(item)
    except OSError:
        pass
    if not errors:
        return {"total_errors": 0, "no_data": True}
    types: dict[str, int] = {}
    severities = {"low": 0, "medium": 0, "high": 0}
    for error in errors:
        found = error.get("error_analysis") or {}
        kind = str(found.get("specific_type", "unknown"))
        types[kind] = types.get(kind, 0) + 1
        severity = found.get("severity", "medium")
        severities[severity if severity in severities else "medium"] += 1
    return {
        "total_errors": len(errors),
        "recent_errors_count": sum(1 for e in errors if time.time() - e["timestamp"] < 3600),
        "error_types": types,
        "severity_distribution": severities,
        "most_common_type": max(types.items(), key=lambda item: item[1])[0],
        "last_error_time": max(e["timestamp"] for e in errors),
    }
