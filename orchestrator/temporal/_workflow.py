"""The pipeline as a Temporal workflow: the local orchestrator's scheduling, with history as its journal.

It schedules by the spec's plan as ``Orchestrator`` does: a phase waits for its dependencies and is
skipped (with the reason) when one did not succeed; at most ``max_parallel`` run at once; ``fail_fast``
skips what has not started; the run budget skips new phases once spent. Each agent-level attempt is its
own activity (its cost and outcome in history) and our ``RetryPolicy`` decides another, after a backoff
slept in the workflow; Temporal's own retries are for infrastructure only (a lost worker, a missed
heartbeat). ``status`` answers with every phase's record at any time.

Cancelling the workflow cancels the running attempts and waits until each has ended its CLI tree
(``WAIT_CANCELLATION_COMPLETED``; phases are gathered with ``return_exceptions`` so the workflow does not
close first), then closes as cancelled.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy as TemporalRetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from ._spec import backoff_s, should_retry

WORKFLOW = "claude-scope-pipeline"
ACTIVITY = "claude-scope-phase-attempt"
#: the activity error type for a phase that failed in a way no retry will mend (details: its record)
PHASE_FAILED = "claude-scope.phase-failed"
DEFAULT_HEARTBEAT_S = 10.0
#: what an attempt's entry in a phase's ``history`` keeps of its record
_ATTEMPT_FACTS = ("query_ok", "kind", "message", "cost_usd", "num_turns", "session_id", "query_id", "message_count",
                  "stderr_tail", "cleanup", "host", "message_log")


def _skipped(name: str, reason: str, kind: str | None = None) -> dict[str, Any]:
    return {"name": name, "status": "skipped", "attempts": 0, "cost_usd": None, "duration_s": 0.0, "kind": kind,
            "message": reason, "session_id": None, "num_turns": None, "checks": [], "retryable": False,
            "side_effects": False, "host": "", "message_log": ""}


@workflow.defn(name=WORKFLOW)
class PipelineWorkflow:
    def __init__(self) -> None:
        self._phases: dict[str, dict[str, Any]] = {}
        self._run_id = ""
        self._state = "running"
        self._plan: dict[str, Any] = {}

    @workflow.run
    async def run(self, request: dict[str, Any]) -> dict[str, Any]:
        plan = request["plan"]
        self._plan = plan
        self._run_id = request["run_id"]
        started = workflow.time()
        names = [p["name"] for p in plan["phases"]]
        self._phases = {n: _skipped(n, "not started yet") | {"status": "pending", "message": ""} for n in names}
        done = {n: asyncio.Event() for n in names}
        limiter = asyncio.Semaphore(int(plan["max_parallel"]))
        stop: list[str] = []
        budget_exhausted: list[bool] = []

        def spent() -> float:
            return sum(r["cost_usd"] or 0.0 for r in self._phases.values())

        async def phase_task(phase: dict[str, Any]) -> None:
            name = phase["name"]
            try:
                for dep in phase["depends_on"]:
                    await done[dep].wait()
                not_ok = [self._phases[d] for d in phase["depends_on"] if self._phases[d]["status"] != "succeeded"]
                if not_ok:
                    self._phases[name] = _skipped(name, f"dependency {not_ok[0]['name']!r} {not_ok[0]['status']}")
                    return
                async with limiter:
                    budget = plan.get("max_cost_usd")
                    if stop:
                        self._phases[name] = _skipped(name, stop[0])
                    elif budget is not None and spent() >= budget:
                        budget_exhausted.append(True)
                        self._phases[name] = _skipped(name, f"run budget spent ({spent():.4f} of {budget} USD)",
                                                      "run_budget_spent")
                    else:
                        self._phases[name] = await self._attempts(request, phase)
                        if self._phases[name]["status"] != "succeeded" and plan["fail_fast"]:
                            stop.append(f"fail_fast: phase {name!r} {self._phases[name]['status']}")
            finally:
                done[name].set()

        # return_exceptions: a cancelled phase must not close the workflow while others still end their trees
        results = await asyncio.gather(*(phase_task(p) for p in plan["phases"]), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for record in self._phases.values():
            if record["status"] in ("pending", "running"):
                record.update(status="cancelled", kind="cancelled", message="run cancelled")
        report = {"run_id": self._run_id, "name": plan["name"], "plan": plan, "phases": self._phases, "order": names,
                  "cost_usd": spent(), "duration_s": workflow.time() - started,
                  "budget_exhausted": bool(budget_exhausted)}
        cancelled = [e for e in errors if is_cancelled_exception(e) or isinstance(e, asyncio.CancelledError)]
        if cancelled:
            self._state = "cancelled"
            raise cancelled[0]
        if errors:  # a defect of ours: fail the run with its cause rather than retry the workflow task forever
            self._state = "failed"
            raise ApplicationError(f"{type(errors[0]).__name__}: {errors[0]}", non_retryable=True)
        self._state = "succeeded" if all(r["status"] == "succeeded" for r in self._phases.values()) else "failed"
        return report

    async def _attempts(self, request: dict[str, Any], phase: dict[str, Any]) -> dict[str, Any]:
        name, retry = phase["name"], phase["retry"]
        heartbeat = timedelta(seconds=float(request.get("heartbeat_timeout_s", DEFAULT_HEARTBEAT_S)))
        attempt = 0
        history: list[dict[str, Any]] = []  # each attempt as the workflow timed it (the run page's timeline)
        while True:
            attempt += 1
            history.append({"number": attempt, "started": workflow.time(), "ended": None})
            self._phases[name] = {**self._phases[name], "status": "running", "attempts": attempt,
                                  "history": list(history)}
            try:
                record: dict[str, Any] = await workflow.execute_activity(
                    ACTIVITY,
                    {"run_id": self._run_id, "spec": request["spec"], "phase": name, "attempt": attempt,
                     "heartbeat_timeout_s": heartbeat.total_seconds()},
                    # the phase's own timeout is enforced by the wrapper inside; this only bounds a lost one
                    start_to_close_timeout=timedelta(seconds=float(phase["timeout_s"] or 86400) * 2 + 60),
                    heartbeat_timeout=heartbeat,
                    retry_policy=TemporalRetryPolicy(initial_interval=timedelta(seconds=1),
                                                     maximum_interval=timedelta(seconds=10),
                                                     non_retryable_error_types=[PHASE_FAILED]),
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
            except ActivityError as exc:
                cause = exc.cause
                if is_cancelled_exception(exc) or isinstance(cause, CancelledError):
                    history[-1].update(ended=workflow.time(), kind="cancelled", message="run cancelled")
                    self._phases[name] = {**self._phases[name], "status": "cancelled", "kind": "cancelled",
                                          "message": "run cancelled", "history": list(history)}
                    raise
                if isinstance(cause, ApplicationError) and cause.type == PHASE_FAILED and cause.details:
                    record = dict(cause.details[0])
                else:  # our activity failed in a way it does not report itself: say so, with its type
                    record = _skipped(name, f"the attempt failed: {type(cause).__name__}: {cause}", "unexpected")
                    record.update(status="failed", attempts=attempt)
            record["attempts"] = attempt
            history[-1].update({k: record.get(k) for k in _ATTEMPT_FACTS}, ended=workflow.time())
            record["history"] = list(history)
            if not should_retry(retry, record, attempt):
                return record
            self._phases[name] = {**record, "status": "running"}
            await asyncio.sleep(backoff_s(retry, attempt, workflow.random().random()))  # a durable timer

    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        return {"run_id": self._run_id, "name": self._plan.get("name", ""), "plan": self._plan, "state": self._state,
                "phases": self._phases, "order": list(self._phases),
                "cost_usd": sum(r["cost_usd"] or 0.0 for r in self._phases.values())}
