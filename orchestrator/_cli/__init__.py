"""claude-scope: run, resume and inspect Claude Code pipelines; "demo" runs an 11-phase example offline.

On a terminal, progress is a live table of phases; otherwise one JSON line per event on stderr. Exit code:
0 all phases succeeded, 1 a phase did not, 2 bad input (pipeline file, journal, arguments), 3 stopped with
phases waiting for approval (--no-wait; resume it once they are decided), 130 / 143 when SIGINT /
SIGTERM interrupted a run (resume it).
"""

# This package is the command line, one module per command family: _run (run, resume, demo, approve /
# reject, prune, migrate, doctor), _read (report, masked), _runs (status and runs from the journal),
# _temporal (the Temporal commands). This module is the entry point: it parses the command line with the
# standard library only and imports a command's code (and with it an SDK) only once a command is to run,
# so --help and argument errors answer at once. A test holds --help to importing no SDK.

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import _signals

_OTEL_HELP = ("OpenTelemetry spans of the run, phases, attempts and queries (the otel extra; exporter from "
              "OTEL_TRACES_EXPORTER: otlp (default, OTEL_EXPORTER_OTLP_ENDPOINT) or console)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claude-scope", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project-dir", default=".", help="the project the phases work in (default: .)")
    parser.add_argument("--journal", help="journal database (default: PROJECT/.claude-scope/runs.db)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a pipeline file")
    run.add_argument("pipeline")
    run.add_argument("--run-id")
    run.add_argument("--simulate", action="store_true", help="use the stand-in CLI and each phase's scenario")
    run.add_argument("--otel", action="store_true", help=_OTEL_HELP)
    run.add_argument("--no-wait", action="store_true", help="stop (exit 3, resumable) once only approvals can move "
                                                              "the run on, instead of waiting for them")
    resume = sub.add_parser("resume", help="rerun what did not succeed in a run")
    resume.add_argument("run_id")
    resume.add_argument("--pipeline", help="pipeline file (default: the one the run was started with)")
    resume.add_argument("--recheck", action="store_true",
                        help="first run the checks of the phases that succeeded again; rerun those whose evidence "
                             "is gone, and the phases that depend on them")
    resume.add_argument("--simulate", action="store_true")
    resume.add_argument("--otel", action="store_true", help=_OTEL_HELP)
    resume.add_argument("--no-wait", action="store_true", help="as for run")
    for verb, what in (("approve", "approve a phase waiting at its approval gate"),
                       ("reject", "reject a phase waiting at its approval gate (it fails as rejected)")):
        gate = sub.add_parser(verb, help=what)
        gate.add_argument("run_id")
        gate.add_argument("phase")
        gate.add_argument("--note", default="", help="why (journalled and shown; a retry is told it)")
        if verb == "reject":
            gate.add_argument("--retry", action="store_true",
                              help="an after gate: run the phase again, told the note, instead of failing it")
        _temporal_address(gate, required=False)
    status = sub.add_parser("status", help="phases of a run, a table in pipeline order (default: the latest run)")
    status.add_argument("run_id", nargs="?")
    status.add_argument("--json", action="store_true", help="one JSON line per phase, for scripts")
    status.add_argument("--follow", action="store_true",
                        help="print each phase change as it happens; exit with the run's exit code when it ends")
    _temporal_address(status, required=False)
    report = sub.add_parser("report", help="write a run's page: one self-contained HTML file (default: the latest run)")
    report.add_argument("run_id", nargs="?")
    report.add_argument("--out", help="the HTML file (default: .claude-scope/reports/RUN_ID.html; with --address, "
                                      "./RUN_ID.html)")
    report.add_argument("--open", action="store_true", help="open it in the default browser")
    _temporal_address(report, required=False)
    prune = sub.add_parser("prune", help="remove ended runs, their logs and kept branches, and compact the journal")
    which = prune.add_mutually_exclusive_group()
    which.add_argument("--older-than", metavar="AGE", help="runs that ended longer ago than this: 30d, 12h, 90m, 2w")
    which.add_argument("--keep", type=int, metavar="N", help="keep the newest N ended runs, remove the rest")
    prune.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    prune.add_argument("--vacuum", action="store_true",
                       help="compact a journal made before incremental compaction, once (no run may be live)")
    runs = sub.add_parser("runs", help="list runs")
    _temporal_address(runs, required=False)
    demo = sub.add_parser("demo", help="run the 11-phase example offline against the stand-in CLI")
    demo.add_argument("--otel", action="store_true", help=_OTEL_HELP)
    mig = sub.add_parser("migrate", help="rewrite V3 imports to sdk_wrapper.v3 (prints a diff)")
    mig.add_argument("paths", nargs="+")
    mode = mig.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="exit 1 while a file needs the change or any V3 reference is left")
    mode.add_argument("--write", action="store_true", help="rewrite the files in place")
    mode.add_argument("--revert", action="store_true", help="put back the imports an earlier --write rewrote")
    sub.add_parser("masked", help="failures V3 would have hidden (recorded in shadow mode)")
    doctor = sub.add_parser("doctor", help="which process containment is in force here, proved by a probe query")
    doctor.add_argument("--json", action="store_true", help="one JSON object instead of text")
    # Temporal (the `temporal` extra): see orchestrator/temporal
    server = sub.add_parser("server", help="start a local Temporal dev server (Ctrl-C stops it)")
    server.add_argument("--port", type=int, help="frontend port (default: a free one)")
    server.add_argument("--db", help="keep its state in this SQLite file (default: in memory)")
    server.add_argument("--headless", action="store_true", help="without the Temporal Web UI")
    worker = sub.add_parser("worker", help="run phases from a Temporal task queue in this workspace")
    _temporal_address(worker)
    worker.add_argument("--task-queue", required=True, help="one per workspace: its pipelines run here")
    worker.add_argument("--workspace", help="the checkout phases work in (default: --project-dir)")
    worker.add_argument("--max-parallel", type=int, default=4, help="phase attempts at once on this worker")
    worker.add_argument("--simulate", action="store_true", help="run the stand-in CLI (phases' scenarios)")
    submit = sub.add_parser("submit", help="submit a pipeline file to Temporal")
    submit.add_argument("pipeline")
    _temporal_address(submit)
    submit.add_argument("--task-queue", required=True)
    submit.add_argument("--run-id")
    submit.add_argument("--simulate", action="store_true", help="phases run their scenario on the stand-in")
    submit.add_argument("--wait", action="store_true", help="wait for the report: exit 0 all succeeded, 1 not")
    cancel = sub.add_parser("cancel", help="cancel a run on Temporal (its running phases' trees are ended)")
    cancel.add_argument("run_id")
    _temporal_address(cancel)
    return parser


def _temporal_address(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("--address", required=required, help="Temporal frontend HOST:PORT" + (
        "" if required else " (read the run from Temporal instead of the journal)"))
    parser.add_argument("--namespace", default="default")


def _from_journal(args: argparse.Namespace) -> int:
    """``status`` and ``runs`` from the journal: read-only, no SDK imported (see ``_runs``)."""
    from . import _runs as view

    path = args.journal or os.path.join(os.path.realpath(args.project_dir), ".claude-scope", "runs.db")
    try:
        with view.reading(path) as conn:
            if args.command == "runs":
                print(view.render_runs(view.runs(conn)))
                return 0
            found = view.runs(conn, args.run_id, latest=args.run_id is None)
            if not found and args.run_id is None:
                print("no runs recorded")
                return 0
            run = found[0] if found else None
            if run is None:
                print(f"claude-scope: no run {args.run_id!r} in {path}", file=sys.stderr)
                return 2
            if not args.follow:
                rows = view.phases(conn, run["run_id"])
                print("\n".join(view.status_json(rows)) if args.json else view.render_status(run, rows))
                return 0
        return view.follow(path, run["run_id"], lambda line: print(line, flush=True))
    except (FileNotFoundError, LookupError) as exc:  # no journal here, or no such run
        print(f"claude-scope: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `claude-scope status | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


#: commands that only read the journal, and those that only read or signal a Temporal run (``--address``)
_READS_ALONE = frozenset({"report", "masked"})
_READS_AT_TEMPORAL = frozenset({"status", "runs", "report", "cancel", "approve", "reject"})


def main(argv: list[str] | None = None) -> int:
    _signals.install()  # before anything slow: a signal during start-up ends as an interruption
    args = _parser().parse_args(argv)
    address = getattr(args, "address", None)
    if args.command in ("status", "runs") and not address:
        return _from_journal(args)
    if args.command in (_READS_AT_TEMPORAL if address else _READS_ALONE):
        # what only reads a run (or signals a Temporal one): no SDK, no logging set-up (see _read)
        reads = importlib.import_module("orchestrator._cli._read")
        done: int = reads.dispatch(args)
        return done
    commands = importlib.import_module("orchestrator._cli._run")
    code: int = commands.dispatch(args)
    return code

