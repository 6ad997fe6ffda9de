"""A full disk, on a real 400 KB tmpfs (skipped, saying why, where one cannot be mounted): a phase whose message
log fills it fails as ``message_log_failed`` naming the file and the cause (not ``cancelled``), nothing is left
running, the journal records it, and the run is resumable once there is space; a journal that cannot be
written is a ``JournalFullError`` naming the file, and what it could not record is repaired at the next start."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Journal, JournalFullError, PhaseOutcome, PhaseStatus
from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard

CHATTY = """
[[phases]]
name = "chatty"
prompt = "talk"
scenario = { steps = [{ burst = { count = 5000, text_bytes = 200 } }] }
[[phases]]
name = "after"
prompt = "x"
scenario = "ok"
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(where)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator._cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_a_message_log_that_fills_the_disk_fails_its_phase_clearly(leak_guard: LeakGuard, small_disk: Path) -> None:
    (small_disk / "p.toml").write_text(CHATTY)
    done = cli(small_disk, "run", "p.toml", "--simulate", "--run-id", "f1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert not [pid for pid, role in leak_guard.recorded_pids() if process_alive(pid)]
    with Journal(small_disk / ".claude-scope" / "runs.db") as journal:
        chatty = journal.phases("f1")["chatty"]
        assert journal.live_processes() == []
    assert (chatty["status"], chatty["kind"]) == ("failed", "message_log_failed")
    assert "chatty.1.jsonl could not be written: No space left on device (errno 28)" in chatty["message"]
    assert "its log was cut to its first" in chatty["message"]
    # space is freed (the disk grows): the run resumes and finishes
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    resumed = cli(small_disk, "resume", "f1", "--simulate")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr


def test_a_journal_on_a_full_disk_is_a_clear_error_repaired_at_the_next_start(small_disk: Path) -> None:
    db = small_disk / ".claude-scope" / "runs.db"
    with Journal(db) as journal:
        journal.start_run("r", {"name": "p", "phases": []}, ["a"], new=True)
        journal.phase_running("r", "a", 1, "x")
        filler = small_disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
        with pytest.raises(JournalFullError, match=r"no space left on the device that holds it: .*runs\.db"):
            for n in range(200):  # until the WAL needs a page the disk no longer has
                journal.phase_ended("r", PhaseOutcome("a", PhaseStatus.FAILED, message="x" * 4000 + str(n)))
                journal.phase_running("r", "a", 1, "y" * 4000)
    os.unlink(filler)
    with Journal(db) as journal:
        journal.start_run("r", {"name": "p", "phases": []}, ["a"])  # the next start
        row = journal.phases("r")["a"]
    assert row["status"] == "failed" and "its end was never recorded" in row["message"]
