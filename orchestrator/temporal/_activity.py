"""A phase attempt as a Temporal activity: the local orchestrator's phase core, run once, on this worker.

``run_phase`` (the same code path as ``Orchestrator``) runs the attempt; our ``RetryPolicy`` is the
workflow's to apply, so the phase is run here without one. While the query streams, a background task
heartbeats (a cancel reaches an activity only through a heartbeat), carrying ``{host, pid, create_time,
query_id}`` of the CLI: the memo a retry of this attempt on the same host reads to end the tree a dead
worker left. The host's journal keeps the same record (heartbeats are throttled; the journal is not), and
the message JSONL; history gets the small record of ``outcome_record``.

A phase that failed in a way no retry mends is raised as a non-retryable ``ApplicationError`` (type
``PHASE_FAILED``, its record in the details), so the Temporal UI shows it failed and Temporal does not retry
it; a failure our policy may retry comes back as a record, for the workflow to decide.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from temporalio import activity
from temporalio.exceptions import ApplicationError

from sdk_wrapper import QueryOutcome, end_query_tree, get_logger, redact
from sdk_wrapper.lowlevel import post_json

from .._context import RunContext
from .._engine import end_orphans
from .._execute import PhaseRuntime, run_phase
from .._git import GitCommandError
from .._journal import Journal
from .._model import PhaseOutcome, PipelineError
from .._owner import same_process
from .._plan import plan_evidence, plan_failure
from .._status import PhaseKind, PhaseStatus
from .._worktree import Isolation, Worktree
from ._records import outcome_from_record, outcome_record
from ._requests import AttemptRecord, AttemptRequest, RaceEnd, RaceEndResult
from ._spec import PipelineSpec, planned_phase, planned_pipeline, planned_record
from ._workflow import ACTIVITY, NOTIFY, PHASE_FAILED, RACE_END, VARIANT

#: the activity error type for a pipeline the worker cannot build (a retry would fail the same way)
BAD_PIPELINE = "claude-scope.bad-pipeline"
#: how often the running attempt heartbeats (the worker throttles what it sends; see _worker)
HEARTBEAT_TICK_S = 0.1


def worktree_data(wt: Worktree) -> dict[str, Any]:
    """A held worktree as it travels through the workflow to ``race_end`` (JSON)."""
    return {**dataclasses.asdict(wt), "path": str(wt.path)}


def worktree_of(data: dict[str, Any]) -> Worktree:
    return Worktree(**{**data, "path": Path(data["path"])})


async def _end_all(isolation: Isolation, held: list[Worktree]) -> None:
    for wt in held:
        await isolation.end(wt)


class _HostRecorder:
    """What a worker host keeps of an attempt: its live CLI (for reaping) and its message log. Runs, phases
    and attempts are history's, so those calls of the phase core record nothing here."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.memo: dict[str, Any] = {}
        self.log_path = ""
        self.prompt = ""

    def phase_running(self, run_id: str, name: str, attempt: int, prompt: str = "", variant: str = "") -> None:
        self.prompt = prompt  # for the attempt's record in history

    def phase_ended(self, run_id: str, outcome: PhaseOutcome) -> None:
        pass

    def message_log(self, run_id: str, name: str, attempt: int) -> Path:
        path = self.journal.message_log(run_id, name, attempt)
        self.log_path = str(path)
        return path

    def process_started(self, run_id: str, name: str, pid: int, create_time: float, query_id: str) -> None:
        self.journal.process_started(run_id, name, pid, create_time, query_id)
        self.memo = {"host": socket.gethostname(), "pid": pid, "create_time": create_time, "query_id": query_id}
        activity.heartbeat(self.memo)  # at once, not at the next tick: a worker may die within the tick

    def attempt_checked(self, run_id: str, name: str, number: int, checks: list[dict[str, Any]]) -> None:
        pass  # the attempt's record in history carries them

    def attempt_ended(self, run_id: str, name: str, number: int, outcome: QueryOutcome) -> None:
        if outcome.query_id is not None:
            self.journal.forget_query(run_id, name, outcome.query_id)

    def git_state_added(self, key: str, run_id: str, name: str, kind: str, data: dict[str, Any]) -> None:
        self.journal.git_state_added(key, run_id, name, kind, data)  # worktrees live on this host

    def git_state_done(self, key: str) -> None:
        self.journal.git_state_done(key)


class PhaseActivities:
    """The activities of one worker: where its phases run (``workspace``) and its host journal."""

    def __init__(self, workspace: Path, journal: Journal, cli_path: str | None = None) -> None:
        self.workspace = workspace
        self.journal = journal
        self.cli_path = cli_path
        self.log = get_logger()

    @activity.defn(name=ACTIVITY)
    async def attempt(self, request: AttemptRequest) -> AttemptRecord:
        record = await self._attempt(request)
        if record.status != PhaseStatus.SUCCEEDED.value and not record.retryable:
            raise ApplicationError(f"phase {request.phase!r} {record.status}: {record.message}", record,
                                   type=PHASE_FAILED, non_retryable=True)
        return record

    @activity.defn(name=VARIANT)
    async def variant(self, request: AttemptRequest) -> AttemptRecord:
        """One variant of a race, alone: its record whatever it did (the workflow judges the race). One that
        passed keeps its worktree, named in the record (``worktree``), for ``race_end`` to merge or remove."""
        held: list[Worktree] = []
        try:
            record = await self._attempt(request, hold=held.append)
        except BaseException:  # cancelled after it passed: nobody would end what it holds
            with anyio.CancelScope(shield=True):
                await self._end_held(request.run_id, request.phase, held)
            raise
        return dataclasses.replace(record, variant=request.variant, worktree=worktree_data(held[0]) if held else None)

    @activity.defn(name=RACE_END)
    async def race_end(self, request: RaceEnd) -> RaceEndResult:
        """The end of a race the workflow decided: the winner's worktree merged into the checkout (as attempt
        ``number``), then it and every other one still held removed: the merge's check, or why there is none
        (a winner whose worktree is gone, its worker dead and the next one's reaping done, is an error, never
        a merge of nothing)."""
        winner = None if request.winner is None else worktree_of(request.winner)
        held = [*([winner] if winner is not None else []), *map(worktree_of, request.held)]
        try:
            isolation = await Isolation.open(self.workspace, self.journal, request.run_id, request.phase)
        except PipelineError as exc:  # not a repository any more: nothing to merge into, nothing to remove
            return RaceEndResult(error=str(exc))
        try:
            if winner is not None and not await anyio.Path(winner.path).is_dir():
                return RaceEndResult(error=f"the winner's worktree {winner.path} is gone before its merge "
                                           "(did its worker end?)")
            if winner is not None:
                return RaceEndResult((await isolation.bring_back(winner, request.number)).to_dict())
            return RaceEndResult()
        except GitCommandError as exc:
            return RaceEndResult(error=str(exc))
        finally:
            await _end_all(isolation, held)

    async def _end_held(self, run_id: str, name: str, held: list[Worktree]) -> None:
        if held:
            await _end_all(await Isolation.open(self.workspace, self.journal, run_id, name), held)

    async def _attempt(self, request: AttemptRequest, hold: Callable[[Worktree], None] | None = None
                       ) -> AttemptRecord:
        info = activity.info()
        await self._end_previous(info.heartbeat_details)
        run_id, name, attempt = request.run_id, request.phase, request.attempt
        try:
            spec = PipelineSpec.from_json(request.spec)
            if request.phase_table is None:
                pipeline = spec.pipeline(self.workspace)
                found = pipeline.phase(name)
            else:  # a planned phase: its own table, and only the pipeline's settings (the spec sent is lean)
                found = planned_phase(spec, request.phase_table, self.workspace)
                pipeline = planned_pipeline(spec, found)
        except PipelineError as exc:  # the same on every retry: fail the attempt, do not loop on it
            raise ApplicationError(f"the pipeline cannot run on this worker: {exc}", type=BAD_PIPELINE,
                                   non_retryable=True) from None
        # one attempt: the workflow applies the retry policy and hands this attempt its feedback
        phase = dataclasses.replace(found, retry=None, feedback=False)
        recorder = _HostRecorder(self.journal)
        # a variant is attempt ``attempt`` itself; a race run as one activity (workflows started before
        # variants were activities) numbers its variants apart (message logs)
        first = attempt - 1 if request.variant else (attempt - 1) * max(1, len(phase.variants))
        # what the workflow gives this attempt of the phase's cap (absent from workflows started before caps)
        runtime = PhaseRuntime(run_id, recorder, self.workspace, self.cli_path, first_attempt=first,
                               cap_usd=request.max_cost_usd, feedback=redact(request.feedback),
                               variant=request.variant, hold=hold)

        async def beat() -> None:
            while True:
                activity.heartbeat(recorder.memo)
                await anyio.sleep(HEARTBEAT_TICK_S)

        async with anyio.create_task_group() as tg:
            tg.start_soon(beat)
            handed_on = {n: outcome_from_record(r) for n, r in request.handed_on.items()}
            outcome = await run_phase(phase, RunContext(run_id, self.workspace, handed_on), runtime)
            tg.cancel_scope.cancel()
        plan = None
        if outcome.succeeded and phase.expands:  # a planner: its plan travels back with its record
            try:
                plan = await anyio.to_thread.run_sync(planned_record, pipeline, phase, self.workspace)
                outcome = dataclasses.replace(outcome, checks=(*outcome.checks, plan_evidence(
                    phase, [t["name"] for t in plan["tables"]])))
            except PipelineError as exc:
                evidence = plan_failure(phase, exc)
                outcome = dataclasses.replace(outcome, status=PhaseStatus.FAILED, kind=PhaseKind.PLAN_INVALID,
                                              message=evidence.evidence, checks=(*outcome.checks, evidence))
        record = outcome_record(outcome, host=socket.gethostname(), message_log=recorder.log_path,
                                prompt=recorder.prompt)
        if plan is not None:
            record.plan = plan
        return record

    @activity.defn(name=NOTIFY)
    async def notify(self, spec: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to the pipeline's approval webhook, its header values read from this worker's
        environment; what the delivery did (a failure is reported, not raised: the gate waits anyway)."""
        try:
            hook = PipelineSpec.from_json(spec).pipeline(self.workspace).approval_webhook
        except PipelineError as exc:
            return {"delivered": False, "error": str(exc)}
        if hook is None:
            return {"delivered": False, "error": "no approval_webhook"}
        delivery = await post_json(hook, body, log=self.log, what=f"approval webhook for {body.get('phase')}")
        return {"delivered": delivery.delivered, "status": delivery.status_code, "error": delivery.error}

    async def _end_previous(self, details: Any) -> None:
        """A retry of an attempt whose worker died: end the tree it left, if it ran on this host. Trees of
        dead owners recorded in this host's journal are ended too (the heartbeat may not have carried it)."""
        memo = details[0] if details else None
        if isinstance(memo, dict) and memo.get("host") == socket.gethostname() and memo.get("query_id"):
            pid = memo.get("pid")
            root = pid if isinstance(pid, int) and same_process(pid, float(memo.get("create_time") or 0)) else None
            ended = await end_query_tree(str(memo["query_id"]), root)
            if ended:
                self.log.warning("orphans.ended", source="heartbeat", pids=list(ended))
        await end_orphans(self.journal, self.log)



