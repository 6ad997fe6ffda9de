"""The pipeline as a Temporal workflow: the local orchestrator's scheduling, with history as its journal.

It schedules by the same rules as ``Orchestrator``, from the same module (``orchestrator._schedule``):
after each phase ends, the rules say which phases start and which are skipped, with the reason. Each
agent-level attempt is its own activity (its cost and outcome in history) and our ``RetryPolicy`` decides
another, after a backoff slept in the workflow; Temporal's own retries are for infrastructure only (a lost
worker, a missed heartbeat). ``status`` answers with every phase's record at any time.

Cancelling the workflow cancels the running attempts and waits until each has ended its CLI tree
(``WAIT_CANCELLATION_COMPLETED``, and the phase tasks gathered before the workflow closes), then closes as
cancelled.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy as TemporalRetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from .._cost import PhaseCap, sum_costs
    from .._fates import CANCELLED, fate, lost_words, won_words
    from .._gates import approved as gate_approved
    from .._gates import rejection_feedback, waiting_body, waiting_message
    from .._gates import said as gate_said
    from .._schedule import PhasePlan, RunPlan, RunState, Skip, Start, resolve_dependencies
    from .._status import PhaseStatus
    from ._records import attempt_feedback, backoff_s, should_retry
    from ._requests import (
        MAX_RUN_PHASES,
        WORKFLOW,
        AttemptRecord,
        AttemptRequest,
        PipelineRequest,
        RaceEnd,
        RaceEndResult,
        RunRecord,
    )
    from ._spec import lean_spec

ACTIVITY = "claude-scope-phase-attempt"
#: one variant of a race (an attempt of its own), and the end of a race: the winner merged, worktrees removed
VARIANT = "claude-scope-race-variant"
RACE_END = "claude-scope-race-end"
#: posts the pipeline's approval webhook from a worker (a workflow makes no HTTP calls itself)
NOTIFY = "claude-scope-notify"
#: the activity error type for a phase that failed in a way no retry will mend (details: its record)
PHASE_FAILED = "claude-scope.phase-failed"
#: the patch marking runs scheduled by the shared rules (``_schedule``), implicit order included
IMPLICIT_ORDER = "claude-scope-shared-rules"
#: the patch marking runs whose run budget is a cap (phases reserve their cap before they start)
RESERVATIONS = "claude-scope-budget-reservations"
#: the patch marking runs whose races run each variant as an activity (before: the race as one activity)
RACE_ACTIVITIES = "claude-scope-race-activities"
#: the patch marking runs that continue as new when their history grows long (see ``_roll_due``)
ROLLS = "claude-scope-continue-as-new"
#: what an attempt is handed of an earlier phase whose result its prompt reads
_HANDED_ON = ("name", "status", "result_text", "cost_usd", "num_turns", "session_id")
#: what an attempt's entry in a phase's ``history`` keeps of its record
_ATTEMPT_FACTS = ("query_ok", "kind", "message", "cost_usd", "cost_lower_bound", "num_turns", "session_id",
                  "query_id", "message_count", "stderr_tail", "cleanup", "host", "message_log", "prompt", "checks")


def _skipped(name: str, reason: str, kind: str | None = None) -> dict[str, Any]:
    return {"name": name, "status": "skipped", "attempts": 0, "cost_usd": None, "duration_s": 0.0, "kind": kind,
            "message": reason, "session_id": None, "num_turns": None, "checks": [], "retryable": False,
            "side_effects": False, "host": "", "message_log": ""}


def run_plan_of(plan: dict[str, Any], *, implicit_order: bool = True, reserve: bool = True) -> RunPlan:
    """The scheduling rules' plan from the workflow's plan (JSON, as ``PipelineSpec.plan`` makes it)."""
    declared = {p["name"]: tuple(p["depends_on"]) for p in plan["phases"]}
    deps = resolve_dependencies(declared) if implicit_order else declared
    return RunPlan(tuple(PhasePlan(p["name"], deps[p["name"]], p.get("max_cost_usd"), p.get("approval") or "")
                         for p in plan["phases"]),
                   int(plan["max_parallel"]), bool(plan["fail_fast"]), plan.get("max_cost_usd"), reserve)


#: a run with more phases than this (a big plan) answers its status query and result (and carries across
#: continue-as-new) each phase's record without the attempt facts its ``history`` repeats, and each text
#: (prompt, stderr, result) cut to what its share of ``_TEXT_BUDGET`` allows, so that they stay under
#: Temporal's 2 MB payload limit
_MANY_PHASES = 100
_TEXT_BUDGET = 100_000
#: what a phase's record repeats of its last attempt's entry in ``history`` (the run page reads the entry)
_REPEATED = ("prompt", "stderr_tail", "cleanup", "message_log", "host", "query_id", "message_count")


def _within_limits(phases: dict[str, dict[str, Any]], whole: frozenset[str] = frozenset()
                   ) -> dict[str, dict[str, Any]]:
    """``phases`` as a payload may carry them (see ``_MANY_PHASES``); the phases in ``whole`` keep their
    result text whole: a phase yet to run reads it (``_read_later``), so a roll must not cut it."""
    if len(phases) <= _MANY_PHASES:
        return phases
    keep = max(50, min(1000, _TEXT_BUDGET // len(phases)))

    def cut(entry: dict[str, Any]) -> dict[str, Any]:
        return {k: (v[:keep] if k in ("prompt", "stderr_tail", "result_text") and isinstance(v, str) else v)
                for k, v in entry.items()}

    def lean(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in _REPEATED} if record.get("history") else record

    return {name: {**cut(lean(record)), "history": [cut(h) for h in record.get("history", [])],
                   **({"result_text": record.get("result_text")} if name in whole else {})}
            for name, record in phases.items()}


def _read_later(specs: dict[str, dict[str, Any]], phases: dict[str, dict[str, Any]]) -> frozenset[str]:
    """The phases whose result a phase that has not run yet hands on (its prompt's ``phases.NAME``)."""
    return frozenset(read for name, spec in specs.items() if phases.get(name, {}).get("status") == "pending"
                     for read in spec.get("hands_on", ()))


def _summed_cost(history: list[dict[str, Any]]) -> dict[str, Any]:
    cost, lower_bound = sum_costs(entry.get("cost_usd") for entry in history)
    # an attempt's own cost may be a lower bound (a race's cancelled variants)
    return {"cost_usd": cost, "cost_lower_bound": lower_bound or any(e.get("cost_lower_bound") for e in history)}


def _fate(record: dict[str, Any] | None, won: bool) -> str:
    got = record or {}
    return fate(won=won, ran=record is not None, passed=got.get("status") == PhaseStatus.SUCCEEDED.value,
                query_ok=bool(got.get("query_ok")), kind=got.get("kind"), message=str(got.get("message") or ""),
                checks=got.get("checks") or ())


def _race_record(variants: list[str], results: dict[int, dict[str, Any] | None], winner: int | None,
                 fates: dict[str, str], end: RaceEndResult, gone_ms: float | None) -> dict[str, Any]:
    """A race's phase record (as the local race's ``Tried`` becomes an outcome): the winner's, with its merge
    and the race's evidence; or, when every variant failed, the first failed query's (else the first's),
    with every variant's checks under its name."""
    if winner is None:
        ran = {i: r for i, r in sorted(results.items()) if r is not None}
        chosen = dict(next((r for r in ran.values() if not r.get("query_ok")), next(iter(ran.values()))))
        checks = [{**c, "name": f"{variants[i]}:{c['name']}"} for i, r in ran.items() for c in r.get("checks") or ()]
        checks.append({"name": "race", "passed": False, "evidence": lost_words(fates),
                       "details": {"race": "lost", "variants": fates}})
        if chosen.get("query_ok"):
            failed = [c for c in checks if not c["passed"]]
            chosen.update(kind="validation_failed", message="; ".join(f"{c['name']}: {c['evidence']}" for c in failed))
        return {**chosen, "status": "failed", "checks": checks, "worktree": None}
    won = dict(results[winner] or {})
    race = {"name": "race", "passed": True, "evidence": won_words(variants[winner], fates),
            "details": {"race": "won", "winner": variants[winner], "variants": fates, "losers_gone_ms": gone_ms}}
    merge = end.merge
    checks = [*won["checks"], *([merge] if merge else []), race]
    record = {**won, "checks": checks, "worktree": None}
    if end.error:
        return {**record, "status": "failed", "kind": "isolation_failed", "message": end.error}
    if merge and not merge["passed"]:
        kind = "merge_conflict" if merge.get("details", {}).get("merge") == "conflict" else "validation_failed"
        return {**record, "status": "failed", "kind": kind, "message": f"merge: {merge['evidence']}"}
    return record


@workflow.defn(name=WORKFLOW)
class PipelineWorkflow:
    def __init__(self) -> None:
        self._phases: dict[str, dict[str, Any]] = {}
        self._run_id = ""
        self._state = "running"
        self._plan: dict[str, Any] = {}
        self._spec: dict[str, Any] = {}
        self._order: list[str] = []
        #: the scheduling rules' state (gates change it from their tasks)
        self._rules = RunState(RunPlan(()))
        #: decisions signalled for waiting phases, not yet taken
        self._decisions: dict[str, dict[str, Any]] = {}
        #: a gate gave back its slot: the run loop asks the rules again
        self._wake = False
        #: the run is being cancelled: an attempt that ended anyway starts no other
        self._cancelling = False
        #: how many runs before this one the run continued from (continue-as-new)
        self._rolls = 0
        #: when the run's first run started (workflow time)
        self._started = 0.0
        self._max_phases = MAX_RUN_PHASES

    @workflow.run
    async def run(self, request: PipelineRequest) -> RunRecord:
        self._spec = request.spec
        self._run_id = request.run_id
        carried = request.carried
        if carried is None:
            plan, started = request.plan, workflow.time()
            names = [p["name"] for p in plan["phases"]]
            specs = {p["name"]: p for p in plan["phases"]}
            self._phases = {n: _skipped(n, "not started yet") | {"status": "pending", "message": ""} for n in names}
            # Runs started before the rules were shared took each phase's declared dependencies only, so a
            # pipeline without depends_on ran every phase whatever the one before did; their histories replay so.
            state = RunState.new(run_plan_of(plan, implicit_order=workflow.patched(IMPLICIT_ORDER),
                                             reserve=workflow.patched(RESERVATIONS)))
        else:  # continued as new (see _roll): where the run before stood, planned phases' tables included
            plan, started, names = carried["plan"], float(carried["started"]), list(carried["order"])
            specs = {p["name"]: p | ({"table": carried["tables"][p["name"]]} if p["name"] in carried["tables"]
                                     else {}) for p in plan["phases"]}
            self._phases, self._rolls = dict(carried["phases"]), int(carried["rolls"])
            state = RunState.from_data(carried["rules"])
        self._plan, self._order, self._rules = plan, names, state
        self._started = started
        self._max_phases = request.max_run_phases
        rolls = workflow.patched(ROLLS)  # runs started before this never continue as new
        running: dict[str, asyncio.Task[dict[str, Any]]] = {}
        errors: list[BaseException] = []
        try:
            while True:
                rolling = rolls and self._roll_due(request)
                for step in [] if rolling else state.drain():
                    if isinstance(step, Start):
                        running[step.name] = asyncio.create_task(
                            self._attempts(request, specs[step.name], step.cap_usd))
                    elif isinstance(step, Skip):
                        self._phases[step.name] = _skipped(step.name, step.reason,
                                                           None if step.kind is None else step.kind.value)
                    else:  # a before gate: a signal decides (see _gate)
                        running[step.name] = asyncio.create_task(self._before_gate(step.name))
                if state.done:
                    break
                if rolling and not running:  # every phase started has ended: the next run takes over
                    workflow.continue_as_new(self._carry(request, specs, started))
                await workflow.wait_condition(lambda: self._wake or any(t.done() for t in running.values()))
                self._wake = False  # an after gate gave back its slot: the rules may start another phase
                for name in [n for n, t in running.items() if t.done()]:
                    task = running.pop(name)
                    error = asyncio.CancelledError() if task.cancelled() else task.exception()
                    if error is not None:
                        # a defect of ours: the phase is failed with its cause; the run fails once all ended
                        errors.append(error)
                        state.ended(name, PhaseStatus.FAILED, None)
                        self._phases[name].update(status="failed", kind="unexpected",
                                                  message=f"{type(error).__name__}: {error}")
                        continue
                    if task.result().get("_approved"):  # a before gate opened: the rules start it
                        state.approve(name)
                        self._phases[name] = {**self._phases[name], "status": "pending"}
                        continue
                    record = self._phases[name] = task.result()
                    planned = record.pop("plan", None)  # a planner's: its phases join (history has it, for replay)
                    if planned and record["status"] == "succeeded":
                        self._join(name, planned, state, specs, names)
                    state.ended(name, PhaseStatus(record["status"]), record["cost_usd"],
                                bool(record.get("cost_lower_bound")))
        except asyncio.CancelledError:
            # the run is cancelled: every running attempt is cancelled and waited for until it has ended its
            # CLI tree (WAIT_CANCELLATION_COMPLETED), so the workflow does not close first
            self._cancelling = True
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)
            self._close_unfinished()
            self._state = "cancelled"
            raise
        if errors:  # a defect of ours: fail the run with its cause rather than retry the workflow task forever
            self._state = "failed"
            raise ApplicationError(f"{type(errors[0]).__name__}: {errors[0]}", non_retryable=True)
        self._state = "succeeded" if all(r["status"] == "succeeded" for r in self._phases.values()) else "failed"
        return RunRecord(self._run_id, plan["name"], self._plan, _within_limits(self._phases), names, self._spent(),
                         duration_s=workflow.time() - started, budget_exhausted=state.budget_exhausted,
                         rolls=self._rolls, started=started)

    def _roll_due(self, request: PipelineRequest) -> bool:
        """Time to continue as new: the server suggests it (its history grows long: a big plan), or the run
        has more events than ``roll_after_events``; never while a phase waits for a person (its signal goes
        to this run; the roll waits until the decision is taken)."""
        if self._rules.waiting:
            return False
        info = workflow.info()
        after = int(request.roll_after_events)
        return (after > 0 and info.get_current_history_length() >= after) or info.is_continue_as_new_suggested()

    def _carry(self, request: PipelineRequest, specs: dict[str, dict[str, Any]], started: float) -> PipelineRequest:
        """What the next run starts from: every phase's record (cut as the result is, for a big run, but for
        the results that phases yet to run read), the plan with its expansions and the planned phases'
        tables, the rules' state; the same run id."""
        return dataclasses.replace(request, carried={
            "phases": _within_limits(self._phases, _read_later(specs, self._phases)),
            "order": list(self._order), "plan": self._plan,
            "tables": {n: spec["table"] for n, spec in specs.items() if "table" in spec},
            "rules": self._rules.to_data(), "started": started, "rolls": self._rolls + 1})

    def _join(self, planner: str, plan: dict[str, Any], state: RunState, specs: dict[str, dict[str, Any]],
              names: list[str]) -> None:
        """A planner's phases join the run right after it (the worker checked the plan; the names are checked
        here, against the whole run): scheduled by the rules, each attempt given its phase's own table."""
        entries, tables = plan["entries"], plan["tables"]
        clash = sorted({e["name"] for e in entries} & set(specs))
        most = self._max_phases
        if clash or len(specs) + len(entries) > most:
            why = (f"planned phases {clash} are already in the run" if clash else
                   f"the plan would make the run {len(specs) + len(entries)} phases; a run on Temporal has at most "
                   f"{most} (every phase's record travels in its result and status, each under "
                   "Temporal's 2 MB payload limit): split the work into runs")
            self._phases[planner].update(status="failed", kind="plan_invalid", message=why)
            return
        state.expand(planner, tuple(PhasePlan(e["name"], tuple(e["depends_on"]), e.get("max_cost_usd"),
                                              e.get("approval") or "") for e in entries))
        for entry, table in zip(entries, tables, strict=True):
            specs[entry["name"]] = {**entry, "table": table}
            self._phases[entry["name"]] = _skipped(entry["name"], "") | {"status": "pending"}
        at = names.index(planner) + 1
        names[at:at] = [e["name"] for e in entries]
        self._order = names
        self._plan = {**self._plan, "phases": [
            {k: v for k, v in specs[n].items() if k != "table"} for n in names]}

    async def _before_gate(self, name: str) -> dict[str, Any]:
        """A ``before`` gate: approved, the phase is handed back to the rules (``_approved``); rejected, it fails."""
        decided = await self._gate(name, "before", self._phases[name])
        if gate_approved(decided):
            return {"_approved": True}
        return {**_skipped(name, gate_said(decided), "rejected"), "status": "failed"}

    async def _gate(self, name: str, gate: str, record: dict[str, Any]) -> dict[str, Any]:
        """Wait, durably, for the ``decide`` signal on ``name``; an ``after`` gate gives back its slot first."""
        if gate == "after":
            self._rules.wait_after(name)
            self._wake = True
        asked = {"gate": gate, "asked": workflow.time()}
        self._phases[name] = {**record, "status": "waiting_approval", "gate": gate,
                              "message": waiting_message(gate, self._run_id, name),
                              "approvals": [*record.get("approvals", []), asked]}
        if self._plan.get("approval_webhook"):
            await workflow.execute_activity(NOTIFY, args=[self._spec, waiting_body(self._run_id, name, gate, "...")],
                                            start_to_close_timeout=timedelta(seconds=60),
                                            retry_policy=TemporalRetryPolicy(maximum_attempts=3))
        await workflow.wait_condition(lambda: name in self._decisions)
        decided = {**self._decisions.pop(name), "decided": workflow.time()}
        asked.update(decided)
        return decided

    @workflow.signal(name="decide")
    def decide(self, decision: dict[str, Any]) -> None:
        """A person's decision on a waiting phase: ``{phase, decision: approved|rejected, who, note, retry}``.
        One for a phase that is not waiting is ignored (the client checks first, and says so)."""
        name = str(decision.get("phase", ""))
        if self._phases.get(name, {}).get("status") == "waiting_approval":
            self._decisions[name] = dict(decision)

    def _close_unfinished(self) -> None:
        for record in self._phases.values():
            if record["status"] in ("pending", "running"):
                record.update(status="cancelled", kind="cancelled", message="run cancelled")

    def _spent(self) -> float:
        return sum(r["cost_usd"] or 0.0 for r in self._phases.values())

    async def _attempts(self, request: PipelineRequest, phase: dict[str, Any], cap_usd: float | None) -> dict[str, Any]:
        name, retry = phase["name"], phase["retry"]
        cap = PhaseCap(cap_usd)  # what the attempts may spend together; each is given what is left
        feedback = ""  # what the next attempt is told of the one before, when the phase learns
        attempt = 0
        history: list[dict[str, Any]] = []  # each attempt as the workflow timed it (the run page's timeline)
        # a race's variants are activities of their own (runs started before ran a race as one activity)
        race = bool(phase.get("variants")) and workflow.patched(RACE_ACTIVITIES)
        while True:
            if self._cancelling:  # an attempt that ended as the run was cancelled: no other starts
                raise asyncio.CancelledError()
            attempt += 1
            if race:
                record = await self._race(request, phase, attempt, cap, feedback, history)
            else:
                record = await self._one(request, phase, attempt, cap, feedback, history, cap_usd)
            record["history"] = list(history)
            record.update(_summed_cost(history), reserved_usd=cap_usd)  # every attempt's spend, and its cap
            if record["status"] == "succeeded" and phase.get("approval") == "after":
                decided = await self._gate(name, "after", record)
                if gate_approved(decided):
                    return {**record, "message": f"ok; {gate_said(decided)}"}
                if not decided.get("retry"):
                    return {**record, "status": "failed", "kind": "rejected", "message": gate_said(decided)}
                self._rules.rerun(name)  # a person in the retry loop: again, told the note
                feedback = rejection_feedback(attempt, decided)
                continue
            if not should_retry(retry, record, attempt) or not cap.has_room():
                return record
            feedback = attempt_feedback(retry, record, attempt)
            self._phases[name] = {**record, "status": "running"}
            await asyncio.sleep(backoff_s(retry, attempt, workflow.random().random()))  # a durable timer

    def _request(self, request: PipelineRequest, phase: dict[str, Any], number: int, allowed: float | None,
                 feedback: str, variant: str = "") -> AttemptRequest:
        return AttemptRequest(
            self._run_id, request.spec if "table" not in phase else lean_spec(request.spec), phase["name"],
            number, float(request.heartbeat_timeout_s), allowed, feedback,
            # the earlier phases its prompt reads (only those: an activity's input stays small)
            {n: {k: self._phases[n].get(k) for k in _HANDED_ON} for n in phase.get("hands_on", ())},
            phase_table=phase.get("table"), variant=variant)

    def _attempt_options(self, request: PipelineRequest, phase: dict[str, Any]) -> dict[str, Any]:
        return {
            # the phase's own timeout is enforced by the wrapper inside; this only bounds a lost one
            "start_to_close_timeout": timedelta(seconds=float(phase["timeout_s"] or 86400) * 2 + 60),
            "heartbeat_timeout": timedelta(seconds=float(request.heartbeat_timeout_s)),
            "retry_policy": TemporalRetryPolicy(initial_interval=timedelta(seconds=1),
                                                maximum_interval=timedelta(seconds=10),
                                                non_retryable_error_types=[PHASE_FAILED]),
            "cancellation_type": workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        }

    async def _one(self, request: PipelineRequest, phase: dict[str, Any], attempt: int, cap: PhaseCap,
                   feedback: str, history: list[dict[str, Any]], cap_usd: float | None) -> dict[str, Any]:
        """One attempt as one activity (a race too, in workflows started before its variants were activities)."""
        name = phase["name"]
        history.append({"number": attempt, "started": workflow.time(), "ended": None})
        self._phases[name] = {**self._phases[name], "status": "running", "attempts": attempt,
                              "history": list(history), "reserved_usd": cap_usd}
        try:
            result: AttemptRecord = await workflow.execute_activity(
                ACTIVITY, self._request(request, phase, attempt, cap.left(), feedback), result_type=AttemptRecord,
                **self._attempt_options(request, phase))
            record = result.to_data()
        except ActivityError as exc:
            cause = exc.cause
            if is_cancelled_exception(exc) or isinstance(cause, CancelledError):
                history[-1].update(ended=workflow.time(), kind="cancelled", message="run cancelled")
                self._phases[name] = {**self._phases[name], "status": "cancelled", "kind": "cancelled",
                                      "message": "run cancelled", "history": list(history), **_summed_cost(history)}
                raise
            if isinstance(cause, ApplicationError) and cause.type == PHASE_FAILED and cause.details:
                record = AttemptRecord.of(cause.details[0]).to_data()
            else:  # our activity failed in a way it does not report itself: say so, with its type
                record = _skipped(name, f"the attempt failed: {type(cause).__name__}: {cause}", "unexpected")
                record.update(status="failed", attempts=attempt)
        record["attempts"] = max(attempt, int(record.get("attempts") or 0))  # a race's variants count each
        cap.charge(record.get("cost_usd"), cap.left())
        history[-1].update({k: record.get(k) for k in _ATTEMPT_FACTS}, ended=workflow.time())
        return record

    async def _race(self, request: PipelineRequest, phase: dict[str, Any], round_: int, cap: PhaseCap,
                    feedback: str, history: list[dict[str, Any]]) -> dict[str, Any]:
        """One round of a race: each variant an activity (attempts ``first``...), the first to pass (its CLI
        result and checks) wins, ties by declared order; the others' activities are cancelled and waited for
        (each ends its CLI tree and removes its worktree on the worker), then ``RACE_END`` merges the winner
        on the same host. Each variant is an attempt of its own in ``history``, charged its cost, or all it
        was given when that is unknown (a cancelled one)."""
        name, variants = phase["name"], list(phase["variants"])
        first, started = (round_ - 1) * len(variants) + 1, workflow.time()
        left = cap.left()
        each = None if left is None else left / len(variants)  # the run budget reserved every variant's cap
        entries = [{"number": first + i, "variant": v, "started": started, "ended": None}
                   for i, v in enumerate(variants)]
        history.extend(entries)
        self._phases[name] = {**self._phases[name], "status": "running", "attempts": first + len(variants) - 1,
                              "history": list(history)}
        tasks = [asyncio.create_task(self._variant(request, phase, first + i, v, each, feedback))
                 for i, v in enumerate(variants)]
        results: dict[int, dict[str, Any] | None] = {}  # None: cancelled, its cost unknown

        def settle(i: int, record: dict[str, Any] | None) -> None:
            results[i] = record
            cap.charge(None if record is None else record.get("cost_usd"), each)
            facts = ({"kind": "cancelled", "message": CANCELLED, "cost_usd": None, "cost_lower_bound": True}
                     if record is None else {k: record.get(k) for k in _ATTEMPT_FACTS})
            entries[i].update(facts, ended=workflow.time())

        def passed(i: int) -> bool:
            record = results.get(i)
            return record is not None and record["status"] == PhaseStatus.SUCCEEDED.value

        try:
            winner = None
            while winner is None and len(results) < len(tasks):
                await workflow.wait_condition(lambda: any(t.done() for i, t in enumerate(tasks) if i not in results))
                for i, task in enumerate(tasks):
                    if i not in results and task.done():
                        settle(i, task.result())
                winner = next((i for i in sorted(results) if passed(i)), None)
            decided = workflow.time()
            losers = [i for i in range(len(tasks)) if i not in results]
            for i in losers:
                tasks[i].cancel()
            for i, ended in zip(losers, await asyncio.gather(*(tasks[i] for i in losers), return_exceptions=True),
                                strict=True):
                settle(i, ended if isinstance(ended, dict) else None)
            gone_ms = round((workflow.time() - decided) * 1000, 2) if losers else None
            held = [r["worktree"] for i, r in results.items() if i != winner and r and r.get("worktree")]
            end = await self._race_end(name, first + (winner or 0),
                                       None if winner is None else results[winner], held)
        except asyncio.CancelledError:
            # the run is cancelled: so is each variant's activity (each ends its tree and worktree on the
            # worker); worktrees of variants that had passed are removed there before the workflow closes
            for task in tasks:
                task.cancel()
            ended_all = await asyncio.gather(*tasks, return_exceptions=True)
            held = [r["worktree"] for r in [*results.values(), *ended_all] if isinstance(r, dict) and r.get("worktree")]
            if held:
                await self._race_end(name, 0, None, held)
            for entry in entries:
                if entry["ended"] is None:
                    entry.update(ended=workflow.time(), kind="cancelled", message="run cancelled")
            self._phases[name] = {**self._phases[name], "status": "cancelled", "kind": "cancelled",
                                  "message": "run cancelled", "history": list(history), **_summed_cost(history)}
            raise
        fates = {variants[i]: _fate(results[i], i == winner) for i in range(len(variants))}
        record = _race_record(variants, results, winner, fates, end, gone_ms)
        if winner is not None:  # the winning attempt carries its merge and the race's evidence (as the journal's)
            entries[winner]["checks"] = record["checks"]
        return {**record, "attempts": first + len(variants) - 1, "duration_s": workflow.time() - started}

    async def _variant(self, request: PipelineRequest, phase: dict[str, Any], number: int, variant: str,
                       allowed: float | None, feedback: str) -> dict[str, Any] | None:
        """One variant's activity: its record, or None when it was cancelled (another won, or the run ended)."""
        try:
            result: AttemptRecord = await workflow.execute_activity(
                VARIANT, self._request(request, phase, number, allowed, feedback, variant), result_type=AttemptRecord,
                **self._attempt_options(request, phase))
            return result.to_data()
        except ActivityError as exc:
            cause = exc.cause
            if is_cancelled_exception(exc) or isinstance(cause, CancelledError):
                return None
            failed = _skipped(phase["name"], f"variant {variant!r} failed: {type(cause).__name__}: {cause}",
                              "unexpected")
            return {**failed, "status": "failed", "attempts": 1, "variant": variant, "worktree": None}

    async def _race_end(self, name: str, number: int, winner: dict[str, Any] | None,
                        held: list[dict[str, Any]]) -> RaceEndResult:
        """Merge the winner and remove every worktree held, on the worker's host (the phase's queue)."""
        if winner is None and not held:
            return RaceEndResult()
        try:
            ended: RaceEndResult = await workflow.execute_activity(
                RACE_END, RaceEnd(self._run_id, name, number, None if winner is None else winner["worktree"], held),
                result_type=RaceEndResult,
                start_to_close_timeout=timedelta(minutes=30),
                retry_policy=TemporalRetryPolicy(maximum_attempts=3),
                # not cancelled half-way: a merge ends done or undone, the worktrees removed, then the run closes
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
            return ended
        except ActivityError as exc:
            return RaceEndResult(error=f"the race's end failed on the worker: {exc.cause}")

    @workflow.query(name="status")
    def status(self) -> RunRecord:
        return RunRecord(self._run_id, self._plan.get("name", ""), self._plan, _within_limits(self._phases),
                         list(self._order), self._spent(), self._state, rolls=self._rolls, started=self._started)
