"""Watching a run as it happens: ``RunObserver`` is what the live progress table and the OpenTelemetry
spans are built on, so neither is wired into the engine by hand.

Observers are called synchronously, in the event loop, at each state change (after the journal has it) and
for each message. They must be quick: a terminal redraw or an in-memory span, no network round trip. A
failing observer is logged and skipped: a progress bar or a trace exporter never fails an hour-long run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sdk_wrapper import ArgumentTypeError, QueryOutcome, SpawnedCLI, get_logger

if TYPE_CHECKING:
    from ._model import PhaseOutcome, Pipeline, RunReport


class RunObserver:
    """Override what you need; every method does nothing by default.

    Order for one phase: ``phase_started``, then per attempt ``attempt_started``, ``spawned`` (once the
    CLI runs), ``message``..., ``attempt_ended``; then ``phase_ended``. A skipped phase gets only
    ``phase_ended``. ``run_ended`` gets the report, or ``None`` with ``error`` when the run was interrupted
    or crashed."""

    def run_started(self, run_id: str, pipeline: Pipeline, kept: tuple[str, ...]) -> None:
        """``kept``: phases that a resume keeps from the journal (they will not run)."""

    def phase_started(self, run_id: str, name: str) -> None: ...

    def attempt_started(self, run_id: str, name: str, number: int) -> None: ...

    def spawned(self, run_id: str, name: str, cli: SpawnedCLI) -> None: ...

    def message(self, run_id: str, name: str, message: Any) -> None: ...

    def attempt_ended(self, run_id: str, name: str, number: int, outcome: QueryOutcome) -> None: ...

    def phase_ended(self, run_id: str, outcome: PhaseOutcome) -> None: ...

    def run_ended(self, run_id: str, report: RunReport | None, error: str = "") -> None: ...


class Observers(RunObserver):
    """Several observers as one; each call goes to every observer, a failure of one is logged, not raised."""

    def __init__(self, observers: Iterable[RunObserver] = ()) -> None:
        self.observers = tuple(observers)
        for observer in self.observers:
            if not isinstance(observer, RunObserver):
                raise ArgumentTypeError(f"observers must be RunObserver instances, got {type(observer).__name__}")

    def _each(self, method: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception as exc:
                get_logger().warning("observer.failed", observer=type(observer).__name__, call=method,
                                     error=type(exc).__name__)

    def run_started(self, run_id: str, pipeline: Pipeline, kept: tuple[str, ...]) -> None:
        self._each("run_started", run_id, pipeline, kept)

    def phase_started(self, run_id: str, name: str) -> None:
        self._each("phase_started", run_id, name)

    def attempt_started(self, run_id: str, name: str, number: int) -> None:
        self._each("attempt_started", run_id, name, number)

    def spawned(self, run_id: str, name: str, cli: SpawnedCLI) -> None:
        self._each("spawned", run_id, name, cli)

    def message(self, run_id: str, name: str, message: Any) -> None:
        if self.observers:  # the hot path: one call per message
            self._each("message", run_id, name, message)

    def attempt_ended(self, run_id: str, name: str, number: int, outcome: QueryOutcome) -> None:
        self._each("attempt_ended", run_id, name, number, outcome)

    def phase_ended(self, run_id: str, outcome: PhaseOutcome) -> None:
        self._each("phase_ended", run_id, outcome)

    def run_ended(self, run_id: str, report: RunReport | None, error: str = "") -> None:
        self._each("run_ended", run_id, report, error)
