"""``Orchestrator``: runs a pipeline's phases (in order, or as a DAG with bounded parallelism), journals
every state change, enforces the run budget, and resumes a run without redoing finished phases.

Before any run or resume it ends CLI trees left by a killed orchestrator: each journalled pid is touched
only if its start time matches the journal (a reused pid is never signalled), and the tree is found by
the query id its processes carry in their environment.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.streams.memory import MemoryObjectSendStream

from sdk_wrapper import end_query_tree, exception_leaves, get_logger, redact
from sdk_wrapper.lowlevel import CapsError, check_caps, post_json

from . import _gates as gates
from ._checks import CheckContext
from ._context import RunContext
from ._execute import PhaseRuntime, phase_options, run_phase
from ._feedback import told_after
from ._journal import DEFAULT_PATH, Journal, RunBusyError, RunExistsError, RunNotFoundError
from ._model import Phase, PhaseOutcome, Pipeline, PipelineError, RunReport
from ._observe import Observers, RunObserver
from ._owner import same_process
from ._plan import plan_evidence, plan_failure, plan_phases, read_plan
from ._schedule import RunState, Start, Wait
from ._status import PhaseKind, PhaseStatus
from ._worktree import check_isolation, reap


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

    async def run(self, pipeline: Pipeline, run_id: str | None = None, *,
                  wait_for_approval: bool = True) -> RunReport:
        """Run every phase. ``run_id`` may be chosen by the caller; it must be new. A phase at an approval
        gate is waited for (a person runs ``claude-scope approve``); with ``wait_for_approval=False`` the run
        stops once only people can move it on (``RunReport.waiting``; journalled ``waiting``, resumable)."""
        run_id = run_id or new_run_id()
        if self.journal.run_exists(run_id):
            raise RunExistsError(f"run {run_id!r} already exists in {self.journal.path}; use resume()")
        return await self._execute(pipeline, run_id, {}, new=True, wait_for_approval=wait_for_approval)

    async def resume(self, run_id: str, pipeline: Pipeline, *, recheck: bool = False,
                     wait_for_approval: bool = True) -> RunReport:
        """Rerun only what did not succeed; succeeded phases keep their journalled outcome. With ``recheck``,
        the checks of the succeeded phases run again first (V3 validated its evidence before resuming): a
        phase whose evidence is gone reruns, and so do the phases that depend on it."""
        if not self.journal.run_exists(run_id):
            raise RunNotFoundError(f"no run {run_id!r} in {self.journal.path}")
        pipeline = self._with_plans(run_id, pipeline)
        kept, awaiting = {}, {}
        for phase in pipeline.phases:
            recorded = self.journal.recorded_outcome(run_id, phase.name)
            if recorded is None:
                continue
            if recorded.succeeded:
                kept[phase.name] = recorded
            elif recorded.status is PhaseStatus.WAITING_APPROVAL and phase.approval == "after":
                # it ran and waits at its ``after`` gate: not run again, still waiting
                request = self.journal.approval(run_id, phase.name)
                if request is not None and request["gate"] == "after":
                    awaiting[phase.name] = dataclasses.replace(recorded, status=PhaseStatus.SUCCEEDED)
        gone = await self._recheck(run_id, pipeline, kept) if recheck else {}
        return await self._execute(pipeline, run_id, kept, evidence_gone=gone, awaiting=awaiting,
                                   wait_for_approval=wait_for_approval)

    def _with_plans(self, run_id: str, pipeline: Pipeline) -> Pipeline:
        """``pipeline`` with the plans that joined the run before (from the journal, not from the files, which
        may have changed since): a planner that succeeded is never rerun by a plain resume."""
        for planner, data in self.journal.plans(run_id):
            recorded = self.journal.recorded_outcome(run_id, planner)
            names = {p.name for p in pipeline.phases}
            if planner in names and recorded is not None and recorded.succeeded:
                pipeline = pipeline.expand(planner, plan_phases(pipeline, pipeline.phase(planner), data,
                                                                self.project_dir))
        return pipeline

    async def _recheck(self, run_id: str, pipeline: Pipeline, kept: dict[str, PhaseOutcome]) -> dict[str, str]:
        """Run the checks of the ``kept`` phases again; drop from ``kept`` those whose evidence is gone and
        the phases that depend on them, directly or not. Return why each dropped phase reruns."""
        ctx = RunContext(run_id, self.project_dir, kept)
        gone: dict[str, str] = {}
        for phase in pipeline.phases:
            if phase.name in kept and phase.checks:
                where = CheckContext(Path(phase_options(phase, self.project_dir).cwd), ctx)
                failed = [r for r in [await c.run(where) for c in phase.checks] if not r.passed]
                if failed:
                    gone[phase.name] = "its evidence is gone: " + "; ".join(f"{r.name}: {r.evidence}" for r in failed)
        graph = pipeline.dependencies()
        changed = True
        while changed:
            changed = False
            for name in [n for n in kept if n not in gone]:
                cause = next((d for d in graph[name] if d in gone), None)
                if cause is not None:
                    gone[name], changed = f"it depends on {cause!r}, which reruns", True
        for name, why in gone.items():
            kept.pop(name, None)
            self.log.warning("resume.recheck", run_id=run_id, phase=name, reruns=why)
        return gone

    async def end_orphans(self) -> tuple[int, ...]:
        """End CLI trees that a killed orchestrator left running (see module doc); return their pids."""
        return await end_orphans(self.journal, self.log)

    async def _execute(self, pipeline: Pipeline, run_id: str, kept: dict[str, PhaseOutcome], *,
                       new: bool = False, evidence_gone: dict[str, str] | None = None,
                       awaiting: dict[str, PhaseOutcome] | None = None, wait_for_approval: bool = True) -> RunReport:
        started = time.monotonic()
        await check_isolation(pipeline, self.project_dir)
        _check_caps(pipeline)
        with _claim(self.journal, run_id):
            orphans = await self.end_orphans()
            names = [p.name for p in pipeline.phases]
            self.journal.start_run(run_id, _describe(pipeline), names, new=new)
            # a resume: what each phase that runs again already spent (read once; a new run has spent nothing)
            awaiting = awaiting or {}
            earlier = {} if new else {p.name: self.journal.attempt_costs(run_id, p.name)
                                      for p in pipeline.phases if p.name not in kept}
            state = RunState.new(pipeline.run_plan(), {n: o.cost_usd for n, o in kept.items()},
                                 {n: sum(c for c in costs if c is not None) for n, costs in earlier.items()},
                                 waiting={n: o.cost_usd for n, o in awaiting.items()})
            outcomes: dict[str, PhaseOutcome] = dict(kept)
            ctx = RunContext(run_id, self.project_dir, outcomes)
            self.observer.run_started(run_id, pipeline, tuple(kept))
            live = _Live(pipeline, wait_for_approval, awaiting)
            try:
                await self._schedule(live, state, ctx, outcomes, earlier)
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
        pipeline = live.pipeline  # with every plan that joined the run
        waiting = tuple(state.waiting) if live.stopped_waiting else ()
        for name in waiting:
            outcomes[name] = PhaseOutcome(name, PhaseStatus.WAITING_APPROVAL, message="waits for approval")
        for name in (p.name for p in pipeline.phases if p.name not in outcomes):  # not started: behind a gate
            outcomes[name] = PhaseOutcome(name, PhaseStatus.PENDING, message="not started: a phase before it waits")
        report = RunReport(
            run_id=run_id, phases={p.name: outcomes[p.name] for p in pipeline.phases}, waiting=waiting,
            cost_usd=sum(o.cost_usd or 0.0 for o in outcomes.values()),
            cost_lower_bound=any(o.cost_lower_bound for o in outcomes.values()),
            evidence_gone=dict(evidence_gone or {}),
            duration_s=time.monotonic() - started, budget_exhausted=state.budget_exhausted, orphans_ended=orphans,
        )
        if waiting:
            self.journal.end_run(run_id, "waiting", f"waiting for approval: {', '.join(waiting)}; resume it once "
                                 "they are decided")
        else:
            self.journal.end_run(run_id, "succeeded" if report.ok else "failed",
                                 "run budget exhausted" if state.budget_exhausted else "")
        self.observer.run_ended(run_id, report)
        return report

    async def _schedule(self, live: _Live, state: RunState, ctx: RunContext,
                        outcomes: dict[str, PhaseOutcome], earlier: dict[str, tuple[float | None, ...]]) -> None:
        """Do what the rules (``_schedule``) say until every phase has ended: each phase runs in a task
        of its own, and its end wakes this loop to ask the rules again."""
        ended_send, ended_receive = anyio.create_memory_object_stream[str](math.inf)  # never blocks a phase's end
        with ended_send, ended_receive:
            async with anyio.create_task_group() as tg:
                for name, outcome in live.awaiting.items():  # a resume: they ran, and still wait for a person
                    tg.start_soon(self._after_gate, live, live.pipeline.phase(name), outcome, ctx, state, outcomes,
                                  ended_send, name=f"gate {name}")
                while True:
                    for step in state.drain():
                        if isinstance(step, Start):
                            tg.start_soon(self._phase_task, live, live.pipeline.phase(step.name), step.cap_usd,
                                          earlier.get(step.name, ()), ctx, state, outcomes, ended_send,
                                          name=f"phase {step.name}")
                        elif isinstance(step, Wait):
                            self._ask(ctx.run_id, step.name, "before")
                            tg.start_soon(self._before_gate, live, step.name, ctx, state, outcomes, ended_send,
                                          name=f"gate {step.name}")
                        else:
                            self._record(ctx.run_id, outcomes, PhaseOutcome(
                                step.name, PhaseStatus.SKIPPED, kind=step.kind, message=step.reason))
                    if state.done:
                        break
                    if not state.running and state.waiting and not live.wait_for_approval:
                        live.stopped_waiting = True  # only people can move it on: stop, resumable
                        tg.cancel_scope.cancel()
                        break
                    await ended_receive.receive()

    async def _phase_task(self, live: _Live, phase: Phase, cap_usd: float | None, earlier: tuple[float | None, ...],
                          ctx: RunContext, state: RunState, outcomes: dict[str, PhaseOutcome],
                          ended: MemoryObjectSendStream[str]) -> None:
        self._notify(phase.name, PhaseStatus.RUNNING, None)
        self.journal.phase_reserved(ctx.run_id, phase.name, cap_usd)
        self.observer.phase_started(ctx.run_id, phase.name)
        recorded = self.journal.recorded_outcome(ctx.run_id, phase.name)
        runtime = PhaseRuntime(ctx.run_id, self.journal, self.project_dir, self.cli_path,
                               first_attempt=recorded.attempts if recorded is not None else 0,
                               earlier_costs=earlier, cap_usd=cap_usd, observer=self.observer,
                               feedback=journalled_feedback(self.journal, ctx.run_id, phase.name) if phase.feedback
                               else "")
        with structlog.contextvars.bound_contextvars(run_id=ctx.run_id, phase=phase.name):
            outcome = await run_phase(phase, ctx, runtime)
        if outcome.succeeded and phase.approval == "after":
            await self._after_gate(live, phase, outcome, ctx, state, outcomes, ended, runtime)
            return
        await self._phase_done(live, phase, outcome, ctx, state, outcomes, ended)

    async def _phase_done(self, live: _Live, phase: Phase, outcome: PhaseOutcome, ctx: RunContext, state: RunState,
                          outcomes: dict[str, PhaseOutcome], ended: MemoryObjectSendStream[str]) -> None:
        if outcome.succeeded and phase.expands:
            outcome = await self._expand(live, phase, outcome, state, ctx.run_id)
        state.ended(phase.name, outcome.status, outcome.cost_usd, outcome.cost_lower_bound)
        self._record(ctx.run_id, outcomes, outcome)
        ended.send_nowait(phase.name)

    def _ask(self, run_id: str, name: str, gate: str) -> None:
        self.journal.approval_asked(run_id, name, gate)
        self.log.warning("approval.waiting", phase=name, gate=gate, approve=f"claude-scope approve {run_id} {name}")
        self._notify(name, PhaseStatus.WAITING_APPROVAL, None)

    async def _tell_waiting(self, live: _Live, run_id: str, name: str, gate: str) -> None:
        """POST to the pipeline's ``approval_webhook`` that ``name`` waits (bounded, shielded; a failure is
        logged, the gate waits all the same)."""
        hook = live.pipeline.approval_webhook
        if hook is None:
            return
        with anyio.CancelScope(shield=True):
            await post_json(hook, gates.waiting_body(run_id, name, gate), log=self.log,
                            what=f"approval webhook for {name}")

    async def _before_gate(self, live: _Live, name: str, ctx: RunContext, state: RunState,
                           outcomes: dict[str, PhaseOutcome], ended: MemoryObjectSendStream[str]) -> None:
        """Wait for a person at a ``before`` gate: approved, the rules start it; rejected, it fails."""
        await self._tell_waiting(live, ctx.run_id, name, "before")
        decided = await gates.decision(lambda: self.journal.approval(ctx.run_id, name))
        self.log.info("approval.decided", phase=name, decision=decided["decision"], who=decided["who"])
        if gates.approved(decided):
            state.approve(name)
        else:
            outcome = gates.rejected(name, decided)
            state.ended(name, outcome.status, None)
            self._record(ctx.run_id, outcomes, outcome)
        ended.send_nowait(name)

    async def _after_gate(self, live: _Live, phase: Phase, outcome: PhaseOutcome, ctx: RunContext, state: RunState,
                          outcomes: dict[str, PhaseOutcome], ended: MemoryObjectSendStream[str],
                          runtime: PhaseRuntime | None = None) -> None:
        """The phase ran and passed: a person reviews its result and evidence. Approved, it succeeds;
        rejected, it fails; rejected with a retry, it runs again told the note, and waits again."""
        while True:
            if state.phases[phase.name].status is PhaseStatus.RUNNING:
                state.wait_after(phase.name)
            self._ask(ctx.run_id, phase.name, "after")
            self.journal.phase_ended(ctx.run_id, gates.waiting_outcome(outcome, ctx.run_id))
            ended.send_nowait(phase.name)  # its slot is free while a person looks
            await self._tell_waiting(live, ctx.run_id, phase.name, "after")
            decided = await gates.decision(lambda: self.journal.approval(ctx.run_id, phase.name))
            self.log.info("approval.decided", phase=phase.name, decision=decided["decision"], who=decided["who"])
            if gates.approved(decided):
                outcome = dataclasses.replace(outcome, message=f"ok; {gates.said(decided)}")
                break
            if not decided.get("retry"):
                outcome = gates.rejected(phase.name, decided, outcome)
                break
            state.rerun(phase.name)
            runtime = dataclasses.replace(
                runtime or PhaseRuntime(ctx.run_id, self.journal, self.project_dir, self.cli_path,
                                        observer=self.observer),
                first_attempt=outcome.attempts, feedback=gates.rejection_feedback(outcome.attempts, decided),
                earlier_costs=self.journal.attempt_costs(ctx.run_id, phase.name))
            with structlog.contextvars.bound_contextvars(run_id=ctx.run_id, phase=phase.name):
                outcome = await run_phase(phase, ctx, runtime)
            if not outcome.succeeded:
                break
        await self._phase_done(live, phase, outcome, ctx, state, outcomes, ended)

    async def _expand(self, live: _Live, planner: Phase, outcome: PhaseOutcome, state: RunState,
                      run_id: str) -> PhaseOutcome:
        """A planner succeeded: its plan joins the run (journalled first), or it fails as ``plan_invalid``.
        The file is read in a thread; the run's state changes here, in the loop's thread, with no await
        between the plan joining and the planner's end."""
        try:
            data, planned = await anyio.to_thread.run_sync(read_plan, live.pipeline, planner, self.project_dir)
            expanded = live.pipeline.expand(planner.name, planned)
        except PipelineError as exc:
            evidence = plan_failure(planner, exc)
            return dataclasses.replace(outcome, status=PhaseStatus.FAILED, kind=PhaseKind.PLAN_INVALID,
                                       message=evidence.evidence, checks=(*outcome.checks, evidence))
        names = [p.name for p in planned]
        self.journal.plan_added(run_id, planner.name, data, names, _describe(expanded))
        live.pipeline = expanded
        joined = set(names)
        state.expand(planner.name, tuple(p for p in expanded.run_plan().phases if p.name in joined))
        self.log.info("plan.joined", planner=planner.name, phases=len(names))
        return dataclasses.replace(outcome, checks=(*outcome.checks, plan_evidence(planner, names)))

    def _record(self, run_id: str, outcomes: dict[str, PhaseOutcome], outcome: PhaseOutcome) -> None:
        outcomes[outcome.name] = outcome
        self.journal.phase_ended(run_id, outcome)
        self._notify(outcome.name, outcome.status, outcome)
        self.observer.phase_ended(run_id, outcome)

    def _notify(self, name: str, status: PhaseStatus, outcome: PhaseOutcome | None) -> None:
        self.log.info("phase.status", phase=name, status=status.value,
                      kind=None if outcome is None else outcome.kind,
                      cost_usd=None if outcome is None else outcome.cost_usd)


class _Live:
    """The pipeline a run is running (a planner's plan joins it while it runs), and its approval gates."""

    def __init__(self, pipeline: Pipeline, wait_for_approval: bool = True,
                 awaiting: dict[str, PhaseOutcome] | None = None) -> None:
        self.pipeline = pipeline
        #: False: stop (resumable) once only people can move the run on
        self.wait_for_approval = wait_for_approval
        #: phases that ran and wait at their ``after`` gate, from the journal (a resume)
        self.awaiting = awaiting or {}
        self.stopped_waiting = False


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
    """End the CLI trees recorded in ``journal`` whose owner is gone (a killed orchestrator or worker), and
    remove their worktrees (undoing a merge cut short); return the CLIs' pids. Another owner's running CLI
    or worktree, on the same journal, is never touched."""
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
    await reap(journal.git_states(), journal.git_state_done, log)
    return tuple(ended)


def journalled_feedback(journal: Journal, run_id: str, name: str) -> str:
    """A resumed phase's first attempt is told what its last ended attempt was told it did wrong: rebuilt from
    the journal (its failure, stderr tail and check evidence), as the run that was interrupted would have."""
    ended = [a for a in journal.attempts(run_id) if a["name"] == name and a["ended"] is not None]
    if not ended:
        return ""
    last = max(ended, key=lambda a: a["number"])
    return redact(told_after(last["number"], query_ok=bool(last["ok"]), kind=last["kind"],
                             message=last["message"] or "", stderr_tail=last.get("stderr_tail") or "",
                             checks=json.loads(last.get("evidence") or "[]")))


def _check_caps(pipeline: Pipeline) -> None:
    """Caps this host cannot enforce are refused before the run, naming the phase (never ignored)."""
    for phase in pipeline.phases:
        if phase.memory_mb is not None or phase.max_pids is not None:
            try:
                check_caps(phase.memory_mb, phase.max_pids)
            except CapsError as exc:
                raise PipelineError(f"phase {phase.name!r}: {exc}") from None


def new_run_id() -> str:
    """A run id: sortable by start time, unique across concurrent orchestrators."""
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


def _describe(pipeline: Pipeline) -> dict[str, object]:
    return {"name": pipeline.name, "source": pipeline.source, "max_parallel": pipeline.max_parallel,
            "max_cost_usd": pipeline.max_cost_usd, "fail_fast": pipeline.fail_fast,
            "phases": [p.to_dict() for p in pipeline.phases]}
