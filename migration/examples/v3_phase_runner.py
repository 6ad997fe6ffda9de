"""A phase runner written the way V3 code is written (kept in V3's style on purpose: it is the example
that migrates by changing its import line; see ../MIGRATION.md).

    python v3_phase_runner.py WORKING_DIR PHASE_NAME:PROMPT[:TIMEOUT_S] ...

Runs each phase in a new event loop (``anyio.run`` per phase), iterates ``query_v3`` with ``async for``,
keeps messages in a list trimmed past 500, decides success from dict fields, and prints one JSON line per
phase: name, status, error, session_id, cost_usd, duration_ms.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

try:
    from claude_code_sdk_fixed_v3 import ClaudeCodeOptions, Message, get_v3_wrapper, query_v3  # noqa: F401
except ImportError:  # V3's fallback ladder
    from claude_code_sdk import ClaudeCodeOptions, Message  # noqa: F401
    from claude_code_sdk import query as query_v3  # type: ignore[assignment]


@dataclass
class Phase:
    name: str
    prompt: str
    timeout_seconds: float = 600
    status: str = "pending"
    session_id: str | None = None
    cost_usd: float | None = 0.0
    duration_ms: int = 0
    error: str | None = None


class PhaseOrchestrator:
    def __init__(self, working_dir: Path, verbose: bool = False) -> None:
        self.working_dir = working_dir
        self.verbose = verbose

    def run(self, phases: list[Phase]) -> list[Phase]:
        for phase in phases:
            anyio.run(self._execute_with_sdk, phase)
        return phases

    async def _execute_with_sdk(self, phase: Phase) -> None:
        options = ClaudeCodeOptions(max_turns=50, permission_mode="bypassPermissions", cwd=str(self.working_dir))
        messages: list[Any] = []
        phase.status = "running"
        try:
            with anyio.fail_after(phase.timeout_seconds):
                async for message in query_v3(phase.prompt, options, self.working_dir, self.verbose):
                    messages.append(message)
                    if len(messages) > 500:
                        messages = messages[len(messages) // 2:]
                    if not isinstance(message, dict):
                        continue
                    if message.get("subtype") == "init":
                        phase.session_id = message.get("session_id") or message.get("data", {}).get("session_id")
                    if message.get("subtype") in ("success", "error_max_turns", "error_during_execution") \
                            or message.get("type") == "result":
                        if message.get("is_error"):
                            phase.status, phase.error = "failed", message.get("result")
                        elif message.get("subtype") == "success":
                            phase.status = "completed"
                            phase.cost_usd = message.get("total_cost_usd")
                            phase.duration_ms = message.get("duration_ms", 0)
                            phase.session_id = message.get("session_id") or phase.session_id
                        else:
                            phase.status = "failed"
        except Exception as e:
            if phase.status != "completed":
                phase.status, phase.error = "failed", f"{type(e).__name__}: {e}"
        if phase.status == "running":
            phase.status, phase.error = "failed", "the stream ended without a result"


def main(argv: list[str]) -> int:
    working_dir = Path(argv[0])
    phases = []
    for spec in argv[1:]:
        name, prompt, *rest = spec.split(":")
        phases.append(Phase(name, prompt, float(rest[0]) if rest else 600))
    for phase in PhaseOrchestrator(working_dir).run(phases):
        print(json.dumps(asdict(phase)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
