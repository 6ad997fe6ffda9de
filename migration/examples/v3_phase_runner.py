"""A phase runner written the way the real V3 orchestrator is written (kept in V3's style on purpose: it is
the example that migrates by changing its import lines; see ../MIGRATION.md). Our own code, in the shape
of the consumer patterns V3's own code used (migration/MIGRATION.md):

- the import ladder: V4's names first, then V3 (absolute), then V2, then the raw SDK;
- ``anyio.run`` per phase; ``async for`` over ``query_v3``; the status decided from dict fields:
  ``subtype`` in the result subtypes -> ``is_error`` -> FAILED with ``msg_dict.get("result", "Unknown
  error")``; ``success`` -> COMPLETED with ``msg_dict.get("total_cost_usd", 0.0)``; a stream that ends
  with no result leaves the phase "running" (V3 had no check for that);
- cost arithmetic: ``if phase.cost_usd > 0`` and ``sum(p.cost_usd for p in phases)``;
- ``get_v3_wrapper(...).get_taskgroup_error_summary()`` at the end.
V3 itself has no query timeout; the caller's ``anyio.fail_after`` here is the "caller times out" case.

    python v3_phase_runner.py WORKING_DIR PHASE_NAME:PROMPT[:TIMEOUT_S] ...

Prints one JSON line per phase (name, status, error, session_id, cost_usd, duration_ms), then one line
``{"total_cost_usd": ..., "summary": {...}}``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

try:
    from claude_code_sdk_fixed_v4 import ClaudeCodeOptions, get_v4_fixed_wrapper  # noqa: F401
    from claude_code_sdk_fixed_v4 import get_v4_fixed_wrapper as get_v3_wrapper
    from claude_code_sdk_fixed_v4 import query_v4_fixed as query_v3
except ImportError:
    try:
        from claude_code_sdk_fixed_v3 import ClaudeCodeOptions, Message, get_v3_wrapper, query_v3
    except ImportError:  # V3's fallback ladder
        from claude_code_sdk import ClaudeCodeOptions, Message  # noqa: F401
        from claude_code_sdk import query as query_v3  # type: ignore[assignment]
        get_v3_wrapper = None  # type: ignore[assignment]

RESULT_SUBTYPES = ["success", "error_max_turns", "error_during_execution"]


@dataclass
class Phase:
    name: str
    prompt: str
    timeout_seconds: float = 600
    status: str = "pending"
    session_id: str | None = None
    cost_usd: float = 0.0
    duration_ms: int = 0
    error: str | None = None


class PhaseOrchestrator:
    def __init__(self, working_dir: Path, verbose: bool = False) -> None:
        self.working_dir = working_dir
        self.verbose = verbose

    def run(self, phases: list[Phase]) -> list[Phase]:
        for phase in phases:
            try:
                anyio.run(self._execute_with_sdk, phase)
            except Exception as e:
                if phase.status != "completed":
                    phase.status, phase.error = "failed", f"V3 SDK execution failed: {type(e).__name__}: {e}"
        return phases

    async def _execute_with_sdk(self, phase: Phase) -> None:
        options = ClaudeCodeOptions(max_turns=50, permission_mode="bypassPermissions", cwd=str(self.working_dir))
        messages: list[Any] = []
        phase.status = "running"
        with anyio.fail_after(phase.timeout_seconds):
            async for message in query_v3(phase.prompt, options, self.working_dir, self.verbose):
                msg_dict = message if isinstance(message, dict) else message.__dict__
                messages.append(msg_dict)
                if len(messages) > 500:
                    messages = messages[len(messages) // 2:]
                if "data" in msg_dict and isinstance(msg_dict["data"], dict):
                    nested = msg_dict["data"]
                    if nested.get("type") == "system" and nested.get("subtype") == "init":
                        phase.session_id = nested.get("session_id")
                        continue
                if ("subtype" in msg_dict and msg_dict.get("subtype") in RESULT_SUBTYPES) \
                        or msg_dict.get("type") == "result":
                    if msg_dict.get("is_error", False):
                        phase.status = "failed"
                        phase.error = msg_dict.get("result", "Unknown error")
                    elif msg_dict.get("subtype") == "success":
                        phase.status = "completed"
                        phase.cost_usd = msg_dict.get("total_cost_usd", 0.0)
                        phase.duration_ms = msg_dict.get("duration_ms", 0)
                        phase.session_id = msg_dict.get("session_id") or phase.session_id
                    else:
                        phase.status = "failed"
                        phase.error = f"Phase failed: {msg_dict.get('subtype')}"


def main(argv: list[str]) -> int:
    working_dir = Path(argv[0])
    phases = []
    for spec in argv[1:]:
        name, prompt, *rest = spec.split(":")
        phases.append(Phase(name, prompt, float(rest[0]) if rest else 600))
    for phase in PhaseOrchestrator(working_dir).run(phases):
        if phase.cost_usd > 0:
            print(f"phase {phase.name} cost ${phase.cost_usd:.4f}", file=sys.stderr)
        print(json.dumps(asdict(phase)), flush=True)
    total = sum(p.cost_usd for p in phases)
    summary = get_v3_wrapper(working_dir).get_taskgroup_error_summary() if get_v3_wrapper is not None else {}
    print(json.dumps({"total_cost_usd": total, "summary": summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
