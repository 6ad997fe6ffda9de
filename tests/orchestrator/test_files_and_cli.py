"""Pipeline files, journal failures, the claude-scope command, and resume after a real kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anyio
import psutil
import pytest

from orchestrator import (
    Journal,
    JournalCorruptError,
    JournalLockedError,
    Orchestrator,
    Owner,
    Phase,
    PhaseStatus,
    Pipeline,
    PipelineError,
    load_pipeline,
)
from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import TWO_PHASES, phase_live, wait_for

GOOD = """
[pipeline]
name = "t"
[[phases]]
name = "first"
prompt = "one"
scenario = "ok"
checks = [ { type = "file_exists", path = "x", min_bytes = 2 } ]
"""


@pytest.mark.parametrize(("text", "expected"), [
    ("[[phases]]\nname = 'a'\nprompt = 'p'\ntimeout = 3\n", "phase 'a': unknown key 'timeout'"),
    ("[[phases]]\nname = 'a'\n", "phase 'a': missing required key 'prompt'"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\nmax_turns = 'ten'\n", "phase 'a': key 'max_turns' must be int, got str"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\ntimeout_s = true\n", "key 'timeout_s' must be int or float, got bool"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\ndepends_on = ['zzz']\n", "phase 'a': depends_on names unknown phase 'zzz'"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\ndepends_on = ['b']\n[[phases]]\nname = 'b'\nprompt = 'p'\n"
     "depends_on = ['a']\n", "depends_on forms a cycle: a -> b -> a"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\n[[phases]]\nname = 'a'\nprompt = 'q'\n", "'a' is defined more than once"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\nchecks = [{type = 'exists'}]\n", "phase 'a'.checks[0]: key 'type' must be"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\nchecks = [{type = 'glob'}]\n", "missing required key 'pattern'"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\nretry = {attempts = 0}\n", "phase 'a'.retry: RetryPolicy.attempts"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\npermission_mode = 'yolo'\n", "permission_mode' must be one of"),
    ("[pipeline]\nmax_paralel = 2\n[[phases]]\nname = 'a'\nprompt = 'p'\n", "[pipeline]: unknown key 'max_paralel'"),
    ("[pipeline]\nname = 'x'\n", "no [[phases]] defined"),
    ("[[phases]]\nname = 'a'\nprompt = \n", "invalid TOML"),
])
def test_bad_pipeline_files_name_phase_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    assert expected in str(info.value) and str(path) in str(info.value)


def test_good_pipeline_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    pipeline = load_pipeline(path, simulate=True)
    first = pipeline.phases[0]
    assert first.options is not None and first.options.env == {"CLAUDE_STANDIN_SCENARIO": "ok"}
    assert first.options.cwd == str(tmp_path) and pipeline.source == str(path.resolve())
    assert load_pipeline(path).phases[0].options.env == {}  # type: ignore[union-attr]  # scenario only simulated


def test_the_shipped_example_is_valid() -> None:
    example = Path(__file__).parents[2] / "orchestrator" / "examples" / "v3_pipeline.toml"
    pipeline = load_pipeline(example, simulate=True)
    assert [p.name for p in pipeline.phases] == ["research", "planning", "implement", "architecture", "lint",
                                                 "typecheck", "test", "integration", "e2e", "validate", "commit"]


def test_corrupt_journal_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not a database, but it was somebody's file" * 100)
    with pytest.raises(JournalCorruptError) as info:
        Journal(path)
    assert info.value.path == path
    assert path.read_bytes().startswith(b"this is not a database")  # left untouched for inspection


def test_locked_journal_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    Journal(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with Journal(path, busy_timeout_s=0.2) as journal, pytest.raises(JournalLockedError):
            journal.start_run("r", {}, ["a"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator._cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_cli_run_status_runs_and_exit_codes(leak_guard: LeakGuard, tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(GOOD)
    failed = _cli("run", "p.toml", "--simulate", "--run-id", "r1", cwd=tmp_path)
    assert failed.returncode == 1, failed.stderr  # the check finds no file "x": a real failure, exit 1
    assert "[validation_failed] file_exists:x: x does not exist" in failed.stdout
    assert '"event": "phase.status"' in failed.stderr  # not a terminal: JSON lines
    (tmp_path / "x").write_text("evidence")
    resumed = _cli("resume", "r1", "--simulate", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    status = _cli("status", "r1", "--json", cwd=tmp_path)
    assert '"phase": "first"' in status.stdout and '"status": "succeeded"' in status.stdout
    assert '"attempts": 2' in status.stdout
    assert "r1" in _cli("runs", cwd=tmp_path).stdout
    missing = _cli("status", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr
    bad = _cli("run", "missing.toml", cwd=tmp_path)
    assert bad.returncode == 2 and "cannot read" in bad.stderr and "Traceback" not in bad.stderr


def test_demo_command_reports_the_scripted_failure(leak_guard: LeakGuard, tmp_path: Path) -> None:
    demo = _cli("--project-dir", str(tmp_path), "demo", cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "e2e            failed" in demo.stdout and "[max_turns]" in demo.stdout
    assert "commit         skipped" in demo.stdout
    assert (tmp_path / "milestone_1" / "research.md").stat().st_size > 100


@pytest.mark.parametrize("guard", [False, True], ids=["journal-reaps", "guard-reaps"])
def test_resume_after_kill_9(guard: bool, leak_guard: LeakGuard, tmp_path: Path) -> None:
    """A real kill -9 of the orchestrator mid-phase: the finished phase is kept, the orphaned CLI ended.

    With the host guard (the default) the tree is gone within about 2 s of the kill, with no restart; without
    it (CLAUDE_SCOPE_GUARD=0) it runs on until the next orchestrator start on the journal ends it."""
    (tmp_path / "p.toml").write_text(TWO_PHASES.format(second="grandchild_setsid"))
    env = {**os.environ, "CLAUDE_SCOPE_GUARD": "1" if guard else "0"}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator._cli", "run", "p.toml", "--simulate",
                             "--run-id", "k"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    db = tmp_path / ".claude-scope" / "runs.db"
    wait_for(phase_live(db, "second"), 30)
    with Journal(db) as journal:
        (live,) = journal.live_processes()
        assert journal.phases("k")["first"]["status"] == "succeeded"
    wait_for(lambda: any(r == "grandchild" for _, r in leak_guard.recorded_pids()), 10)
    grandchild = next(pid for pid, role in leak_guard.recorded_pids() if role == "grandchild")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Journal(db) as journal:  # journalled "running", but its owner is gone: shown as what it is
        (run,) = journal.runs()
        assert run["status"] == "interrupted" and f"pid {proc.pid}" in run["note"]
    if guard:
        wait_for(lambda: not process_alive(live.pid) and not process_alive(grandchild), 2.5)
    else:
        time.sleep(0.5)
        assert process_alive(live.pid) and process_alive(grandchild)  # orphaned, as the bug report says

    (tmp_path / "p.toml").write_text(TWO_PHASES.format(second="ok"))
    pipeline = load_pipeline(tmp_path / "p.toml", simulate=True)
    with Orchestrator(db, project_dir=tmp_path, cli_path=tmp_path / ".claude-scope" / "standin-bin" / "claude") \
            as orch:
        report = anyio.run(orch.resume, "k", pipeline)
        if not guard:
            assert {live.pid, grandchild} <= set(report.orphans_ended)
        # (a zombie of a non-reaping init counts as ended)
        assert not process_alive(live.pid) and not process_alive(grandchild)
        assert report.phases["first"].from_journal and report.phases["first"].attempts == 1
        assert not orch.journal.message_log("k", "first", 2).exists()  # the finished phase did not run again
        assert report.phases["second"].status is PhaseStatus.SUCCEEDED and report.phases["second"].attempts == 2
        assert orch.journal.live_processes() == []


def test_reused_pid_is_never_signalled(leak_guard: LeakGuard, tmp_path: Path) -> None:
    """A journalled pid whose start time does not match (a reused pid) is forgotten, not killed."""
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        with Journal(tmp_path / "runs.db") as journal:
            gone = Owner(Owner.current().host, os.getpid(), 0.0)  # our pid, another start: a dead owner
            journal.process_started("old", "x", bystander.pid, psutil.Process(bystander.pid).create_time() - 100,
                                    "no-such-query", owner=gone)
            with Orchestrator(journal, project_dir=tmp_path) as orch:
                ended = anyio.run(orch.end_orphans)
            assert ended == () and bystander.poll() is None
            assert journal.live_processes() == []
    finally:
        bystander.kill()
        bystander.wait()


def test_phase_spec_is_plain_data() -> None:
    phase = Phase("a", "prompt text", timeout_s=5, depends_on=("b",))
    assert Pipeline([Phase("b", "x"), phase]).phases[1].to_dict()["depends_on"] == ["b"]


RETRIES_COST = """
[[phases]]
name = "crash"
prompt = "x"
scenario = "exit_error"
[[phases]]
name = "flaky"
prompt = "x"
retry = { attempts = 3, initial_wait_s = 0, max_wait_s = 0, jitter_s = 0 }
[phases.scenario]
steps = []
exit_code = 1
result = { subtype = "success", is_error = true, api_error_status = 429, terminal_reason = "api_error", \
result = "API Error: 429 rate_limit_error", total_cost_usd = 0.5 }
[[phases]]
name = "after"
prompt = "x"
depends_on = ["crash"]
"""


def test_a_phase_costs_every_attempt_in_the_journal_status_resume_and_run_page(
        leak_guard: LeakGuard, tmp_path: Path) -> None:
    """Three attempts at 0.50 cost 1.50, not the last one's 0.50; a resume adds its attempts to those journalled;
    a crash's unreported cost is shown as unknown and makes the run's a lower bound, never a silent 0."""
    (tmp_path / "p.toml").write_text(RETRIES_COST)
    run = _cli("run", "p.toml", "--simulate", "--run-id", "r1", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "(cost >=1.5000 USD," in run.stdout
    lines = {line.split()[0]: line.split() for line in run.stdout.splitlines() if line.startswith(("crash", "flaky"))}
    assert lines["crash"][1:4] == ["failed", "1", "?"] and lines["flaky"][1:4] == ["failed", "3", "1.5000"]
    status = [json.loads(line) for line in _cli("status", "r1", "--json", cwd=tmp_path).stdout.splitlines()]
    by_phase = {s["phase"]: s for s in status}
    assert by_phase["flaky"]["cost_usd"] == 1.5 and not by_phase["flaky"]["cost_lower_bound"]
    assert by_phase["crash"]["cost_usd"] is None and by_phase["crash"]["cost_lower_bound"]
    resumed = _cli("resume", "r1", "--simulate", cwd=tmp_path)
    assert resumed.returncode == 1
    status = [json.loads(line) for line in _cli("status", "r1", "--json", cwd=tmp_path).stdout.splitlines()]
    flaky = next(s for s in status if s["phase"] == "flaky")
    assert (flaky["attempts"], flaky["cost_usd"]) == (6, 3.0)  # the first run's three and the resume's three
    page = _cli("report", "r1", "--out", "page.html", cwd=tmp_path)
    assert page.returncode == 0, page.stderr
    html = (tmp_path / "page.html").read_text()
    assert "cost >=3.0000 USD" in html and "<td class=num>3.0000</td>" in html and "<td class=num>?</td>" in html


RECHECK = """
[[phases]]
name = "research"
prompt = "x"
scenario = { steps = [ { tool = { name = "Write", input = { file_path = "research.md", content = "findings" } } } ] }
checks = [ { type = "file_exists", path = "research.md" } ]
[[phases]]
name = "plan"
prompt = "x"
scenario = { steps = [ { tool = { name = "Write", input = { file_path = "plan.md", content = "plan" } } } ] }
checks = [ { type = "file_exists", path = "plan.md" } ]
[[phases]]
name = "release"
prompt = "x"
scenario = "ok"
checks = [ { type = "file_exists", path = "approved.md" } ]
"""


def test_resume_recheck_reruns_phases_whose_evidence_is_gone(leak_guard: LeakGuard, tmp_path: Path) -> None:
    """release fails its check; research.md is then deleted. A plain resume reruns release only; with
    --recheck, research's check runs first and fails, so research reruns, and plan, which depends on it."""
    (tmp_path / "p.toml").write_text(RECHECK)
    assert _cli("run", "p.toml", "--simulate", "--run-id", "r", cwd=tmp_path).returncode == 1
    (tmp_path / "research.md").unlink()
    (tmp_path / "approved.md").write_text("yes")
    plain = _cli("resume", "r", "--simulate", cwd=tmp_path)
    assert plain.returncode == 0 and "recheck:" not in plain.stdout
    with Journal(tmp_path / ".claude-scope" / "runs.db") as journal:
        assert [journal.phases("r")[n]["attempts"] for n in ("research", "plan", "release")] == [1, 1, 2]
    assert not (tmp_path / "research.md").exists()  # a plain resume trusts the journal
    rechecked = _cli("resume", "r", "--simulate", "--recheck", cwd=tmp_path)
    assert rechecked.returncode == 0, rechecked.stdout + rechecked.stderr
    assert "recheck: research ran again: its evidence is gone: file_exists:research.md: research.md does not " \
           "exist" in rechecked.stdout
    assert "recheck: plan ran again: it depends on 'research', which reruns" in rechecked.stdout
    assert "recheck: release ran again" in rechecked.stdout
    with Journal(tmp_path / ".claude-scope" / "runs.db") as journal:
        assert [journal.phases("r")[n]["attempts"] for n in ("research", "plan", "release")] == [2, 2, 3]
    assert (tmp_path / "research.md").read_text() == "findings"


def test_help_answers_without_importing_an_sdk(tmp_path: Path) -> None:
    """--help and argument errors are parsed with the standard library only: no SDK (claude-code-sdk pulls
    in mcp, most of a second), no anyio, nothing of the wrapper but the packages' lazy-import helper
    (``sdk_wrapper.lowlevel.lazy_names``). (The time is a benchmark's: here only what is imported.)"""
    probe = ("import sys\nfrom orchestrator._cli import main\n"
             "for argv in (['--help'], ['run', '--help'], ['no-such-command']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "light = {'sdk_wrapper', 'sdk_wrapper._lazy', 'sdk_wrapper.lowlevel'}\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('claude_code_sdk', 'claude_agent_sdk', "
             "'mcp', 'anyio', 'sdk_wrapper') and m not in light or m == 'orchestrator._engine'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "``" not in subprocess.run([sys.executable, "-m", "orchestrator._cli", "--help"], capture_output=True,
                                      text=True, timeout=60).stdout  # plain words, not reStructuredText


FOLLOWED = """
[pipeline]
name = "followed"
[[phases]]
name = "slow"
prompt = "one"
scenario = { steps = [{ sleep = 1.0 }, { text = "done" }] }
[[phases]]
name = "fails"
prompt = "two"
scenario = "max_turns"
[[phases]]
name = "after"
prompt = "three"
scenario = "ok"
"""


def test_status_is_a_table_in_pipeline_order_and_follow_exits_with_the_runs_code(
        leak_guard: LeakGuard, tmp_path: Path) -> None:
    """From another process: ``status --follow`` prints each phase change as the journal records it and exits
    with the exit code the run's command journalled; ``status`` is a table in pipeline order (not by name),
    durations readable; ``runs`` has the pipeline, status, start, duration and cost."""
    (tmp_path / "p.toml").write_text(FOLLOWED)
    running = subprocess.Popen([sys.executable, "-m", "orchestrator._cli", "run", "p.toml", "--simulate",
                                "--run-id", "f1"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = tmp_path / ".claude-scope" / "runs.db"
    wait_for(lambda: db.exists() and "f1" in _cli("runs", cwd=tmp_path).stdout, 30)
    followed = _cli("status", "f1", "--follow", cwd=tmp_path)
    running.communicate(timeout=60)
    assert running.returncode == 1 and followed.returncode == 1, followed.stdout + followed.stderr
    lines = followed.stdout.splitlines()
    said = [" ".join(line.split()[1:3]) for line in lines[:-1]]
    assert "slow running" in said and "slow succeeded" in said and "fails failed" in said
    assert "after skipped" in said and said.index("slow running") < said.index("slow succeeded")
    assert lines[-1].startswith("run f1 failed")
    table = _cli("status", "f1", cwd=tmp_path).stdout.splitlines()
    assert table[0].startswith("run f1  followed  failed  started ")
    assert [row.split()[0] for row in table[2:]] == ["slow", "fails", "after"]  # pipeline order
    slow = table[2].split()
    assert slow[1:3] == ["succeeded", "1"] and slow[3].endswith("s") and len(slow[3]) <= 5  # "1.1s"
    assert "max_turns:" in table[3] and "dependency 'fails' failed" in table[4]
    runs = _cli("runs", cwd=tmp_path).stdout.splitlines()
    assert runs[0].split() == ["run", "pipeline", "status", "started", "time", "cost"]
    assert runs[1].split()[:3] == ["f1", "followed", "failed"] and runs[1].split()[-1] == "0.0246"


@pytest.mark.parametrize(("share", "dirs", "files"), [("", 0o700, 0o600), ("group", 0o2770, 0o660)],
                         ids=["private", "group"])
def test_our_state_is_private_whatever_the_umask(leak_guard: LeakGuard, tmp_path: Path, share: str, dirs: int,
                                                 files: int) -> None:
    """Journal, message logs and the run page hold prompts and transcripts: with umask 000 they are still
    0700/0600 (or 2770/0660 with CLAUDE_SCOPE_SHARE=group); a .claude-scope left wider is narrowed."""
    import stat

    (tmp_path / ".claude-scope").mkdir(mode=0o777)
    (tmp_path / ".claude-scope").chmod(0o777)
    (tmp_path / "p.toml").write_text(GOOD.replace('path = "x", min_bytes = 2', 'path = "p.toml"'))
    env = {**os.environ, "CLAUDE_SCOPE_SHARE": share}
    code = ("import os, sys; os.umask(0); from orchestrator._cli import main; "
            "sys.exit(main(['run', 'p.toml', '--simulate', '--run-id', 'u']) or main(['report', 'u']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    ours = [tmp_path / ".claude-scope", *(tmp_path / ".claude-scope").rglob("*")]
    assert any(p.suffix == ".jsonl" for p in ours) and any(p.suffix == ".html" for p in ours)
    assert any(p.name == "runs.db-wal" for p in ours) or any(p.name == "runs.db" for p in ours)
    standin = tmp_path / ".claude-scope" / "standin-bin"  # what --simulate runs: no secret, but not replaceable
    assert {stat.S_IMODE(p.stat().st_mode) for p in (standin, standin / "claude")} == {0o755}
    wrong = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in ours
             if stat.S_IMODE(p.stat().st_mode) != (dirs if p.is_dir() else files) and standin not in (p, p.parent)}
    assert wrong == {}
