"""``Orchestrator``: runs a pipeline's phases (in order, or as a DAG with bounded parallelism), journals
every state change, enforces the run budget, and resumes a run without redoing finished phases.

Before any run or resume it ends CLI trees left by a killed orchestrator: each journalled pid is touched
only if its start time matches the journal (a reused pid is never signalled), and the tree is found by
the query id its processes carry in their environment.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import structlog

from sdk_wrapper import end_query_tree, exception_leaves, get_logger

from ._execute import PhaseRuntime, run_phase
from ._journal import DEFAULT_PATH, Journal, RunBusyError, same_process
from ._model import Phase, PhaseKind, PhaseOutcome, PhaseStatus, Pipeline, RunContext, RunReport
from ._observe import Observers, RunObserver


class Orchestrator:
    """Runs pipelines against a journal. ``journal`` is a Journal, a path, or None for
    ``<project_dir>/.claude-scope/runs.db``. ``cli_path`` is passed to every query. ``observers`` watch
    each run as it happens (a live table, traces: see ``RunObserver``).

    A journal opened here (from a path) is owned and closed by ``close()`` / ``with Orchestrator(...)``;
    a ``Journal`` passed in stays the caller's to close."""

    def __init__(
        self,
        journal: Journal | str | Path | None = None,
        *,
        project_dir: str | Path = ".",
        cli_path: str | Path | None = None,
        observers: Iterable[RunObserver] = (),
    ) -> None:
        self.project_dir = Path(project_dir).resolve()
        self._owns_journal = not isinstance(journal, Journal)
        if isinstance(journal, Journal):
            self.journal = journal
        else:
            self.journal = Journal(journal if journal is not None else self.project_dir / DEFAULT_PATH)
        self.cli_path = None if cli_path is None else str(cli_path)
        self.observer = Observers(observers)
        self.log = get_logger()

    def close(self) -> None:
        if self._owns_journal:
            self.journal.close()

    def __enter__(self) -> Orchestrator:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run_sync(self, pipeline: Pipeline, run_id: str | None = None) -> RunReport:
        """For callers that are synchronous today (V3 calls ``anyio.run`` per phase)."""
        return anyio.run(self.run, pipeline, run_id)

    async def run(self, pipeline: Pipeline, run_id: str | None = None) -> RunReport:
        """Run every phase. ``run_id`` may be chosen by the caller; it must be new."""
        run_id = run_id or new_run_id()
        if self.journal.run_exists(run_id):
            raise ValueError(f"run {run_id!r} already exists in {self.journal.path}; use resume()")
        return await self._execute(pipeline, run_id, {}, new=True)

    async def resume(self, run_id: str, pipeline: Pipeline) -> RunReport:
        """Rerun only what did not succeed; succeeded phases keep their journalled outcome."""
        if not self.journal.run_exists(run_id):
            raise KeyError(f"no run {run_id!r} in {self.journal.path}")
        kept = {}
        for phase in pipeline.phases:
            recorded = self.journal.recorded_outcome(run_id, phase.name)
            if recorded is not None and recorded.succeeded:
                kept[phase.name] = recorded
        return await self._execute(pipeline, run_id, kept)

    async def end_orphans(self) -> tuple[int, ...]:
        """End CLI trees that a killed orchestrator left running (see module doc); return their pids."""
        return await end_orphans(self.journal, self.log)

    async def _execute(self, pipeline: Pipeline, run_id: str, kept: dict[str, PhaseOutcome], *,
                       new: bool = False) -> RunReport:
        started = time.monotonic()
        with _claim(self.journal, run_id):
            orphans = await self.end_orphans()
            names = [p.name for p in pipeline.phases]
            self.journal.start_run(run_id, _describe(pipeline), names, new=new)
            state = _RunState(pipeline, kept)
            ctx = RunContext(run_id, self.project_dir, state.outcomes)
            self.observer.run_started(run_id, pipeline, tuple(kept))
            try:
                async with anyio.create_task_group() as tg:
                    for phase in pipeline.phases:
                        if phase.name not in kept:
                            tg.start_soon(self._phase_task, phase, ctx, state, name=f"phase {phase.name}")
            except BaseException as exc:
                # Synchronous journal writes: a cancellation cannot interrupt them.
                if _only_cancellation(exc):
                    why = "cancelled before it finished; resume it"
                    self.journal.end_run(run_id, "interrupted", why)
                else:
                    why = "; ".join(f"{type(e).__name__}: {e}" for e in exception_leaves(exc)
                                    if not _is_cancellation(e))
                    self.journal.run_crashed(run_id, why)
                    self.log.error("run.crashed", run_id=run_id, error=why)
                self.observer.run_ended(run_id, None, why)
                raise
        report = RunReport(
            run_id=run_id, phases={n: state.outcomes[n] for n in names},
            cost_usd=sum(o.cost_usd or 0.0 for o in state.outcomes.values()),
            duration_s=time.monotonic() - started, budget_exhausted=state.budget_exhausted, orphans_ended=orphans,
        )
        self.journal.end_run(run_id, "succeeded" if report.ok else "failed",
                             "run budget exhausted" if state.budget_exhausted else "")
        self.observer.run_ended(run_id, report)
        return report

    async def _phase_task(self, phase: Phase, ctx: RunContext, state: _RunState) -> None:
        deps = state.deps[phase.name]
        for dep in deps:
            await state.done[dep].wait()
        not_ok = [state.outcomes[d] for d in deps if not state.outcomes[d].succeeded]
        if not_ok:
            outcome = _skipped(phase, f"dependency {not_ok[0].name!r} {not_ok[0].status.value}")
        else:
            async with state.limiter:
                outcome = await self._start_or_skip(phase, ctx, state)
        state.record(outcome)
        self.journal.phase_ended(ctx.run_id, outcome)
        self._notify(phase.name, outcome.status, outcome)
        self.observer.phase_ended(ctx.run_id, outcome)

    async def _start_or_skip(self, phase: Phase, ctx: RunContext, state: _RunState) -> PhaseOutcome:
        if state.stop_reason:
            return _skipped(phase, state.stop_reason)
        budget = state.pipeline.max_cost_usd
        if budget is not None and state.spent() >= budget:
            state.budget_exhausted = True
            spent = f"run budget spent ({state.spent():.4f} of {budget} USD)"
            return _skipped(phase, spent, PhaseKind.RUN_BUDGET_SPENT)
        self._notify(phase.name, PhaseStatus.RUNNING, None)
        self.observer.phase_started(ctx.run_id, phase.name)
        recorded = self.journal.recorded_outcome(ctx.run_id, phase.name)
        runtime = PhaseRuntime(ctx.run_id, self.journal, self.project_dir, self.cli_path,
                               first_attempt=recorded.attempts if recorded is not None else 0,
                               observer=self.observer)
        with structlog.contextvars.bound_contextvars(run_id=ctx.run_id, phase=phase.name):
            outcome = await run_phase(phase, ctx, runtime)
        if not outcome.succeeded and state.pipeline.fail_fast:
            state.stop_reason = f"fail_fast: phase {phase.name!r} {outcome.status.value}"
        return outcome

    def _notify(self, name: str, status: PhaseStatus, outcome: PhaseOutcome | None) -> None:
        self.log.info("phase.status", phase=name, status=status.value,
                      kind=None if outcome is None else outcome.kind,
                      cost_usd=None if outcome is None else outcome.cost_usd)


class _RunState:
    """Shared by a run's phase tasks (all in one event loop, so plain attributes suffice)."""

    def __init__(self, pipeline: Pipeline, kept: dict[str, PhaseOutcome]) -> None:
        self.pipeline = pipeline
        self.deps = pipeline.dependencies()
        self.outcomes: dict[str, PhaseOutcome] = dict(kept)
        self.done = {p.name: anyio.Event() for p in pipeline.phases}
        for name in kept:
            self.done[name].set()
        self.limiter = anyio.CapacityLimiter(pipeline.max_parallel)
        self.stop_reason = ""
        self.budget_exhausted = False

    def spent(self) -> float:
        return sum(o.cost_usd or 0.0 for o in self.outcomes.values())

    def record(self, outcome: PhaseOutcome) -> None:
        self.outcomes[outcome.name] = outcome
        self.done[outcome.name].set()


_active_lock = threading.Lock()
_active: set[tuple[str, str]] = set()


@contextmanager
def _claim(journal: Journal, run_id: str) -> Iterator[None]:
    """Hold ``run_id`` for this process while it runs: a second orchestrator in this process (another thread)
    gets ``RunBusyError``; other processes are kept out by the run's owner in the journal."""
    key = (str(journal.path.resolve()), run_id)
    with _active_lock:
        if key in _active:
            raise RunBusyError(run_id, journal.owner, journal.path)
        _active.add(key)
    try:
        yield
    finally:
        with _active_lock:
            _active.discard(key)


def _is_cancellation(exc: BaseException) -> bool:
    return isinstance(exc, anyio.get_cancelled_exc_class() | KeyboardInterrupt)


def _only_cancellation(exc: BaseException) -> bool:
    return all(_is_cancellation(leaf) for leaf in exception_leaves(exc))


async def end_orphans(journal: Journal, log: Any) -> tuple[int, ...]:
    """End the CLI trees recorded in ``journal`` whose owner is gone (a killed orchestrator or worker);
    return their pids. Another owner's running CLI, on the same journal, is never touched."""
    ended: list[int] = []
    for proc in journal.live_processes():
        if not proc.orphaned():
            continue
        root = proc.pid if same_process(proc.pid, proc.create_time) else None
        pids = await end_query_tree(proc.query_id, root)
        ended.extend(pids)
        if pids:
            log.warning("orphans.ended", run_id=proc.run_id, phase=proc.name, pids=list(pids))
        journal.forget_process(proc)
    return tuple(ended)


def new_run_id() -> str:
    """A run id: sortable by start time, unique across concurrent orchestrators."""
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


def _skipped(phase: Phase, reason: str, kind: PhaseKind | None = None) -> PhaseOutcome:
    return PhaseOutcome(phase.name, PhaseStatus.SKIPPED, kind=kind, message=reason)


def _describe(pipeline: Pipeline) -> dict[str, object]:
    return {"name": pipeline.name, "source": pipeline.source, "max_parallel": pipeline.max_parallel,
            "max_cost_usd": pipeline.max_cost_usd, "fail_fast": pipeline.fail_fast,
            "phases": [p.to_dict() for p in pipeline.phases]}
