"""Several orchestrators on one journal, and the ``claude-scope`` command under real signals.

Real processes (``python -m orchestrator._cli``), a real SQLite file shared by all of them, real
SIGTERM/SIGINT/SIGKILL. What must hold: no orchestrator touches another's CLI or rows, every run
completes, the journal is consistent after, and a signalled run is interrupted (trees ended, resumable).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest
from claude_code_sdk import ClaudeCodeOptions

from orchestrator import (
    Journal,
    JournalError,
    Orchestrator,
    Phase,
    PhaseOutcome,
    Pipeline,
    RunBusyError,
    load_pipeline,
)
from sdk_wrapper.testing import process_alive, scenario_env
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import TWO_PHASES, wait_for

SLOW = {"steps": [{"text": "working"}, {"sleep": 1.5}, {"text": "done"}]}
THREE = """
[pipeline]
name = "three"
[[phases]]
name = "a"
prompt = "one"
scenario = {scenario}
[[phases]]
name = "b"
prompt = "two"
scenario = {scenario}
[[phases]]
name = "c"
prompt = "three"
scenario = {scenario}
"""
def _toml(scenario: object) -> str:
    return json.dumps(json.dumps(scenario))  # a TOML basic string holding the scenario's JSON


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator._cli", *args], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def _live_rows(db: Path) -> list[str]:
    if not db.exists():
        return []
    with Journal(db) as journal:
        return [p.run_id for p in journal.live_processes()]


def test_a_second_orchestrator_never_touches_the_first_ones_cli(leak_guard: LeakGuard, tmp_path: Path) -> None:
    """The bug: the second start's orphan reaping SIGTERMed the first run's running CLI (exit -15)."""
    (tmp_path / "slow.toml").write_text(THREE.format(scenario=_toml(SLOW)))
    (tmp_path / "quick.toml").write_text(THREE.format(scenario='"ok"'))
    db = tmp_path / ".claude-scope" / "runs.db"
    first = _start(tmp_path, "run", "slow.toml", "--simulate", "--run-id", "first")
    wait_for(lambda: "first" in _live_rows(db), 30)
    second = _start(tmp_path, "run", "quick.toml", "--simulate", "--run-id", "second")
    _out2, err2 = second.communicate(timeout=120)
    out1, err1 = first.communicate(timeout=120)
    assert second.returncode == 0, err2
    assert first.returncode == 0, out1 + err1
    assert "orphans.ended" not in err2
    with Journal(db) as journal:
        for run in ("first", "second"):
            phases = journal.phases(run)
            assert {p["status"] for p in phases.values()} == {"succeeded"}, phases
            assert all(p["attempts"] == 1 for p in phases.values())
        assert journal.live_processes() == []


def test_many_orchestrators_processes_and_threads_on_one_journal(leak_guard: LeakGuard, tmp_path: Path) -> None:
    """N runs at once (4 processes, 4 threads with a Journal each, 2 threads sharing one Journal): all complete,
    none is touched by another, the journal is consistent after."""
    scenario = {"steps": [{"text": "working"}, {"sleep": 0.3}, {"text": "done"}]}
    (tmp_path / "p.toml").write_text(THREE.format(scenario=_toml(scenario)))
    db = tmp_path / ".claude-scope" / "runs.db"
    db.parent.mkdir()
    Journal(db).close()
    procs = [_start(tmp_path, "run", "p.toml", "--simulate", "--run-id", f"proc{i}") for i in range(4)]
    pipeline = load_pipeline(tmp_path / "p.toml", simulate=True)
    cli = tmp_path / ".claude-scope" / "standin-bin" / "claude"
    wait_for(cli.exists, 30)  # the processes install the stand-in there
    reports: dict[str, object] = {}
    errors: list[BaseException] = []
    shared = Journal(db)

    def thread_run(run_id: str, journal: Journal | None) -> None:
        try:
            with Orchestrator(journal or db, project_dir=tmp_path, cli_path=cli) as orch:
                reports[run_id] = orch.run_sync(pipeline, run_id)
        except BaseException as exc:  # reported below, with the thread's run id
            errors.append(exc)

    threads = [threading.Thread(target=thread_run, args=(f"thread{i}", None)) for i in range(4)]
    threads += [threading.Thread(target=thread_run, args=(f"shared{i}", shared)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    results = [(p, *p.communicate(timeout=120)) for p in procs]
    shared.close()
    assert not errors, errors
    for proc, out, err in results:
        assert proc.returncode == 0, out + err
        assert "orphans.ended" not in err
    for report in reports.values():
        assert report.ok and report.orphans_ended == ()  # type: ignore[attr-defined]
    with Journal(db) as journal:
        runs = {r["run_id"]: r for r in journal.runs()}
        assert len(runs) == 10 and {r["status"] for r in runs.values()} == {"succeeded"}
        for run_id in runs:
            phases = journal.phases(run_id)
            assert [p["status"] for p in phases.values()] == ["succeeded"] * 3, (run_id, phases)
            assert all(p["attempts"] == 1 for p in phases.values())
            assert all(journal.message_log(run_id, n, 1).stat().st_size > 0 for n in phases)
        assert journal.live_processes() == []
        rows = journal._query("SELECT count(*) AS n FROM attempts WHERE ok = 1")
        assert rows[0]["n"] == 30


def test_resuming_a_run_another_orchestrator_is_running_is_refused(leak_guard: LeakGuard, tmp_path: Path) -> None:
    (tmp_path / "slow.toml").write_text(THREE.format(scenario=_toml(SLOW)))
    db = tmp_path / ".claude-scope" / "runs.db"
    first = _start(tmp_path, "run", "slow.toml", "--simulate", "--run-id", "busy")
    wait_for(lambda: "busy" in _live_rows(db), 30)
    second = subprocess.run([sys.executable, "-m", "orchestrator._cli", "resume", "busy", "--simulate"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2 and f"is running in process {first.pid}" in second.stderr
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err


@pytest.mark.anyio
async def test_a_second_orchestrator_in_this_process_cannot_take_a_running_run(leak_guard: LeakGuard,
                                                                                tmp_path: Path) -> None:
    options = ClaudeCodeOptions(cwd=str(tmp_path), env=scenario_env(SLOW))
    pipeline = Pipeline([Phase("a", "slow", options=options)])
    cli = tmp_path / "bin" / "claude"
    from sdk_wrapper.testing import install_standin

    install_standin(cli.parent)
    with Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=cli) as one, \
            Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=cli) as two:
        async with anyio.create_task_group() as tg:
            tg.start_soon(one.run, pipeline, "r")
            await anyio.sleep(0.5)
            with pytest.raises(RunBusyError):
                await two.resume("r", pipeline)
        assert one.journal.phases("r")["a"]["status"] == "succeeded"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"])
def test_a_signal_interrupts_the_run_gracefully(signum: int, code: int, leak_guard: LeakGuard,
                                                tmp_path: Path) -> None:
    """SIGTERM (systemd, docker stop, CI cancel) and SIGINT: the running phase's tree is ended by the run itself
    (the guard is off here, to prove it), the run is journalled interrupted, one line says how to resume,
    exit 128 + signal; then the exact resume command finishes the run."""
    (tmp_path / "p.toml").write_text(TWO_PHASES.format(second="grandchild_setsid"))
    db = tmp_path / ".claude-scope" / "runs.db"
    proc = _start(tmp_path, "run", "p.toml", "--simulate", "--run-id", "sig", env={"CLAUDE_SCOPE_GUARD": "0"})
    wait_for(lambda: "sig" in _live_rows(db), 30)
    wait_for(lambda: any(r == "grandchild" for _, r in leak_guard.recorded_pids()), 10)
    tree = [pid for pid, role in leak_guard.recorded_pids() if role in ("cli", "grandchild")]
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("{")]  # JSON lines are the event log
    assert len(lines) == 1 and "run sig interrupted by " + signal.Signals(signum).name in lines[0], err
    assert not [pid for pid in tree if process_alive(pid)]
    with Journal(db) as journal:
        assert journal.runs()[0]["status"] == "interrupted"
        phases = journal.phases("sig")
        assert phases["first"]["status"] == "succeeded" and phases["second"]["status"] == "cancelled"
        assert journal.live_processes() == []
    (tmp_path / "p.toml").write_text(TWO_PHASES.format(second="ok"))
    command = shlex.split(lines[0].split("Resume with: ", 1)[1])
    assert command[0] == "claude-scope"
    resumed = subprocess.run([sys.executable, "-m", "orchestrator._cli", *command[1:]], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    with Journal(db) as journal:
        assert journal.runs()[0]["status"] == "succeeded"
        assert journal.phases("sig")["first"]["attempts"] == 1  # kept, not rerun


class _JournalFailingOn(Journal):
    """A journal whose write of one phase's end fails, as a full disk or an I/O error would."""

    def __init__(self, path: Path, failing: str) -> None:
        super().__init__(path)
        self.failing = failing

    def phase_ended(self, run_id: str, outcome: PhaseOutcome) -> None:
        if outcome.name == self.failing:
            raise JournalError("disk I/O error (simulated)", self.path)
        super().phase_ended(run_id, outcome)


def test_a_crashed_run_is_journalled_as_crashed(leak_guard: LeakGuard, tmp_path: Path) -> None:
    """An error that is no phase's failure (here the journal failing mid-run) crashes the run: the journal
    says so, with the error; the phase it interrupted is cancelled and its CLI tree ended, the phase whose
    write failed is failed (``unexpected``), nothing is left running or pending; a resume reruns those two.
    (An observer's error does not crash a run: see tests/orchestrator/test_observe.py.)"""
    from sdk_wrapper.testing import install_standin

    cli = install_standin(tmp_path / "bin")
    hang = ClaudeCodeOptions(cwd=str(tmp_path), env=scenario_env("hang"))
    ok = ClaudeCodeOptions(cwd=str(tmp_path), env=scenario_env("ok"))
    pipeline = Pipeline([Phase("start", "s", options=ok), Phase("slow", "x", options=hang, depends_on=("start",)),
                         Phase("quick", "y", options=ok, depends_on=("start",))], max_parallel=2)

    with _JournalFailingOn(tmp_path / "runs.db", "quick") as journal, \
            Orchestrator(journal, project_dir=tmp_path, cli_path=cli) as orch:
        with pytest.raises(BaseExceptionGroup) as info:
            orch.run_sync(pipeline, "crash")
        assert info.group_contains(JournalError)
        run = orch.journal.runs()[0]
        assert run["status"] == "crashed" and "JournalError: disk I/O error (simulated)" in run["note"]
        phases = orch.journal.phases("crash")
        assert phases["start"]["status"] == "succeeded" and phases["slow"]["status"] == "cancelled"
        assert phases["quick"]["status"] == "failed" and phases["quick"]["kind"] == "unexpected"
        assert orch.journal.live_processes() == []
        journal.failing = ""
        report = anyio.run(orch.resume, "crash", Pipeline([
            Phase("start", "s", options=ok), Phase("slow", "x", options=ok, depends_on=("start",)),
            Phase("quick", "y", options=ok, depends_on=("start",))], max_parallel=2))
        assert report.ok and report.phases["start"].from_journal
        assert [report.phases[n].from_journal for n in ("slow", "quick")] == [False, False]
