"""``claude-scope server | worker | submit | cancel`` and ``status/runs/report --address``: the Temporal commands.

Loaded by ``_read`` only when one of them is used (it needs the ``temporal`` extra). Processes
that used the Temporal client end with ``os._exit`` after flushing their output: at interpreter exit
temporalio's runtime can crash the process (measured: "Fatal Python error: PyGILState_Release" in 2 of 10
worker exits, exit 139 in 1 of 4 client exits, both after all work was done), which would turn a correct
exit code into a wrong one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from temporalio.client import Client

from sdk_wrapper import StateError

from .._journal import DEFAULT_PATH, RunNotFoundError
from .._model import PipelineError, RunReport
from .._runpage import RunView, open_run_page
from ..temporal._client import TemporalRunner

# The reading commands (status, report, runs, cancel, approve/reject) import the client alone; the server,
# the worker and submit import what they need when they run.


def _exit(code: int) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cmd_server(args: argparse.Namespace, _print_report: Any) -> int:
    from ..temporal._server import DevServer, ServerError

    try:
        server = DevServer(port=args.port, ui=not args.headless, db=args.db).start()
    except ServerError as exc:
        print(f"claude-scope: {exc}", file=sys.stderr)
        return 2
    print(f"Temporal dev server: {server.address}" + (f"  (UI: {server.ui_url})" if server.ui_url else ""))
    print(f"next: claude-scope worker --address {server.address} --task-queue QUEUE  (in your checkout)")
    sys.stdout.flush()
    stopped: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda s, _f: stopped.append(s))
    try:
        while not stopped and server.process is not None and server.process.poll() is None:
            time.sleep(0.2)
    finally:
        server.stop()
    return 0


def cmd_worker(args: argparse.Namespace, _print_report: Any) -> int:
    from sdk_wrapper.standin import install_standin

    from ..temporal._worker import run_worker

    workspace = Path(args.workspace or args.project_dir).resolve()
    journal = Path(args.journal) if args.journal else workspace / DEFAULT_PATH
    cli_path = str(install_standin(journal.parent / "standin-bin")) if args.simulate else None

    async def main() -> None:
        client = await Client.connect(args.address, namespace=args.namespace)
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            async def on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        stop.set()  # graceful: running phases get the worker's shutdown grace
                        return

            tg.start_soon(on_signal)
            print(f"worker: task queue {args.task_queue!r}, workspace {workspace}, journal {journal}", flush=True)
            await run_worker(client, args.task_queue, workspace=workspace, journal_path=journal, cli_path=cli_path,
                             max_parallel=args.max_parallel, stop=stop)
            tg.cancel_scope.cancel()

    anyio.run(main)
    return _exit(0)


def cmd_submit(args: argparse.Namespace, print_report: Any) -> int:
    from ..temporal._spec import spec_from_file

    try:
        spec = spec_from_file(args.pipeline, simulate=args.simulate)
    except PipelineError as exc:
        print(f"claude-scope: {exc}", file=sys.stderr)
        return 2

    async def main() -> RunReport | str:
        runner = await TemporalRunner.connect(args.address, args.task_queue, namespace=args.namespace)
        run_id = await runner.submit(spec, args.run_id)
        print(f"submitted run {run_id} to task queue {args.task_queue!r} on {args.address}", flush=True)
        return await runner.wait(run_id) if args.wait else run_id

    found = anyio.run(main)
    if isinstance(found, RunReport):
        print_report(found, f"history: workflow {found.run_id} on {args.address}")
        return _exit(0 if found.ok else 1)
    return _exit(0)


#: a Temporal run's exit code from its state (as ``claude-scope run`` would have exited)
_EXIT_OF = {"succeeded": 0, "failed": 1, "cancelled": 130, "terminated": 1, "timed_out": 1}


def _rows(report: RunReport) -> list[dict[str, Any]]:
    """The run's phases in the journal's row shape (what the status table and --json show)."""
    return [{"name": o.name, "status": o.status.value, "attempts": o.attempts, "duration_s": o.duration_s,
             "cost_usd": o.cost_usd, "cost_lower_bound": o.cost_lower_bound,
             "kind": None if o.kind is None else o.kind.value, "message": o.message, "session_id": o.session_id,
             "reserved_usd": None} for o in report.phases.values()]


def cmd_status(args: argparse.Namespace, _print_report: Any) -> int:
    """``status --address``: the table (or ``--json``); ``--follow`` polls the workflow's status query and
    prints each phase change, then exits with the run's code."""
    from . import _runs as view

    async def main() -> int:
        runner = await TemporalRunner.connect(args.address, "", namespace=args.namespace)
        if not getattr(args, "follow", False):
            state, report = await runner.status(args.run_id)
            rows = _rows(report)
            if getattr(args, "json", False):
                print("\n".join(view.status_json(rows)))
            else:
                print(f"run {report.run_id}  {state}  cost {report.cost_usd:.4f} USD")
                print("\n".join(view.phase_table(rows)))
            return 0
        seen: dict[str, tuple[Any, ...]] = {}
        while True:
            state, report = await runner.status(args.run_id)
            for line in view.changes(seen, _rows(report)):
                print(line, flush=True)
            if state != "running":
                print(f"run {report.run_id} {state}", flush=True)
                return _EXIT_OF.get(state, 1)
            await anyio.sleep(0.5)

    try:
        code = anyio.run(main)
    except RunNotFoundError as exc:
        print(f"claude-scope: {exc}", file=sys.stderr)
        return _exit(2)
    return _exit(code)


def cmd_report(args: argparse.Namespace, _print_report: Any) -> int:
    if not args.run_id:
        print("claude-scope: report --address needs the RUN_ID", file=sys.stderr)
        return _exit(2)

    async def main() -> RunView:
        runner = await TemporalRunner.connect(args.address, "", namespace=args.namespace)
        return await runner.view(args.run_id)

    try:
        view = anyio.run(main)
    except RunNotFoundError as exc:
        print(f"claude-scope: {exc}", file=sys.stderr)
        return _exit(2)
    print(f"run page: {open_run_page(view, args.out or f'{args.run_id}.html', args.open)}")
    return _exit(0)


def cmd_runs(args: argparse.Namespace, _print_report: Any) -> int:
    async def main() -> list[dict[str, Any]]:
        runner = await TemporalRunner.connect(args.address, "", namespace=args.namespace)
        return await runner.runs()

    for run in anyio.run(main):
        print(f"{run['run_id']:<32} {run['status']:<10} {run['started']}  queue {run['task_queue']}")
    return _exit(0)


def cmd_cancel(args: argparse.Namespace, _print_report: Any) -> int:
    async def main() -> None:
        runner = await TemporalRunner.connect(args.address, "", namespace=args.namespace)
        await runner.cancel(args.run_id, sent=lambda: print(
            f"run {args.run_id}: cancel sent; waiting until its running phases' CLI trees are ended", flush=True))

    anyio.run(main)
    print(f"run {args.run_id} cancelled; its running phases' CLI trees were ended")
    return _exit(0)


def cmd_decide(args: argparse.Namespace, _print_report: Any) -> int:
    """``approve`` / ``reject`` with ``--address``: the workflow's ``decide`` signal."""
    from .._gates import who

    decision = "approved" if args.command == "approve" else "rejected"
    retry = bool(getattr(args, "retry", False))

    async def main() -> None:
        runner = await TemporalRunner.connect(args.address, "", namespace=args.namespace)
        await runner.decide(args.run_id, args.phase, decision, who=who(), note=args.note, retry=retry)

    try:
        anyio.run(main)
    except StateError as exc:
        print(f"claude-scope: {exc}", file=sys.stderr)
        return _exit(2)
    print(f"phase {args.phase} of run {args.run_id} {decision}{' (it runs again)' if retry else ''}")
    return _exit(0)


COMMANDS = {"server": cmd_server, "worker": cmd_worker, "submit": cmd_submit, "status": cmd_status,
            "report": cmd_report, "runs": cmd_runs, "cancel": cmd_cancel, "approve": cmd_decide, "reject": cmd_decide}
