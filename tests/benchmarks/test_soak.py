"""The soak gate's short form (CI): 1,000 operations, exit 0 only if nothing leaked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from benchmarks.soak import Leak, Soak

ROOT = Path(__file__).parents[2]


@pytest.mark.timeout(600)  # about 135 s on 2 cores; the bound only catches a hang
def test_soak_short_form_is_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--ops", "1000"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("clean: 1000 operations")
    assert len([line for line in lines if line.startswith("ops ")]) == 10  # checked every 100


def test_soak_check_trips_on_a_leaked_process_and_descriptor(tmp_path: Path) -> None:
    state = Soak(tmp_path, tmp_path / "cli", tmp_path / "pids", seed=1)
    state.fds0 = state.me.num_fds()
    child = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(Leak, match="leaked processes"):
            state.check()
    finally:
        child.kill()
        child.wait()
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        with pytest.raises(Leak, match="leaked descriptors: 1"):
            state.check()
    finally:
        os.close(fd)
    assert "live processes   0" in state.check()
    assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.timeout(300)  # about 20 s on 2 cores; the bound only catches a hang
def test_soak_many_orchestrators_on_one_journal_is_clean() -> None:
    """The second stage: 4 orchestrator processes x 5 runs on one journal, some kill -9ed or SIGTERMed and
    resumed; every run and phase ends as its scenarios say, nothing is left."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.soak_journal", "--orchestrators", "4", "--runs", "5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-1].startswith("clean: 4 orchestrators x 5 runs on one journal")
