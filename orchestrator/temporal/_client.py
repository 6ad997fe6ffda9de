"""Submitting pipelines to Temporal and reading them back: history is the one source of truth.

``TemporalRunner.run`` returns the same ``RunReport`` as ``Orchestrator.run``; a run's id is its workflow
id. ``status`` asks the workflow (running or closed: a closed one is answered by replaying its history on a
worker), ``runs`` lists the pipeline workflows the server knows, ``cancel`` cancels one and waits until its
running phases have ended their CLI trees.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.service import RPCError

from sdk_wrapper import StateError, redact

from .._journal import RunNotFoundError
from .._model import RunReport
from .._runpage import RunView
from ._records import report_from_record, run_view_from_record
from ._requests import DEFAULT_HEARTBEAT_S, WORKFLOW, PipelineRequest, RunRecord

if TYPE_CHECKING:
    from ._spec import PipelineSpec


class TemporalRunner:
    """Pipelines on a Temporal server: ``await TemporalRunner.connect("127.0.0.1:7233", "my-checkout")``."""

    def __init__(self, client: Client, task_queue: str, *, heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_S,
                 roll_after_events: int = 0) -> None:
        self.client = client
        self.task_queue = task_queue
        self.heartbeat_timeout_s = heartbeat_timeout_s
        #: a run continues as new once its history has this many events (0: when the server suggests it)
        self.roll_after_events = roll_after_events

    @classmethod
    async def connect(cls, address: str, task_queue: str, *, namespace: str = "default",
                      heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_S) -> TemporalRunner:
        client = await Client.connect(address, namespace=namespace)
        return cls(client, task_queue, heartbeat_timeout_s=heartbeat_timeout_s)

    async def submit(self, spec: PipelineSpec, run_id: str | None = None) -> str:
        """Start the pipeline; return its run id (the workflow id). Raises for a run id already used."""
        from .._engine import new_run_id  # the orchestrator's run ids (it imports the SDK: only to submit)

        run_id = run_id or new_run_id()
        request = PipelineRequest(run_id, spec.to_json(), spec.plan(), self.heartbeat_timeout_s,
                                  self.roll_after_events)
        await self.client.start_workflow(WORKFLOW, request, id=run_id, task_queue=self.task_queue,
                                         execution_timeout=timedelta(days=30))
        return run_id

    async def wait(self, run_id: str) -> RunReport:
        """The run's report once it has ended; a cancelled run reports its phases as the workflow left them."""
        handle = self._handle(run_id)
        try:
            record: RunRecord = await handle.result()
        except WorkflowFailureError:
            record = await handle.query("status", result_type=RunRecord)
        return report_from_record(record)

    async def run(self, spec: PipelineSpec, run_id: str | None = None) -> RunReport:
        return await self.wait(await self.submit(spec, run_id))

    async def status(self, run_id: str) -> tuple[str, RunReport]:
        """(running, succeeded, failed (a phase did not succeed), cancelled, terminated, timed_out; the
        phases as the workflow has them)."""
        state, record, _ = await self._record(run_id)
        return state, report_from_record(record)

    async def view(self, run_id: str) -> RunView:
        """The run page's view of the run: its phases and attempts as the workflow recorded them, its start
        and close times as the server has them."""
        state, record, described = await self._record(run_id)
        closed = described.close_time
        # a run that continued as new started when its first run did (the server knows only the last's start)
        return run_view_from_record(record, state=state, started=record.started or described.start_time.timestamp(),
                                    ended=None if closed is None else closed.timestamp(),
                                    source=f"temporal {self.client.service_client.config.target_host}")

    async def _record(self, run_id: str) -> tuple[str, RunRecord, WorkflowExecutionDescription]:
        handle = self._handle(run_id)
        try:
            described = await handle.describe()
        except RPCError as exc:
            raise RunNotFoundError(f"no run {run_id!r} on {self.client.service_client.config.target_host}") from exc
        record: RunRecord = await handle.query("status", result_type=RunRecord)
        state = "unknown" if described.status is None else _STATES.get(described.status, described.status.name.lower())
        if state == "completed":  # the workflow ended by itself: say what the local journal says of a run
            state = "succeeded" if report_from_record(record).ok else "failed"
        return state, record, described

    async def decide(self, run_id: str, phase: str, decision: str, *, who: str, note: str = "",
                     retry: bool = False) -> None:
        """Approve or reject a phase waiting at its gate (the workflow's ``decide`` signal). ``StateError``
        when it is not waiting (nothing is sent); ``RunNotFoundError`` for an unknown run."""
        _, record, _ = await self._record(run_id)
        found = record.phases.get(phase)
        if found is None:
            raise StateError(f"run {run_id!r} has no phase {phase!r}")
        if found.get("status") != "waiting_approval":
            raise StateError(f"phase {phase!r} of run {run_id!r} is not waiting for approval (it is "
                             f"{found.get('status')})")
        if retry and found.get("gate") != "after":
            raise StateError(f"phase {phase!r} waits before it starts: --retry is for a phase whose result "
                             "waits")
        await self._handle(run_id).signal("decide", {"phase": phase, "decision": decision, "who": who,
                                                    "note": redact(note)[:4000], "retry": retry})

    async def cancel(self, run_id: str, sent: Callable[[], None] | None = None) -> None:
        """Cancel the run and wait until it has closed (its phases' trees ended); ``sent()`` is called once
        the server has the request."""
        handle = self._handle(run_id)
        await handle.cancel()
        if sent is not None:
            sent()
        with contextlib.suppress(WorkflowFailureError):  # closed as cancelled: what was asked
            await handle.result()

    async def runs(self, limit: int = 100) -> list[dict[str, Any]]:
        found = []
        async for execution in self.client.list_workflows(f"WorkflowType = '{WORKFLOW}'", limit=limit):
            status = execution.status
            found.append({"run_id": execution.id, "status": "unknown" if status is None else _STATES.get(
                status, status.name.lower()), "started": execution.start_time.isoformat(),
                "task_queue": execution.task_queue})
        return found

    def _handle(self, run_id: str) -> WorkflowHandle[Any, RunRecord]:
        return self.client.get_workflow_handle(run_id, result_type=RunRecord)


_STATES = {WorkflowExecutionStatus.RUNNING: "running", WorkflowExecutionStatus.COMPLETED: "completed",
           WorkflowExecutionStatus.FAILED: "failed", WorkflowExecutionStatus.CANCELED: "cancelled",
           WorkflowExecutionStatus.TERMINATED: "terminated", WorkflowExecutionStatus.TIMED_OUT: "timed_out"}
