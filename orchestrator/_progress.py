"""The live progress table of ``claude-scope run`` on a terminal, drawn by ``rich``: phase, status,
elapsed, cost, turns and the last tool the phase's agent used.

It is a ``RunObserver``: the engine knows nothing of terminals. Off a terminal the CLI does not use it
(the orchestrator's structlog JSON lines are the progress there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console, JustifyMethod
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sdk_wrapper import QueryOutcome, redact

from ._observe import RunObserver
from ._status import PhaseStatus

if TYPE_CHECKING:
    from ._model import PhaseOutcome, Pipeline, RunReport

_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("phase", "left"), ("status", "left"), ("elapsed", "right"), ("cost", "right"), ("turns", "right"),
    ("last tool", "left"))
_STYLE = {"pending": "dim", "running": "bold cyan", "succeeded": "green", "failed": "bold red",
          "timed_out": "bold red", "cancelled": "yellow", "skipped": "dim yellow", "kept": "green"}


@dataclass
class _Row:
    status: str = "pending"
    started: float | None = None
    elapsed: float | None = None
    cost: float | None = None
    turns: int = 0
    final_turns: int | None = None
    tool: str = ""
    attempt: int = 0


def _assistant(message: Any) -> bool:
    return type(message).__name__ == "AssistantMessage"  # either SDK's


def last_tool(message: Any) -> str | None:
    """The last tool call in an assistant message (either SDK's), as ``Name: short input``."""
    return _last_tool_in(message.content) if _assistant(message) else None


def _last_tool_in(blocks: Any) -> str | None:
    found = None
    for block in blocks:
        if type(block).__name__ == "ToolUseBlock":
            found = f"{block.name}: {_brief(block.input)}" if block.input else str(block.name)
    return found


def _brief(tool_input: Any) -> str:
    if isinstance(tool_input, dict):
        for key in ("command", "file_path", "path", "pattern", "url", "description"):
            if key in tool_input:
                return redact(str(tool_input[key]))[:40]
    return redact(str(tool_input))[:40]


class LiveTable(RunObserver):
    """A rich ``Live`` table, started when the run starts and stopped (left on screen) when it ends.
    ``console``: where to draw (default: stdout)."""

    def __init__(self, console: Console | None = None, *, refresh_per_second: float = 4.0) -> None:
        self.console = console or Console()
        self.rows: dict[str, _Row] = {}
        self._live: Live | None = None
        self._refresh = refresh_per_second

    # -- what rich draws (called by its refresh thread too: reads only) ------------------------------------
    def __rich__(self) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column, justify in _COLUMNS:
            table.add_column(column, justify=justify)
        now = time.monotonic()
        for name, row in list(self.rows.items()):
            elapsed = row.elapsed if row.elapsed is not None else (now - row.started if row.started else None)
            status = row.status if row.attempt <= 1 or row.status != "running" else f"running ({row.attempt})"
            table.add_row(
                name, Text(status, style=_STYLE.get(row.status, "")),
                "-" if elapsed is None else f"{elapsed:.1f}s",
                "-" if row.cost is None else f"{row.cost:.4f}",
                str(row.final_turns if row.final_turns is not None else row.turns or "-"),
                Text(row.tool, overflow="ellipsis", no_wrap=True),
            )
        return table

    # -- the run ---------------------------------------------------------------------------------------
    def run_started(self, run_id: str, pipeline: Pipeline, kept: tuple[str, ...]) -> None:
        self.rows = {p.name: _Row(status="kept" if p.name in kept else "pending") for p in pipeline.phases}
        self._live = Live(self, console=self.console, refresh_per_second=self._refresh, transient=False)
        self._live.start()

    def phase_started(self, run_id: str, name: str) -> None:
        self.rows[name].status, self.rows[name].started = PhaseStatus.RUNNING.value, time.monotonic()
        self._redraw()

    def attempt_started(self, run_id: str, name: str, number: int) -> None:
        self.rows[name].attempt = number
        self._redraw()

    def message(self, run_id: str, name: str, message: Any) -> None:
        if _assistant(message):  # a turn; its last tool is drawn at the next refresh, no redraw per message
            row = self.rows[name]
            row.turns += 1
            row.tool = _last_tool_in(message.content) or row.tool

    def attempt_ended(self, run_id: str, name: str, number: int, outcome: QueryOutcome) -> None:
        if outcome.cost_usd is not None:  # spent so far; the phase's own figure replaces it when it ends
            self.rows[name].cost = (self.rows[name].cost or 0.0) + outcome.cost_usd

    def phase_ended(self, run_id: str, outcome: PhaseOutcome) -> None:
        row = self.rows[outcome.name]
        row.status = outcome.status.value
        row.elapsed = outcome.duration_s if row.started is not None else None
        row.cost = outcome.cost_usd if outcome.cost_usd is not None else row.cost
        row.final_turns = outcome.num_turns
        self._redraw()

    def run_ended(self, run_id: str, report: RunReport | None, error: str = "") -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def _redraw(self) -> None:
        if self._live is not None:
            self._live.refresh()
