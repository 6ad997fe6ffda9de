"""SIGINT and SIGTERM before a run's own receiver takes over: remembered, not fatal, so a signal during
start-up (reading the pipeline, opening the journal) still ends as an interruption (exit 130 / 143).
Standard library only: the command line's entry installs it before it imports anything else."""

from __future__ import annotations

import signal

#: the exit code for each signal: 128 + the signal, as shells report it
EXIT_ON = {signal.SIGINT: 130, signal.SIGTERM: 143}
#: the signals received so far, oldest first
early: list[signal.Signals] = []


def remember(signum: int, _frame: object) -> None:
    early.append(signal.Signals(signum))


def install() -> None:
    for signum in EXIT_ON:
        signal.signal(signum, remember)
