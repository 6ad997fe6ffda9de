"""TEST MODEL of V3's wrapper (ours, written from V3's contract and what V3 really did: migration/MIGRATION.md), to run
V3's behaviour side by side with the drop-in. It runs where the real one ran: on claude-code-sdk 0.0.10
(the tests start it in the side venv that scripts/test makes, ``CLAUDE_SCOPE_V3_PYTHON``).

What it keeps of V3, because each changes what callers see:
- at import, a patch of the SDK's result parsing that maps the older cost fields (and defaults to 0.0);
  on claude-code-sdk 0.0.25 the patched method does not exist, so importing this raises AttributeError,
  as importing the real V3 does;
- ``except Exception`` around the query (a cancellation is not caught), and a classifier that lowercases
  the error's text and calls it "taskgroup_cleanup" when "taskgroup" and one of "unhandled errors",
  "cleanup", "cancelled", "cancel_scope" occur in it: then a made-up success is yielded;
- that error appended to ``.cc_automator/stability_logs/taskgroup_errors.jsonl`` and summarized by
  ``get_taskgroup_error_summary``; one process-wide wrapper; a print at import.
Do not use: it classifies errors by their text and yields a success the CLI never sent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from claude_code_sdk import *  # noqa: F403
from claude_code_sdk import ClaudeCodeOptions, Message, ResultMessage, query  # noqa: F401
from claude_code_sdk._internal.client import InternalClient

_parse = InternalClient._parse_message  # AttributeError on claude-code-sdk 0.0.25, as with the real V3


def _parse_with_costs(self: Any, data: dict[str, Any]) -> Any:
    if data.get("type") != "result":
        return _parse(self, data)
    cost = data.get("total_cost_usd", data.get("total_cost", data.get("cost_usd", 0.0)))
    return ResultMessage(
        subtype=data.get("subtype", ""), cost_usd=cost, duration_ms=data.get("duration_ms", 0),
        duration_api_ms=data.get("duration_api_ms", 0), is_error=data.get("is_error", False),
        num_turns=data.get("num_turns", 0), session_id=data.get("session_id", ""), total_cost_usd=cost,
        usage=data.get("usage"), result=data.get("result"),
    )


InternalClient._parse_message = _parse_with_costs  # type: ignore[method-assign]
_KEYWORDS = ("unhandled errors", "cleanup", "cancelled", "cancel_scope")


class V3QueryWrapper:
    def __init__(self, working_dir: Path, verbose: bool = False) -> None:
        self.working_dir = Path(working_dir)
        self.verbose = verbose

    def _classify_error(self, error: BaseException) -> str:
        text = str(error).lower()
        if "taskgroup" in text and any(k in text for k in _KEYWORDS):
            return "taskgroup_cleanup"
        if any(k in text for k in ("websearch", "timeout", "http", "connection", "network")):
            return "websearch_timeout"
        return "execution_error"

    async def execute_phase(self, prompt: str, options: Any) -> Any:
        try:
            async for message in query(prompt=prompt, options=options):
                yield message.__dict__ if hasattr(message, "__dict__") else message
        except Exception as e:
            if self._classify_error(e) != "taskgroup_cleanup":
                raise
            self._log(e)
            yield {"type": "result", "subtype": "success", "is_error": False,
                   "result": "Phase completed successfully (TaskGroup cleanup issue handled)",
                   "total_cost_usd": 0.0, "duration_ms": 0, "timestamp": time.time()}

    def _log(self, error: BaseException) -> None:
        path = self.working_dir / ".cc_automator" / "stability_logs" / "taskgroup_errors.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        analysis = {"error_class": type(error).__name__, "timestamp": time.time(),
                    "specific_type": type(error).__name__, "severity": "low", "likely_cause": "cleanup",
                    "operational_impact": "none_if_work_completed", "recovery_action": "continue"}
        with path.open("a") as fh:
            fh.write(json.dumps({"timestamp": time.time(), "iso_timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
                                 "error_analysis": analysis, "full_error_text": str(error)[:500],
                                 "session_info": {"working_dir": str(self.working_dir),
                                                  "verbose_mode": self.verbose}}) + "\n")

    def get_taskgroup_error_summary(self) -> dict[str, Any]:
        path = self.working_dir / ".cc_automator" / "stability_logs" / "taskgroup_errors.jsonl"
        if not path.exists():
            return {"total_errors": 0, "no_data": True}
        errors = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        types: dict[str, int] = {}
        severity = {"low": 0, "medium": 0, "high": 0}
        for error in errors:
            kind = error["error_analysis"]["specific_type"]
            types[kind] = types.get(kind, 0) + 1
            severity[error["error_analysis"]["severity"]] += 1
        return {"total_errors": len(errors),
                "recent_errors_count": sum(1 for e in errors if time.time() - e["timestamp"] < 3600),
                "error_types": types, "severity_distribution": severity,
                "most_common_type": max(types.items(), key=lambda x: x[1])[0] if types else None,
                "last_error_time": max(e["timestamp"] for e in errors) if errors else None}


_wrapper: V3QueryWrapper | None = None


def get_v3_wrapper(working_dir: Path, verbose: bool = False) -> V3QueryWrapper:
    global _wrapper  # V3's process-wide singleton: the first working_dir wins
    if _wrapper is None:
        _wrapper = V3QueryWrapper(working_dir, verbose)
    return _wrapper


async def query_v3(prompt: str, options: Any, working_dir: Path, verbose: bool = False) -> Any:
    async for message in get_v3_wrapper(working_dir, verbose).execute_phase(prompt, options):
        yield message


print("V3 test model loaded")  # noqa: T201 - V3 printed at import; its callers saw that line
