"""A worker: runs pipeline workflows and phase attempts from one task queue, in one workspace.

Settings measured on this kind of machine (``docs/temporal.md``, ``benchmarks/bench_temporal``):
a cancel reaches an activity only in the answer to a heartbeat, and the worker sends one at most every
``heartbeat_throttle_s`` (0.25 s here; the SDK's default is 80% of the heartbeat timeout, 8 s for ours):
with 0.5 s a cancel took 456 ms p50 / 461 ms p95 to end the tree (N=20), with 0.25 s see the evidence
report; a real cluster with many running phases may want it longer (one heartbeat RPC per phase per tick).
A dead worker's sticky queue is given up after 2 s, not 10; a SIGTERM gives running phases 10 s to
finish before they are cancelled (and retried elsewhere). At start the worker ends the CLI trees that a
dead worker on this host left (the host journal's records of dead owners).

Working trees: a phase edits files, so a pipeline must run where its checkout is. Give each workspace (a
checkout, or a shared filesystem path) its own task queue, start its worker there with ``--workspace``, and
submit the pipeline to that queue: every phase of it runs on a worker of that workspace.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from sdk_wrapper import get_logger

from .._engine import end_orphans
from .._journal import DEFAULT_PATH, Journal
from ._activity import PhaseActivities
from ._workflow import PipelineWorkflow

#: our packages are plain code the workflow imports through the sandbox (deterministic helpers only)
_PASSTHROUGH = ("orchestrator", "sdk_wrapper", "claude_code_sdk", "anyio", "structlog", "psutil", "httpx",
                "tenacity", "sniffio")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox the workflow runs in, on a worker and in a replay alike."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*_PASSTHROUGH))


def build_worker(client: Client, task_queue: str, *, workspace: str | Path, journal: Journal,
                 cli_path: str | None = None, max_parallel: int = 4, heartbeat_throttle_s: float = 0.25) -> Worker:
    """A worker for ``task_queue`` whose phases run in ``workspace``; ``journal`` is this host's."""
    activities = PhaseActivities(Path(workspace).resolve(), journal, cli_path)
    return Worker(
        client, task_queue=task_queue, workflows=[PipelineWorkflow],
        activities=[activities.attempt, activities.variant, activities.race_end, activities.notify],
        workflow_runner=workflow_runner(),
        max_concurrent_activities=max_parallel,
        max_heartbeat_throttle_interval=timedelta(seconds=heartbeat_throttle_s),
        default_heartbeat_throttle_interval=timedelta(seconds=heartbeat_throttle_s),
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(client: Client, task_queue: str, *, workspace: str | Path, journal_path: str | Path | None = None,
                     cli_path: str | None = None, max_parallel: int = 4, stop: anyio.Event | None = None,
                     ready: anyio.Event | None = None) -> None:
    """Run a worker until ``stop`` is set (or the task is cancelled), ending dead workers' trees first."""
    workspace = Path(await anyio.Path(workspace).resolve())
    with Journal(journal_path or workspace / DEFAULT_PATH) as journal:
        ended = await end_orphans(journal, get_logger())
        if ended:
            get_logger().warning("worker.orphans_ended", pids=list(ended))
        worker = build_worker(client, task_queue, workspace=workspace, journal=journal, cli_path=cli_path,
                              max_parallel=max_parallel)
        async with worker:
            if ready is not None:
                ready.set()
            await (stop or anyio.Event()).wait()
