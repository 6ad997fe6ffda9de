"""Watching a run: the order observers see, a failing observer, the live table (rich), the attempt details
the journal keeps for the run page. Against the stand-in CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from orchestrator import Orchestrator, Pipeline, RunObserver
from orchestrator._progress import LiveTable
from sdk_wrapper import QueryOutcome, RetryPolicy, SpawnedCLI
from sdk_wrapper.testing.pytest_plugin import LeakGuard

from .test_engine import orchestrator_in, phase, write

pytestmark = pytest.mark.anyio


class Recorder(RunObserver):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def run_started(self, run_id: str, pipeline: Pipeline, kept: tuple[str, ...]) -> None:
        self.calls.append(("run_started", run_id, kept))

    def phase_started(self, run_id: str, name: str) -> None:
        self.calls.append(("phase_started", name))

    def attempt_started(self, run_id: str, name: str, number: int) -> None:
        self.calls.append(("attempt_started", name, number))

    def spawned(self, run_id: str, name: str, cli: SpawnedCLI) -> None:
        self.calls.append(("spawned", name, cli.pid > 0))

    def message(self, run_id: str, name: str, message: Any) -> None:
        if not self.calls or self.calls[-1][:2] != ("message", name):
            self.calls.append(("message", name))  # a run of messages as one entry

    def attempt_ended(self, run_id: str, name: str, number: int, outcome: QueryOutcome) -> None:
        self.calls.append(("attempt_ended", name, number, outcome.ok))

    def phase_ended(self, run_id: str, outcome: Any) -> None:
        self.calls.append(("phase_ended", outcome.name, outcome.status.value))

    def run_ended(self, run_id: str, report: Any, error: str = "") -> None:
        self.calls.append(("run_ended", None if report is None else report.ok, error))


class Broken(RunObserver):
    def phase_started(self, run_id: str, name: str) -> None:
        raise RuntimeError("a progress bar bug")

    def message(self, run_id: str, name: str, message: Any) -> None:
        raise ValueError("another")


async def test_observers_see_each_state_change_in_order(leak_guard: LeakGuard, tmp_path: Path,
                                                        standin_cli: Path) -> None:
    seen, broken = Recorder(), Broken()
    with orchestrator_in(tmp_path, standin_cli, [broken, seen]) as orch:
        p = orch.project_dir
        report = await orch.run(Pipeline([
            phase("api", "overloaded", p, retry=RetryPolicy(attempts=2, wait=False)),
            phase("after", "ok", p)]), run_id="r1")
    assert not report.ok  # the broken observer did not change the run: api failed by itself, after was skipped
    assert seen.calls == [
        ("run_started", "r1", ()),
        ("phase_started", "api"),
        ("attempt_started", "api", 1), ("spawned", "api", True), ("message", "api"), ("attempt_ended", "api", 1, False),
        ("attempt_started", "api", 2), ("spawned", "api", True), ("message", "api"), ("attempt_ended", "api", 2, False),
        ("phase_ended", "api", "failed"),
        ("phase_ended", "after", "skipped"),
        ("run_ended", False, ""),
    ]


async def test_a_resume_tells_observers_what_it_keeps(leak_guard: LeakGuard, tmp_path: Path,
                                                      standin_cli: Path) -> None:
    seen = Recorder()
    with orchestrator_in(tmp_path, standin_cli, [seen]) as orch:
        p = orch.project_dir
        await orch.run(Pipeline([phase("a", "ok", p), phase("b", "exit_error", p)]), run_id="r2")
        seen.calls.clear()
        await orch.resume("r2", Pipeline([phase("a", "ok", p), phase("b", "ok", p)]))
    assert seen.calls[0] == ("run_started", "r2", ("a",))
    assert ("phase_started", "a") not in seen.calls and seen.calls[-1] == ("run_ended", True, "")


def test_only_observers_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="RunObserver"):
        Orchestrator(tmp_path / "runs.db", observers=[print])  # type: ignore[list-item]


async def test_live_table_shows_status_cost_turns_and_last_tool(leak_guard: LeakGuard, tmp_path: Path,
                                                                standin_cli: Path) -> None:
    out = io.StringIO()
    table = LiveTable(Console(file=out, force_terminal=True, width=120, color_system=None))
    with orchestrator_in(tmp_path, standin_cli, [table]) as orch:
        p = orch.project_dir
        await orch.run(Pipeline([phase("write", write("notes/plan.md", "plan"), p),
                                 phase("broken", "exit_error", p), phase("never", "ok", p)]))
    final = out.getvalue().rsplit("phase", 1)[-1]  # the last frame: rich leaves the table on screen
    rows = {line.split()[0]: line.split() for line in final.splitlines()[1:] if line.strip()}
    assert rows["write"][1] == "succeeded" and rows["write"][3] == "0.0123"
    assert "Write: notes/plan.md" in " ".join(rows["write"])
    assert rows["broken"][1] == "failed" and rows["never"][1:3] == ["skipped", "-"]
    assert table._live is None  # stopped with the run


async def test_journal_keeps_each_attempts_details(leak_guard: LeakGuard, tmp_path: Path,
                                                   standin_cli: Path) -> None:
    with orchestrator_in(tmp_path, standin_cli, []) as orch:
        p = orch.project_dir
        await orch.run(Pipeline([phase("ok", "ok", p), phase("err", {"steps": [
            {"stderr": "token sk-ant-api03-" + "x" * 40 + " rejected"}, {"exit": 3}]}, p)]), run_id="r3")
        attempts = {a["name"]: a for a in orch.journal.attempts("r3")}
    ok, err = attempts["ok"], attempts["err"]
    assert ok["ok"] == 1 and ok["num_turns"] == 1 and ok["message_count"] == 3 and ok["query_id"]
    assert ok["cleanup"]["leftover_pids"] == [] and ok["cleanup"]["verified"] in (True, False)
    assert err["ok"] == 0 and err["kind"] == "process_exit" and "rejected" in err["stderr_tail"]
    assert "sk-ant-api03" not in json.dumps(err) and err["cleanup"]["exit_code"] == 3
