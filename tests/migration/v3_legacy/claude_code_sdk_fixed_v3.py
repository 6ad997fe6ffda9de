"""TEST COPY of V3's masking wrapper, rebuilt from ../shared/v3-contract.md to show what it hides.

Do not use: it classifies errors by their text and yields a success the CLI never sent. It exists so the
migration tests and benchmarks can run V3's behaviour side by side with the drop-in. (V3's import-time
print and monkey-patch of the SDK are left out: they do not change what it hides.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from claude_code_sdk import *  # noqa: F403
from claude_code_sdk import ClaudeCodeOptions, Message, query  # noqa: F401

FABRICATED = {
    "type": "result", "subtype": "success", "is_error": False,
    "result": "Phase completed successfully (TaskGroup cleanup noise ignored)",
    "total_cost_usd": 0.0, "duration_ms": 0,
}


class V3QueryWrapper:
    def __init__(self, working_dir: Path, verbose: bool = False) -> None:
        self.working_dir = working_dir
        self.verbose = verbose
        self.taskgroup_errors: list[str] = []

    def _classify_error(self, e: BaseException) -> str:
        text = str(e)
        if "TaskGroup" in text or "cancel scope" in text or "unhandled errors" in text:
            return "taskgroup_cleanup"
        if "WebSearch" in text and "timeout" in text.lower():
            return "websearch_timeout"
        if "cost" in text.lower():
            return "cost_parsing"
        if "auth" in text.lower() or "API key" in text:
            return "authentication"
        return "execution_error"

    async def execute_phase(self, prompt: str, options: Any) -> Any:
        try:
            async for message in query(prompt=prompt, options=options):
                yield message.__dict__ if hasattr(message, "__dict__") else message
        except BaseException as e:
            if self._classify_error(e) == "taskgroup_cleanup":
                self.taskgroup_errors.append(str(e))
                yield {**FABRICATED, "timestamp": time.time()}
                return
            raise

    def get_taskgroup_error_summary(self) -> dict[str, Any]:
        return {"total_errors": len(self.taskgroup_errors)}


_wrapper: V3QueryWrapper | None = None


def get_v3_wrapper(working_dir: Path, verbose: bool = False) -> V3QueryWrapper:
    global _wrapper  # V3's process-wide singleton, shared across the event loops of every phase
    if _wrapper is None:
        _wrapper = V3QueryWrapper(working_dir, verbose)
    return _wrapper


async def query_v3(prompt: str, options: Any, working_dir: Path, verbose: bool = False) -> Any:
    async for message in get_v3_wrapper(working_dir, verbose).execute_phase(prompt, options):
        yield message
