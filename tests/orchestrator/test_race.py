"""Races (``[[phases.variants]]``) on real repositories and real processes: the first variant whose result
and checks pass wins and is merged, the others are cancelled with their trees ended and their worktrees
gone; all failing fails the phase with each one's evidence; SIGINT mid-race leaves nothing and a resume
runs the race again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator import Journal, Orchestrator, PhaseKind, PipelineError, parse_pipeline
from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import wait_for
from tests.orchestrator.test_isolation import git, left_of_ours, project, writes

pytestmark = pytest.mark.anyio
__all__ = ["project"]  # the fixture, shared

CHECK = [{"type": "file_exists", "path": "answer.md"}]


def race(*variants: dict[str, Any], **phase: Any) -> list[dict[str, Any]]:
    return [{"name": "solve", "prompt": "solve it", "isolation": "worktree", "checks": CHECK,
             "variants": list(variants), **phase}]


async def run(project: Path, cli: Path, phases: list[dict[str, Any]], run_id: str = "r",
              **settings: Any) -> Orchestrator:
    orch = Orchestrator(project / ".claude-scope" / "runs.db", project_dir=project, cli_path=cli)
    await orch.run(parse_pipeline({"pipeline": settings, "phases": phases}, project_dir=project, simulate=True),
                   run_id=run_id)
    return orch


async def test_the_first_to_pass_wins_and_the_others_are_cancelled(leak_guard: LeakGuard, standin_cli: Path,
                                                                    project: Path, tmp_path: Path) -> None:
    variants = ({"name": "slow", "scenario": {"steps": [{"text": "thinking"}, {"hang": True}]}},
                {"name": "quick", "scenario": writes("answer.md", "quick\n", {"sleep": 0.5})},
                {"name": "wrong", "scenario": writes("other.md", "no answer\n")})
    with await run(project, standin_cli, race(*variants)) as orch:
        phase = orch.journal.phases("r")["solve"]
        attempts = [a for a in orch.journal.attempts("r") if a["name"] == "solve"]
        assert orch.journal.live_processes() == []
        assert orch.journal.git_states() == []
    assert phase["status"] == "succeeded", phase
    assert (project / "answer.md").read_text() == "quick\n" and not (project / "other.md").exists()
    assert sorted((a["variant"], a["number"]) for a in attempts) == [("quick", 2), ("slow", 1), ("wrong", 3)]
    slow = next(a for a in attempts if a["variant"] == "slow")
    assert slow["kind"] == "cancelled" and slow["cost_usd"] is None  # unknown, never 0
    assert phase["cost_lower_bound"] == 1 and phase["attempts"] == 3
    race_evidence = next(c for c in json.loads(phase["evidence"]) if c["name"] == "race")
    assert race_evidence["details"]["winner"] == "quick"
    assert race_evidence["details"]["variants"]["slow"].startswith("cancelled")
    assert race_evidence["details"]["variants"]["wrong"].startswith("failed: file_exists:answer.md")
    assert race_evidence["details"]["trees_gone_ms"] is not None
    # every CLI the race started is gone (the stand-in records its pids), nothing of ours left in git
    assert not [pid for pid, role in leak_guard.recorded_pids() if role == "cli" and process_alive(pid)]
    assert left_of_ours(project, tmp_path) == ([], [], [])
    assert git(project, "status", "--porcelain") == ""


async def test_when_every_variant_fails_the_phase_fails_with_each_ones_evidence(
        leak_guard: LeakGuard, standin_cli: Path, project: Path, tmp_path: Path) -> None:
    variants = ({"scenario": writes("nothing.md", "x")}, {"scenario": "execution_error"})
    with await run(project, standin_cli, race(*variants)) as orch:
        phase = orch.journal.phases("r")["solve"]
    assert phase["status"] == "failed"
    evidence = {c["name"]: c for c in json.loads(phase["evidence"])}
    assert not evidence["v1:file_exists:answer.md"]["passed"]
    assert "all 2 variants failed" in evidence["race"]["evidence"]
    assert set(evidence["race"]["details"]["variants"]) == {"v1", "v2"}
    assert left_of_ours(project, tmp_path) == ([], [], [])


async def test_the_run_budget_reserves_every_variants_cap(leak_guard: LeakGuard, standin_cli: Path,
                                                          project: Path) -> None:
    variants = ({"scenario": writes("answer.md", "a")}, {"scenario": writes("answer.md", "b", {"sleep": 0.3})})
    with await run(project, standin_cli, race(*variants, max_cost_usd=0.5), max_cost_usd=2.0) as orch:
        assert orch.journal.phases("r")["solve"]["reserved_usd"] == pytest.approx(1.0)
    with await run(project, standin_cli, race(*variants, max_cost_usd=0.8), "r2", max_cost_usd=1.0) as orch:
        skipped = orch.journal.phases("r2")["solve"]
    assert (skipped["status"], skipped["kind"]) == ("skipped", PhaseKind.RUN_BUDGET_SPENT)


def test_a_race_needs_isolation_and_two_distinct_variants(tmp_path: Path) -> None:
    def load(**phase: Any) -> None:
        parse_pipeline({"phases": [{"name": "r", "prompt": "p", **phase}]}, project_dir=tmp_path)

    with pytest.raises(PipelineError, match="needs isolation"):
        load(variants=[{}, {}])
    with pytest.raises(PipelineError, match="two variants or more"):
        load(isolation="worktree", variants=[{}])
    with pytest.raises(PipelineError, match="unique"):
        load(isolation="worktree", variants=[{"name": "a"}, {"name": "a"}])
    with pytest.raises(PipelineError, match="unknown key 'checks'"):
        load(isolation="worktree", variants=[{"checks": []}, {}])
    with pytest.raises(PipelineError, match=r"reads phases\.x"):
        load(isolation="worktree", variants=[{"prompt": "{{ phases.x.result }}"}, {}])


RACE_FILE = """
[[phases]]
name = "solve"
prompt = "solve it"
isolation = "worktree"
checks = [{{ type = "file_exists", path = "answer.md" }}]
[[phases.variants]]
scenario = {first}
[[phases.variants]]
scenario = {second}
"""


def test_sigint_mid_race_leaves_nothing_and_resume_runs_it_again(leak_guard: LeakGuard, project: Path,
                                                                  tmp_path: Path) -> None:
    hang = json.dumps(json.dumps({"steps": [{"text": "thinking"}, {"hang": True}]}))
    (project / "race.toml").write_text(RACE_FILE.format(first=hang, second=hang))
    git(project, "add", "race.toml")
    git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "race")
    db = project / ".claude-scope" / "runs.db"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator._cli", "run", "race.toml", "--simulate",
                             "--run-id", "sig"], cwd=project, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "CLAUDE_SCOPE_GUARD": "0"})
    wait_for(lambda: db.exists() and len(Journal(db).live_processes()) == 2, 30)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not [pid for pid, role in leak_guard.recorded_pids() if role == "cli" and process_alive(pid)]
    assert left_of_ours(project, tmp_path) == ([], [], [])
    with Journal(db) as journal:
        assert journal.live_processes() == [] and journal.git_states() == []
        assert journal.phases("sig")["solve"]["status"] == "cancelled"
    answer = json.dumps(json.dumps(writes("answer.md", "at last\n")))
    (project / "race.toml").write_text(RACE_FILE.format(first=hang, second=answer))
    resumed = subprocess.run([sys.executable, "-m", "orchestrator._cli", "resume", "sig", "--simulate"],
                             cwd=project, capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert (project / "answer.md").read_text() == "at last\n"
    with Journal(db) as journal:
        assert journal.phases("sig")["solve"]["attempts"] == 4  # the race ran again: two more variants
    assert left_of_ours(project, tmp_path) == ([], [], [])


_RACING = """
import anyio, json, sys
from pathlib import Path
from orchestrator import Orchestrator, parse_pipeline
project, cli = Path(sys.argv[1]), sys.argv[2]
hang = {"steps": [{"text": "thinking"}, {"hang": True}]}
data = {"phases": [{"name": "solve", "prompt": "p", "isolation": "worktree", "variants": [
    {"scenario": hang}, {"scenario": hang}, {"scenario": hang}]}]}
orch = Orchestrator(project / ".claude-scope" / "runs.db", project_dir=project, cli_path=cli)
anyio.run(orch.run, parse_pipeline(data, project_dir=project, simulate=True), "k")
"""


def test_kill_9_mid_race_then_a_restart_leaves_nothing_and_the_run_resumes(
        leak_guard: LeakGuard, standin_cli: Path, project: Path, tmp_path: Path) -> None:
    db = project / ".claude-scope" / "runs.db"
    child = subprocess.Popen([sys.executable, "-c", _RACING, str(project), str(standin_cli)],
                             env={**os.environ, "CLAUDE_SCOPE_GUARD": "0"})
    try:
        wait_for(lambda: db.exists() and len(Journal(db).live_processes()) == 3
                 and len([r for _, r in leak_guard.recorded_pids() if r == "cli"]) == 3, 30)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    clis = [pid for pid, role in leak_guard.recorded_pids() if role == "cli" and process_alive(pid)]
    assert len(clis) == 3 and len(left_of_ours(project, tmp_path)[0]) == 3  # what the killed run left
    data = {"phases": race({"scenario": writes("answer.md", "a")}, {"scenario": "hang"})}
    with Orchestrator(db, project_dir=project, cli_path=standin_cli) as orch:
        anyio.run(orch.end_orphans)
        assert not [pid for pid in clis if process_alive(pid)]
        assert left_of_ours(project, tmp_path) == ([], [], []) and git(project, "status", "--porcelain") == ""
        report = anyio.run(orch.resume, "k", parse_pipeline(data, project_dir=project, simulate=True))
    assert report.ok and (project / "answer.md").read_text() == "a"
    assert left_of_ours(project, tmp_path) == ([], [], [])
