"""The commands that only read what is recorded: ``report`` (a run's page), ``masked`` (what V3 would have
hidden), and the Temporal commands that run no phase (``status``, ``runs``, ``report``, ``cancel``,
``approve`` / ``reject`` with ``--address``).

None of them runs a query, so none imports an SDK, httpx or tenacity (nor logging set-up): ``_cli.main``
calls them without ``_run``, and they answer in about the time Python and SQLite (or the Temporal
client) take to start. ``benchmarks/bench_cli`` measures them; a test holds them to importing no SDK.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdk_wrapper import ClaudeScopeError

from .._private import DEFAULT_JOURNAL


def journal_path(args: argparse.Namespace) -> Path:
    return Path(args.journal) if args.journal else Path(args.project_dir).resolve() / DEFAULT_JOURNAL


def cmd_report(args: argparse.Namespace) -> int:
    from .._journal import Journal
    from .._runpage import open_run_page, run_view

    with Journal(journal_path(args)) as journal:
        runs = journal.runs()
        if not runs:
            print("no runs recorded")
            return 2
        run_id = args.run_id or runs[0]["run_id"]
        view = run_view(journal, run_id)
        default = journal.path.parent / "reports" / f"{run_id}.html"
    print(f"run page: {open_run_page(view, args.out or default, args.open)}")
    return 0


def cmd_masked(args: argparse.Namespace) -> int:
    import json

    from sdk_wrapper.lowlevel import read_masked

    path = journal_path(args)
    rows = read_masked(path)
    for row in rows:
        print(json.dumps(row))
    print(f"{len(rows)} thing(s) the real V3 would have hidden or lost (shadow mode, {path})", file=sys.stderr)
    return 0


def temporal(args: argparse.Namespace, print_report: object = None) -> int:
    """A Temporal command (the ``temporal`` extra), or exit 2 saying how to install it."""
    try:
        from ._temporal import COMMANDS
    except ImportError as exc:  # temporalio is the `temporal` extra: nothing imports it without it
        print(f"claude-scope {args.command} needs the temporal extra: pip install 'claude-scope[temporal]' ({exc})",
              file=sys.stderr)
        return 2
    return COMMANDS[args.command](args, print_report)


def dispatch(args: argparse.Namespace) -> int:
    """Run a reading command; bad input (no journal, no such run) is exit 2 with the reason."""
    try:
        if getattr(args, "address", None):
            return temporal(args)
        return {"report": cmd_report, "masked": cmd_masked}[args.command](args)
    except (ClaudeScopeError, KeyError, ValueError) as exc:  # a bad journal, no such run: exit 2
        print(f"claude-scope: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
        return 2
