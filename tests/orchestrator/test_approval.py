"""Approval gates through the real command line: a run waits, durably, for ``claude-scope approve`` or
``reject`` from another process; who, when and why are journalled; a rejection fails the phase (its
dependants skipped) or, with ``--retry`` on an ``after`` gate, runs it again told the note; ``--no-wait``
stops with exit 3 and a resume (even after ``kill -9``) finds the phase still waiting, never rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Journal
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import hook_server, wait_for


def writes(path: str, content: str) -> dict[str, Any]:
    return {"steps": [{"tool": {"name": "Write", "input": {"file_path": path, "content": content}}}]}


def toml(value: Any) -> str:
    """A value as TOML (inline tables for dicts)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return json.dumps(value)


def pipeline(*phases: dict[str, Any], **settings: Any) -> str:
    lines = ["[pipeline]", *(f"{k} = {toml(v)}" for k, v in settings.items())]
    for phase in phases:
        lines.append("[[phases]]")
        lines.extend(f"{key} = {toml(value)}" for key, value in phase.items())
    return "\n".join(lines) + "\n"


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator._cli", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator._cli", *args], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def status_of(tmp_path: Path, run_id: str, phase: str) -> str:
    db = tmp_path / ".claude-scope" / "runs.db"
    if not db.exists():
        return ""
    with Journal(db) as journal:
        row = journal.phases(run_id).get(phase)
    return "" if row is None else str(row["status"])


BUILD = {"name": "build", "prompt": "build it", "approval": "after", "scenario": writes("out.txt", "draft"),
         "checks": [{"type": "file_exists", "path": "out.txt"}]}
SHIP = {"name": "ship", "prompt": "ship it", "scenario": "ok", "depends_on": ["build"]}


def test_an_after_gate_waits_for_approve_from_another_process(leak_guard: LeakGuard, tmp_path: Path) -> None:
    """Its slot is free while it waits (an independent phase runs meanwhile, max_parallel = 1); status shows
    what it waits for; the approval's who, when and note are journalled; then the run finishes."""
    (tmp_path / "p.toml").write_text(pipeline(BUILD, SHIP, {"name": "docs", "prompt": "x", "scenario": "ok",
                                                            "depends_on": []}, max_parallel=1))
    running = start(tmp_path, "run", "p.toml", "--simulate", "--run-id", "a1")
    wait_for(lambda: status_of(tmp_path, "a1", "build") == "waiting_approval", 30)
    wait_for(lambda: status_of(tmp_path, "a1", "docs") == "succeeded", 30)  # ran while build waited
    table = cli(tmp_path, "status", "a1").stdout
    assert "waiting_approval" in table and "claude-scope approve a1 build" in table
    assert status_of(tmp_path, "a1", "ship") == "pending"
    approved = cli(tmp_path, "approve", "a1", "build", "--note", "looks right")
    assert approved.returncode == 0, approved.stderr
    out, err = running.communicate(timeout=60)
    assert running.returncode == 0, out + err
    with Journal(tmp_path / ".claude-scope" / "runs.db") as journal:
        phases = journal.phases("a1")
        [request] = journal.approvals("a1")
    assert phases["build"]["status"] == "succeeded" and "approved by" in phases["build"]["message"]
    assert phases["build"]["attempts"] == 1 and phases["ship"]["status"] == "succeeded"
    assert (request["gate"], request["decision"], request["note"]) == ("after", "approved", "looks right")
    assert "@" in request["who"] and request["decided"] >= request["asked"]


def test_a_rejected_before_gate_fails_and_skips_its_dependants(leak_guard: LeakGuard, tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(pipeline({**BUILD, "approval": "before"}, SHIP))
    running = start(tmp_path, "run", "p.toml", "--simulate", "--run-id", "b1")
    wait_for(lambda: status_of(tmp_path, "b1", "build") == "waiting_approval", 30)
    assert not (tmp_path / "out.txt").exists()  # it waits before it starts
    retry = cli(tmp_path, "reject", "b1", "build", "--retry")
    assert retry.returncode == 2 and "--retry is for a phase whose result waits" in retry.stderr
    rejected = cli(tmp_path, "reject", "b1", "build", "--note", "not this week")
    assert rejected.returncode == 0, rejected.stderr
    running.communicate(timeout=60)
    assert running.returncode == 1
    with Journal(tmp_path / ".claude-scope" / "runs.db") as journal:
        phases = journal.phases("b1")
    assert (phases["build"]["status"], phases["build"]["kind"]) == ("failed", "rejected")
    assert "rejected by" in phases["build"]["message"] and "not this week" in phases["build"]["message"]
    assert phases["ship"]["status"] == "skipped" and not (tmp_path / "out.txt").exists()


def test_reject_with_retry_runs_it_again_told_the_note(leak_guard: LeakGuard, tmp_path: Path) -> None:
    learns = {**writes("out.txt", "draft"), "when_prompt_contains": {"make it final": writes("out.txt", "final")}}
    (tmp_path / "p.toml").write_text(pipeline({**BUILD, "scenario": learns}))
    running = start(tmp_path, "run", "p.toml", "--simulate", "--run-id", "c1")
    wait_for(lambda: status_of(tmp_path, "c1", "build") == "waiting_approval", 30)
    assert (tmp_path / "out.txt").read_text() == "draft"
    assert cli(tmp_path, "reject", "c1", "build", "--retry", "--note", "make it final").returncode == 0
    wait_for(lambda: (tmp_path / "out.txt").read_text() == "final"
             and status_of(tmp_path, "c1", "build") == "waiting_approval", 30)
    assert cli(tmp_path, "approve", "c1", "build").returncode == 0
    running.communicate(timeout=60)
    assert running.returncode == 0
    with Journal(tmp_path / ".claude-scope" / "runs.db") as journal:
        attempts = [a for a in journal.attempts("c1") if a["name"] == "build"]
        decisions = [(a["decision"], bool(a["retry"])) for a in journal.approvals("c1")]
    assert len(attempts) == 2 and "make it final" in attempts[1]["prompt"] and "rejected" in attempts[1]["prompt"]
    assert decisions == [("rejected", True), ("approved", False)]


@pytest.mark.parametrize("kill", [False, True], ids=["no-wait", "kill-9"])
def test_a_waiting_run_stops_and_resumes_without_rerunning(leak_guard: LeakGuard, tmp_path: Path,
                                                           kill: bool) -> None:
    """``--no-wait`` exits 3 (or the orchestrator is killed while it waits); a decision made meanwhile is
    applied by the resume, which does not run the phase again."""
    (tmp_path / "p.toml").write_text(pipeline(BUILD, SHIP))
    if kill:
        running = start(tmp_path, "run", "p.toml", "--simulate", "--run-id", "d1")
        wait_for(lambda: status_of(tmp_path, "d1", "build") == "waiting_approval", 30)
        os.kill(running.pid, signal.SIGKILL)
        running.communicate(timeout=30)
    else:
        stopped = cli(tmp_path, "run", "p.toml", "--simulate", "--run-id", "d1", "--no-wait")
        assert stopped.returncode == 3, stopped.stdout + stopped.stderr
        assert "waiting for approval: build" in stopped.stdout
        assert "waiting" in cli(tmp_path, "runs").stdout
        # the run page shows what it waits for, with the result and the evidence to review
        assert cli(tmp_path, "report", "d1", "--out", "page.html").returncode == 0
        page = (tmp_path / "page.html").read_text()
        assert 'class="pill s-waiting_approval"' in page and "claude-scope approve d1 build" in page
        assert "out.txt" in page  # its check's evidence
    assert cli(tmp_path, "approve", "d1", "build").returncode == 0
    twice = cli(tmp_path, "approve", "d1", "build")
    assert twice.returncode == 2 and "was approved by" in twice.stderr  # nothing changed
    resumed = cli(tmp_path, "resume", "d1", "--simulate")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with Journal(tmp_path / ".claude-scope" / "runs.db") as journal:
        phases = journal.phases("d1")
    assert phases["build"]["status"] == "succeeded" and phases["build"]["attempts"] == 1
    assert phases["ship"]["status"] == "succeeded"


def test_bad_decisions_are_refused_and_change_nothing(leak_guard: LeakGuard, tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(pipeline({"name": "plain", "prompt": "x", "scenario": "ok"}))
    assert cli(tmp_path, "run", "p.toml", "--simulate", "--run-id", "e1").returncode == 0
    for args, said in ((("approve", "nope", "plain"), "no run 'nope'"),
                       (("approve", "e1", "nope"), "has no phase 'nope'"),
                       (("reject", "e1", "plain"), "is not waiting for approval (it is succeeded)")):
        done = cli(tmp_path, *args)
        assert done.returncode == 2 and said in done.stderr, done.stderr
    with Journal(tmp_path / ".claude-scope" / "runs.db") as journal:
        assert journal.approvals("e1") == [] and journal.phases("e1")["plain"]["status"] == "succeeded"


def test_a_phase_that_starts_waiting_is_posted_to_the_approval_webhook(leak_guard: LeakGuard, tmp_path: Path) -> None:
    """The webhook's header value comes from the environment variable the file names (never the file); it is
    sent, and appears in no log or journal."""
    got: list[dict[str, Any]] = []
    with hook_server(got) as url:
        hook = {"url": url, "headers": {"Authorization": "HOOK_TOKEN"}}
        (tmp_path / "p.toml").write_text(pipeline(BUILD, approval_webhook=hook))
        missing = cli(tmp_path, "run", "p.toml", "--simulate", "--run-id", "h0")
        assert missing.returncode == 2 and "names environment variable HOOK_TOKEN, which is not set" in missing.stderr
        env = {**os.environ, "HOOK_TOKEN": "Bearer s3cret-hook-token"}
        done = subprocess.run([sys.executable, "-m", "orchestrator._cli", "run", "p.toml", "--simulate", "--run-id",
                               "h1", "--no-wait"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 3, done.stdout + done.stderr
    [body] = got
    authorization = body["auth"]
    assert (body["type"], body["run_id"], body["phase"], body["gate"]) == (
        "claude_scope.approval_waiting", "h1", "build", "after")
    assert body["approve"] == "claude-scope approve h1 build" and authorization == "Bearer s3cret-hook-token"
    assert "s3cret" not in done.stdout + done.stderr
    journal_bytes = b"".join(p.read_bytes() for p in (tmp_path / ".claude-scope").rglob("*") if p.is_file())
    assert b"s3cret" not in journal_bytes
