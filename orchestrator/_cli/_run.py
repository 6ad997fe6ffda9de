"""The commands of ``claude-scope`` (``_cli`` parses the command line without importing any of this, so
``--help`` answers at once): run, resume and inspect pipelines; ``demo`` runs the 11-phase example offline.

On a terminal, progress is a live table of phases (rich); otherwise one JSON line per event (structlog). The
exit code is 1 when a phase did not succeed, 2 for bad input (pipeline file, journal, arguments).
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import logging
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import anyio
import structlog

from sdk_wrapper import exception_leaves, redact, redact_event
from sdk_wrapper.standin import install_standin

from .. import _gates as gates
from .._cost import format_cost
from .._doctor import diagnose, render, render_json
from .._engine import Orchestrator, new_run_id
from .._journal import Journal, JournalError, JournalFullError, RunNotFoundError
from .._model import Pipeline, PipelineError, RunReport
from .._observe import RunObserver
from .._pipeline_file import load_pipeline, parse_pipeline, read_pipeline_data
from .._progress import LiveTable
from .._signals import EXIT_ON, early
from .._status import PhaseStatus
from ._read import journal_path as _journal_path
from ._read import temporal

EXAMPLE = Path(__file__).parents[1] / "examples" / "v3_pipeline.toml"


def print_report(report: RunReport, where: str) -> None:
    print(f"\nrun {report.run_id}: {'succeeded' if report.ok else 'FAILED'} "
          f"(cost {format_cost(report.cost_usd, report.cost_lower_bound)} USD, {report.duration_s:.2f}s)")
    width = max(14, *(len(name) for name in report.phases))  # a planned phase's name is longer
    print(f"{'phase':<{width}} {'status':<10} {'attempts':>8} {'cost':>8}  detail")
    for outcome in report.phases.values():
        cost = format_cost(outcome.cost_usd, outcome.cost_lower_bound)
        detail = outcome.message if outcome.status is not PhaseStatus.SUCCEEDED else \
            "; ".join(c.evidence for c in outcome.checks) or "the CLI's result is ok"
        kind = f"[{outcome.kind}] " if outcome.kind else ""
        print(f"{outcome.name:<{width}} {outcome.status.value:<10} {outcome.attempts:>8} {cost:>8}  "
              f"{kind}{detail[:90]}")
    for name, why in report.evidence_gone.items():
        print(f"recheck: {name} ran again: {why}")
    if report.budget_exhausted:
        print("the run budget was spent: later phases were not started")
    if report.orphans_ended:
        print(f"ended CLI processes left by an earlier, killed run: {list(report.orphans_ended)}")
    print(where)


def _orchestrator(args: argparse.Namespace, pipeline: Pipeline | None) -> Orchestrator:
    project = Path(args.project_dir).resolve()
    observers: list[RunObserver] = [LiveTable()] if pipeline is not None and sys.stdout.isatty() else []
    if getattr(args, "otel", False):
        observers.append(_tracing())
    journal = Journal(_journal_path(args))
    cli_path = install_standin(journal.path.parent / "standin-bin") if args.simulate else None
    return Orchestrator(journal, project_dir=project, cli_path=cli_path, observers=observers)


def _tracing() -> RunObserver:
    """The OpenTelemetry observer, set up from the OTEL_* variables; its spans are flushed at exit."""
    try:
        from ..tracing import configure  # the otel extra: nothing imports OpenTelemetry without --otel

        tracing, provider = configure()  # imports the chosen exporter
    except ImportError as exc:
        raise ValueError(f"--otel needs the otel extra: pip install 'claude-scope[otel]' ({exc})") from None
    atexit.register(provider.shutdown)
    return tracing


_BAD_INPUT = (PipelineError, JournalError, KeyError, ValueError)


async def _until_signal(work: Callable[[], Awaitable[RunReport]]) -> tuple[RunReport | None, signal.Signals | None]:
    """Run ``work``; SIGINT or SIGTERM cancels it as a graceful cancel (running phases' CLI trees ended,
    the run journalled as interrupted). Later signals, while that cleanup runs, are absorbed."""
    caught: list[signal.Signals] = list(early)  # a signal before the receiver: the run does not start
    report: RunReport | None = None
    work_scope = anyio.CancelScope()
    if caught:
        work_scope.cancel()
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(*EXIT_ON) as signals:
            async def watch() -> None:
                async for signum in signals:
                    if not caught:
                        caught.append(signal.Signals(signum))
                        work_scope.cancel()

            tg.start_soon(watch)
            with work_scope:
                report = await work()
            tg.cancel_scope.cancel()
    return report, caught[0] if caught else None


def _resume_command(args: argparse.Namespace, run_id: str) -> str:
    parts = ["claude-scope", "--project-dir", shlex.quote(str(Path(args.project_dir).resolve()))]
    if args.journal:
        parts += ["--journal", shlex.quote(str(Path(args.journal).resolve()))]
    parts += ["resume", shlex.quote(run_id)]
    if args.simulate:
        parts.append("--simulate")
    return " ".join(parts)


def _finish(args: argparse.Namespace, orch: Orchestrator, run_id: str,
            work: Callable[[], Awaitable[RunReport]]) -> int:
    """Run ``work`` and say how it ended; the exit code is journalled with the run (``status --follow``
    exits with it)."""
    code = _ended(args, orch, run_id, work)
    if orch.journal.run_exists(run_id):
        orch.journal.set_exit_code(run_id, code)
    return code


def _ended(args: argparse.Namespace, orch: Orchestrator, run_id: str,
           work: Callable[[], Awaitable[RunReport]]) -> int:
    try:
        report, signum = anyio.run(_until_signal, work)
    except Exception as exc:  # the run crashed: the journal says so (run_crashed); one clear line here
        leaves = exception_leaves(exc)
        full = next((e for e in leaves if isinstance(e, JournalFullError)), None)
        if full is not None:
            print(f"claude-scope: run {run_id}: {full}. Nothing is left running; finished phases are kept, and what "
                  f"could not be recorded is repaired at the next start. Free space, then: "
                  f"{_resume_command(args, run_id)}", file=sys.stderr)
            return 2
        if len(leaves) == 1 and isinstance(leaves[0], _BAD_INPUT):
            raise leaves[0] from None  # refused before it started (a busy run, a bad journal): exit 2
        why = "; ".join(f"{type(e).__name__}: {e}" for e in leaves)
        print(f"claude-scope: run {run_id} crashed ({redact(why)}); finished phases are kept in "
              f"{orch.journal.path}. After fixing the cause: {_resume_command(args, run_id)}", file=sys.stderr)
        return 1
    if report is None and not orch.journal.run_exists(run_id):
        name = signum.name if signum is not None else "a cancellation"
        print(f"claude-scope: interrupted by {name} before run {run_id} started; nothing ran", file=sys.stderr)
        return EXIT_ON.get(signum, 1) if signum is not None else 1
    if report is None:
        name = signum.name if signum is not None else "a cancellation"
        print(f"claude-scope: run {run_id} interrupted by {name}; its running phases were ended, finished ones "
              f"are kept. Resume with: {_resume_command(args, run_id)}", file=sys.stderr)
        return EXIT_ON.get(signum, 1) if signum is not None else 1
    print_report(report, f"journal: {orch.journal.path}; messages: {orch.journal.messages_dir / report.run_id}")
    if report.waiting:
        print(f"waiting for approval: {', '.join(report.waiting)} (claude-scope approve {run_id} PHASE, or reject); "
              f"then: {_resume_command(args, run_id)}")
        return gates.EXIT_WAITING
    return 0 if report.ok else 1


def cmd_run(args: argparse.Namespace, pipeline: Pipeline | None = None) -> int:
    pipeline = pipeline or load_pipeline(args.pipeline, project_dir=args.project_dir, simulate=args.simulate)
    orch = _orchestrator(args, pipeline)
    run_id = args.run_id or new_run_id()
    wait = not getattr(args, "no_wait", False)
    return _finish(args, orch, run_id, lambda: orch.run(pipeline, run_id, wait_for_approval=wait))


def cmd_resume(args: argparse.Namespace) -> int:
    journal = Journal(_journal_path(args))
    source = args.pipeline or journal.pipeline_of(args.run_id).get("source")
    journal.close()
    if not source:
        raise PipelineError("this run's pipeline file is not recorded; pass --pipeline FILE")
    pipeline = load_pipeline(source, project_dir=args.project_dir, simulate=args.simulate)
    orch = _orchestrator(args, pipeline)
    return _finish(args, orch, args.run_id, lambda: orch.resume(args.run_id, pipeline, recheck=args.recheck,
                                                                wait_for_approval=not args.no_wait))


def cmd_prune(args: argparse.Namespace) -> int:
    from .._prune import PruneError, parse_age, prune, vacuum

    try:
        with Journal(_journal_path(args)) as journal:
            if args.vacuum:
                before = journal.path.stat().st_size
                vacuum(journal)
                print(f"journal compacted: {before / 1e6:.2f} MB -> {journal.path.stat().st_size / 1e6:.2f} MB; "
                      "from now on prune gives freed pages back in steps")
                if args.older_than is None and args.keep is None:
                    return 0
            age = None if args.older_than is None else parse_age(args.older_than)
            done = anyio.run(lambda: prune(journal, older_than_s=age, keep=args.keep, dry_run=args.dry_run))
    except PruneError as exc:
        print(f"claude-scope: {exc}", file=sys.stderr)
        return 2
    print(done.summary(args.dry_run))
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    """``approve`` / ``reject``: a person's decision on a phase waiting at its gate, journalled for the
    orchestrator waiting on it (here, in another terminal, or resumed later)."""
    decision = "approved" if args.command == "approve" else "rejected"
    retry = bool(getattr(args, "retry", False))
    with Journal(_journal_path(args)) as journal:
        if not journal.run_exists(args.run_id):
            raise RunNotFoundError(f"no run {args.run_id!r} in {journal.path}")
        row = journal.phases(args.run_id).get(args.phase)
        if row is None:
            raise PipelineError(f"run {args.run_id!r} has no phase {args.phase!r}")
        request = journal.approval(args.run_id, args.phase)
        if row["status"] != "waiting_approval" or request is None or request["decided"] is not None:
            why = f"it is {row['status']}" if request is None or request["decided"] is None else \
                f"it was {request['decision']} by {request['who']}"
            raise PipelineError(f"phase {args.phase!r} of run {args.run_id!r} is not waiting for approval ({why})")
        if retry and request["gate"] != "after":
            raise PipelineError(f"phase {args.phase!r} waits before it starts: --retry is for a phase whose result "
                                "waits (approval = \"after\")")
        if not journal.decide(args.run_id, args.phase, decision, gates.who(), args.note, retry):
            raise PipelineError(f"phase {args.phase!r} of run {args.run_id!r} was decided meanwhile")
    print(f"phase {args.phase} of run {args.run_id} {decision}{' (it runs again)' if retry else ''}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    project = Path(args.project_dir) if args.project_dir != "." else Path(tempfile.mkdtemp(prefix="claude-scope-demo-"))
    print(f"claude-scope demo: the 11-phase V3 pipeline ({EXAMPLE.name}), offline against the stand-in CLI,\n"
          f"in {project}. The e2e phase fails on purpose; validate and commit are skipped because of it.\n")
    args.project_dir, args.pipeline, args.simulate, args.run_id = str(project), str(EXAMPLE), True, None
    # the example's pytest check runs `python -m pytest`: this interpreter, where it has pytest
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    data = read_pipeline_data(EXAMPLE)
    if importlib.util.find_spec("pytest") is None:
        print(f"pytest is not installed for {sys.executable}: the test phase's pytest check is left out "
              "(pip install pytest to see it run)\n")
        for table in data["phases"]:
            table["checks"] = [c for c in table.get("checks", []) if c.get("type") != "pytest"]
    pipeline = replace(parse_pipeline(data, project_dir=project, simulate=True), source=str(EXAMPLE))
    code = cmd_run(args, pipeline)
    print("\nthe run failed as the example scripts it (e2e: error_max_turns)" if code == 1 else "")
    return 0 if code == 1 else 1  # the demo succeeds when the example's one failure is reported as a failure


def cmd_migrate(args: argparse.Namespace) -> int:
    try:
        from migration import migrate, record_legacy
    except ImportError as exc:  # libcst is the `migrate` extra
        print(f"claude-scope migrate needs libcst: pip install 'claude-scope[migrate]' ({exc})", file=sys.stderr)
        return 2
    paths = [Path(p) for p in args.paths]
    results = migrate(paths, write=args.write or args.revert, revert=args.revert)
    for r in results:
        if r.diff:
            sys.stdout.write(r.diff)
        for note in r.notes:
            print(f"{r.path}: note: {note}", file=sys.stderr)
        for reference in r.left:
            print(f"{r.path}: V3 reference left: {reference}", file=sys.stderr)
        if r.error:
            print(f"{r.path}: {r.error}", file=sys.stderr)
    changed = [r for r in results if r.changed]
    left = [r for r in results if r.left or r.error]
    legacy = next((m for r in results for m in r.legacy_modules), None)
    if args.write and legacy is not None:
        recorded = record_legacy(paths, legacy)
        if recorded is not None:
            print(f"recorded legacy_module = {legacy!r} in {recorded} (for CLAUDE_SCOPE_MODE=legacy)", file=sys.stderr)
    if args.revert:  # V3's imports are back by design: counting them as "left" would read as a leftover
        print(f"reverted {len(changed)} of {len(results)} file(s)", file=sys.stderr)
    else:
        verb = "rewrote" if args.write else "would rewrite"
        print(f"{verb} {len(changed)} of {len(results)} file(s); {len(left)} with V3 references left",
              file=sys.stderr)
    return 1 if args.check and (changed or left) else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    diagnosis = anyio.run(diagnose)
    print(render_json(diagnosis) if args.json else render(diagnosis))
    return 0 if diagnosis.healthy else 1


#: the Temporal commands that run or start something (those that only read or signal a run are ``_read``'s)
_TEMPORAL_ONLY = {"server", "worker", "submit"}


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command (``_cli.main`` parsed it without importing any of this, and sent the commands
    that only read a run to ``_read``)."""
    logging.getLogger("claude_code_sdk").setLevel(logging.CRITICAL)  # outcomes are reported instead
    # The application configures logging: JSON lines on stderr; on a terminal only warnings (the table shows
    # progress).
    structlog.configure(processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper("iso"),
                                    redact_event, structlog.processors.JSONRenderer()],
                        wrapper_class=structlog.make_filtering_bound_logger(
                            logging.WARNING if sys.stdout.isatty() else logging.INFO),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    commands = {"run": cmd_run, "resume": cmd_resume, "demo": cmd_demo, "approve": cmd_decide, "reject": cmd_decide,
                "prune": cmd_prune, "migrate": cmd_migrate, "doctor": cmd_doctor}
    try:
        if args.command in _TEMPORAL_ONLY:
            return temporal(args, print_report)
        return commands[args.command](args)
    except BrokenPipeError:  # `claude-scope status | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except _BAD_INPUT as exc:
        print(f"claude-scope: {exc}", file=sys.stderr)
        return 2
