"""The orchestrator against the stand-in CLI: ordering, DAG parallelism, limits, retries, budgets, checks."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from claude_code_sdk import ClaudeCodeOptions

from orchestrator import (
    CheckContext,
    Journal,
    Orchestrator,
    Phase,
    PhaseKind,
    PhaseOutcome,
    PhaseStatus,
    Pipeline,
    RunContext,
    RunObserver,
    check,
    command_succeeds,
    file_exists,
    glob_matches,
)
from orchestrator._runpage import render_run_page, run_view
from sdk_wrapper import FailureKind, RetryPolicy
from sdk_wrapper.testing import process_alive, scenario_env
from sdk_wrapper.testing.pytest_plugin import LeakGuard

pytestmark = pytest.mark.anyio


def phase(name: str, scenario: str | dict[str, Any], project: Path, **kw: Any) -> Phase:
    return Phase(name, f"do {name}", options=ClaudeCodeOptions(cwd=str(project), env=scenario_env(scenario)), **kw)


def write(path: str, content: str) -> dict[str, Any]:
    return {"steps": [{"tool": {"name": "Write", "input": {"file_path": path, "content": content}}}]}


def orchestrator_in(tmp_path: Path, cli: Path, observers: Iterable[RunObserver] = ()) -> Orchestrator:
    """An orchestrator on ``tmp_path/runs.db`` whose phases work in ``tmp_path/project``, against ``cli``."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    return Orchestrator(tmp_path / "runs.db", project_dir=project, cli_path=cli, observers=observers)


@pytest.fixture
def orch(tmp_path: Path, standin_cli: Path) -> Iterator[Orchestrator]:
    project = tmp_path / "project"
    project.mkdir()
    with Orchestrator(tmp_path / "journal" / "runs.db", project_dir=project, cli_path=standin_cli) as orch:
        yield orch


async def test_sequential_run_journals_everything(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    p = orch.project_dir
    pipeline = Pipeline([phase("research", write("research.md", "x" * 150), p,
                               checks=[file_exists("research.md", 100)]),
                         phase("plan", "slow", p), phase("commit", "ok", p)])
    report = await orch.run(pipeline, run_id="run-1")
    assert report.ok and list(report.phases) == ["research", "plan", "commit"]
    assert report.phases["research"].checks[0].details["bytes"] == 150
    assert report.cost_usd == pytest.approx(3 * 0.0123)
    rows = orch.journal.phases("run-1")
    assert {n: r["status"] for n, r in rows.items()} == dict.fromkeys(["research", "plan", "commit"], "succeeded")
    assert rows["plan"]["session_id"] == report.phases["plan"].session_id is not None
    log = orch.journal.message_log("run-1", "plan", 1)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["type"] == "SystemMessage" and lines[-1]["type"] == "ResultMessage"
    assert len(lines) == 12  # init, ten texts, result: streamed to disk as they came
    assert orch.journal.runs()[0]["status"] == "succeeded"


async def test_failure_skips_later_phases_in_order(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    p = orch.project_dir
    report = await orch.run(Pipeline([phase("a", "ok", p), phase("b", "exit_error", p), phase("c", "ok", p)]))
    assert [o.status for o in report.phases.values()] == [PhaseStatus.SUCCEEDED, PhaseStatus.FAILED,
                                                          PhaseStatus.SKIPPED]
    assert report.phases["b"].kind == "process_exit"
    assert report.phases["c"].message == "dependency 'b' failed"


@pytest.fixture
def orch_closer() -> Iterator[list[Orchestrator]]:
    made: list[Orchestrator] = []
    yield made
    for orch in made:
        orch.close()


async def test_dag_respects_max_parallel_and_independent_branches(leak_guard: LeakGuard, tmp_path: Path,
                                                                  standin_cli: Path,
                                                                  orch_closer: list[Orchestrator]) -> None:
    running: set[str] = set()
    peak = 0

    class Listen(RunObserver):
        def phase_started(self, run_id: str, name: str) -> None:
            nonlocal peak
            running.add(name)
            peak = max(peak, len(running))

        def phase_ended(self, run_id: str, outcome: PhaseOutcome) -> None:
            running.discard(outcome.name)

    orch = Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=standin_cli, observers=[Listen()])
    orch_closer.append(orch)
    slow = {"delay_s": 0.1, "steps": [{"text": "1"}, {"text": "2"}, {"text": "3"}]}
    pipeline = Pipeline([
        phase("root", "ok", tmp_path),
        phase("b1", slow, tmp_path, depends_on=("root",)), phase("b2", slow, tmp_path, depends_on=("root",)),
        phase("b3", slow, tmp_path, depends_on=("root",)), phase("bad", "exit_error", tmp_path, depends_on=("root",)),
        phase("after_bad", "ok", tmp_path, depends_on=("bad",)),
        phase("join", "ok", tmp_path, depends_on=("b1", "b2", "b3")),
    ], max_parallel=2)
    report = await orch.run(pipeline)
    assert peak == 2
    assert report.phases["join"].succeeded  # the independent branch went on after "bad" failed
    assert report.phases["after_bad"].status is PhaseStatus.SKIPPED


async def test_fail_fast_starts_nothing_new(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    p = orch.project_dir
    pipeline = Pipeline([phase("bad", "exit_error", p), phase("other", "ok", p, depends_on=("bad2",)),
                         phase("bad2", {"preset": "ok", "delay_s": 0.3, "steps": [{"text": "a"}, {"text": "b"}]}, p)],
                        fail_fast=True, max_parallel=2)
    report = await orch.run(pipeline)
    assert report.phases["bad"].status is PhaseStatus.FAILED
    assert report.phases["bad2"].succeeded  # already running when bad failed: not cancelled
    assert report.phases["other"].message.startswith("fail_fast: phase 'bad'")


async def test_timeout_and_idle_timeout(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    p = orch.project_dir
    pipeline = Pipeline([phase("hangs", "hang", p, timeout_s=0.5, depends_on=()),
                         phase("stalls", "hang", p, timeout_s=30, idle_timeout_s=0.5, depends_on=("hangs",))],
                        fail_fast=False)
    report = await orch.run(Pipeline([*pipeline.phases[:1]]))
    assert report.phases["hangs"].status is PhaseStatus.TIMED_OUT and report.phases["hangs"].kind == "timeout"
    report = await orch.run(Pipeline([phase("stalls", "hang", p, timeout_s=30, idle_timeout_s=0.5)]))
    assert report.phases["stalls"].status is PhaseStatus.TIMED_OUT and report.phases["stalls"].kind == "stalled"
    assert report.phases["stalls"].duration_s < 10


async def test_retry_is_journalled_per_attempt(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    report = await orch.run(Pipeline([phase("api", "overloaded", orch.project_dir,
                                            retry=RetryPolicy(attempts=3, wait=False))]), run_id="r")
    outcome = report.phases["api"]
    assert outcome.status is PhaseStatus.FAILED and outcome.attempts == 3 and outcome.kind == "api_error"
    assert [orch.journal.message_log("r", "api", n).exists() for n in (1, 2, 3)] == [True] * 3


async def test_phase_and_run_budgets(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    p = orch.project_dir
    expensive = {"steps": [{"text": "spent"}], "result": {"total_cost_usd": 0.6}}
    report = await orch.run(Pipeline([phase("one", expensive, p, max_cost_usd=0.5)]))
    one = report.phases["one"]  # its own query went over max_cost_usd: the query's kind
    assert one.status is PhaseStatus.FAILED and one.kind is FailureKind.BUDGET_EXCEEDED
    # the run budget is a cap: an uncapped phase may spend what is left, and its CLI is told so
    report = await orch.run(Pipeline([phase("a", expensive, p), phase("b", expensive, p), phase("c", "ok", p)],
                                      max_cost_usd=1.0))
    b = report.phases["b"]
    assert report.phases["a"].succeeded and b.kind is FailureKind.BUDGET_EXCEEDED
    assert b.message == "Reached maximum budget ($0.4)"  # the CLI stopped itself at what was left
    assert report.phases["c"].message == "dependency 'b' failed"
    # a capped phase whose cap does not fit in what is left is skipped before it starts, with the numbers
    report = await orch.run(Pipeline([phase("a", expensive, p), phase("b", expensive, p, max_cost_usd=0.5),
                                      phase("c", "ok", p)], max_cost_usd=1.0))
    assert report.phases["b"].status is PhaseStatus.SKIPPED and report.phases["b"].kind is PhaseKind.RUN_BUDGET_SPENT
    assert report.phases["b"].message == ("run budget: phase may spend up to 0.5000 USD (its max_cost_usd), "
                                          "0.4000 of 1.0 USD left")
    assert report.budget_exhausted and report.cost_usd == pytest.approx(0.6)


async def test_phases_that_may_overshoot_the_run_budget_together_do_not_run_together(
        leak_guard: LeakGuard, orch: Orchestrator) -> None:
    """Two phases that may spend 0.80 each under a run budget of 1.00 with max_parallel = 2: the second waits
    for the first's unused reservation (it spent 0.0123) and runs after it, never beside it. Without the
    budget the same two overlap (the control)."""
    p = orch.project_dir

    def two(budget: float | None) -> Pipeline:  # "c" after "a": a declared dependency makes a and b a DAG
        return Pipeline([phase("a", "slow", p, max_cost_usd=0.8), phase("b", "slow", p, max_cost_usd=0.8),
                         phase("c", "ok", p, depends_on=("a",))], max_parallel=2, max_cost_usd=budget)

    def b_starts_before_a_ends(run_id: str) -> bool:
        windows = {a["name"]: (a["started"], a["ended"]) for a in orch.journal.attempts(run_id)}
        return bool(windows["b"][0] < windows["a"][1])

    capped = await orch.run(two(1.0), run_id="capped")
    free = await orch.run(two(None), run_id="free")
    assert capped.ok and free.ok
    assert not b_starts_before_a_ends("capped"), "their caps do not fit the budget together"
    rows = orch.journal.phases("capped")  # each phase's reservation, as status and the run page show it
    assert (rows["a"]["reserved_usd"], rows["b"]["reserved_usd"]) == (0.8, 0.8)
    assert rows["c"]["reserved_usd"] == pytest.approx(1.0 - 0.0246)  # uncapped: all that was left
    assert "may spend up to 0.8000 USD" in render_run_page(run_view(orch.journal, "capped"))
    assert b_starts_before_a_ends("free"), "without a run budget the two run at once"


async def test_failed_checks_fail_the_phase_with_evidence(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    p = orch.project_dir

    async def never(ctx: CheckContext) -> bool:
        return (ctx.cwd / "nothing-here").exists()

    pipeline = Pipeline([phase("claims", write("short.md", "tiny"), p, checks=[
        file_exists("short.md", 100), glob_matches("*.py"), command_succeeds("python3 -c 'raise SystemExit(3)'"),
        check(never), file_exists("short.md", 2)])])
    outcome = (await orch.run(pipeline)).phases["claims"]
    assert outcome.status is PhaseStatus.FAILED and outcome.kind is PhaseKind.VALIDATION_FAILED
    assert [c.passed for c in outcome.checks] == [False, False, False, False, True]
    assert outcome.checks[0].evidence == "short.md: 4 bytes (need >= 100)"
    assert outcome.checks[2].details["exit_code"] == 3
    assert outcome.query is not None and outcome.query.ok  # the CLI said success; the evidence said no


async def test_check_commands_are_contained(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    """A check that exits 0 but leaves a child in its own session, and one that times out with a child: both
    trees are ended and verified gone, and the evidence says so. Each child is looked for by its pid after
    the run. (Before: the first hung until its timeout on the child holding its output, and both children
    outlived the run.)"""
    p = orch.project_dir
    leaves = command_succeeds("sh -c 'setsid sleep 3600 & echo $!'", timeout_s=20)
    hangs = command_succeeds("sh -c 'sleep 3600 & echo $!; exec sleep 3600'", timeout_s=0.5)
    report = await orch.run(Pipeline([phase("checked", "ok", p, checks=[leaves, hangs])]), run_id="r")
    ok, late = report.phases["checked"].checks
    children = [int(c.details["output_tail"].split()[-1]) for c in (ok, late)]
    assert ok.passed and ok.evidence == "exit 0; ended 1 process(es) it left running"
    assert ok.details["cleanup"]["pids_ended"] == [children[0]] and ok.details["cleanup"]["leftover_pids"] == []
    assert not late.passed and late.evidence.startswith("timed out after 0.5s") and late.details["timed_out"]
    assert children[1] in late.details["cleanup"]["pids_ended"]
    assert not any(process_alive(pid) for pid in children), children
    evidence = json.loads(orch.journal.phases("r")["checked"]["evidence"])
    assert evidence[0]["details"]["cleanup"]["pids_ended"] == [children[0]]  # journalled with the phase


async def test_a_check_running_when_the_run_is_cancelled_is_ended(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    p = orch.project_dir
    hangs = command_succeeds("sh -c 'setsid sleep 3600 & echo $! > child.pid; exec sleep 3600'", timeout_s=60)
    with anyio.move_on_after(3):
        await orch.run(Pipeline([phase("checked", "ok", p, checks=[hangs])]), run_id="r")
    child = int((p / "child.pid").read_text())
    assert not process_alive(child)
    assert orch.journal.runs()[0]["status"] == "interrupted"


async def test_callable_prompt_sees_earlier_outcomes(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    seen: list[str] = []

    def prompt(ctx: RunContext) -> str:
        seen.append(ctx.outcomes["first"].status.value)
        return f"continue after {ctx.outcomes['first'].session_id}"

    first = phase("first", "ok", orch.project_dir)
    second = Phase("second", prompt, options=ClaudeCodeOptions(cwd=str(orch.project_dir)))
    report = await orch.run(Pipeline([first, second]))
    assert report.ok and seen == ["succeeded"]


async def test_cancelling_a_run_journals_it(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    with anyio.move_on_after(0.5):
        await orch.run(Pipeline([phase("forever", "hang", orch.project_dir)]), run_id="c")
    assert orch.journal.phases("c")["forever"]["status"] == "cancelled"
    assert orch.journal.runs()[0]["status"] == "interrupted"  # resumable: it was stopped, not finished


def test_run_sync_for_sync_callers(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    report = orch.run_sync(Pipeline([phase("a", "ok", orch.project_dir)]))
    assert report.ok


async def test_run_id_must_be_new(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    await orch.run(Pipeline([phase("a", "ok", orch.project_dir)]), run_id="same")
    with pytest.raises(ValueError, match="already exists"):
        await orch.run(Pipeline([phase("a", "ok", orch.project_dir)]), run_id="same")
    with pytest.raises(KeyError):
        await orch.resume("missing", Pipeline([phase("a", "ok", orch.project_dir)]))


def test_journal_is_reopened_with_everything(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        journal.start_run("r", {"name": "x"}, ["a"])
    with Journal(tmp_path / "j.db") as journal:
        assert journal.phases("r")["a"]["status"] == "pending"


async def test_wrapper_events_carry_run_and_phase_ids(leak_guard: LeakGuard, orch: Orchestrator,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="claude_scope")
    await orch.run(Pipeline([phase("research", "ok", orch.project_dir)]), run_id="ids-1")
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "claude_scope"]
    starts = [e for e in events if e["event"] == "query.start"]
    assert starts and starts[0]["run_id"] == "ids-1" and starts[0]["phase"] == "research" and starts[0]["query_id"]
    end = next(e for e in events if e["event"] == "query.end")
    assert end["session_id"] and end["ok"] is True


async def test_phases_with_claude_agent_options(leak_guard: LeakGuard, orch: Orchestrator) -> None:
    """A pipeline may mix both SDKs' options; each phase's messages are journalled either way."""
    from claude_agent_sdk import ClaudeAgentOptions

    p = orch.project_dir
    agent_phase = Phase("research", "do research",
                        options=ClaudeAgentOptions(cwd=str(p), env=scenario_env(write("research.md", "y" * 150))),
                        checks=[file_exists("research.md", 100)])
    report = await orch.run(Pipeline([agent_phase, phase("plan", "ok", p)]), run_id="mixed")
    assert report.ok, report.phases
    assert report.phases["research"].checks[0].passed
    lines = [json.loads(line) for line in orch.journal.message_log("mixed", "research", 1).read_text().splitlines()]
    assert [line["type"] for line in lines] == ["SystemMessage", "AssistantMessage", "UserMessage",
                                                "ResultMessage"]
    with pytest.raises(ValueError, match="ClaudeAgentOptions"):
        Phase("bad", "x", options={"cwd": "."})  # type: ignore[arg-type]


def test_kinds_read_back_from_a_journal_are_typed() -> None:
    from orchestrator._model import parse_kind

    assert parse_kind("budget_exceeded", PhaseStatus.SKIPPED) is PhaseKind.RUN_BUDGET_SPENT  # older journals
    assert parse_kind("budget_exceeded", PhaseStatus.FAILED) is FailureKind.BUDGET_EXCEEDED
    assert parse_kind("run_budget_spent", PhaseStatus.SKIPPED) is PhaseKind.RUN_BUDGET_SPENT
    assert parse_kind("validation_failed", PhaseStatus.FAILED) is PhaseKind.VALIDATION_FAILED
    assert parse_kind("timeout", PhaseStatus.TIMED_OUT) is FailureKind.TIMEOUT
    assert parse_kind("no-such-kind", PhaseStatus.FAILED) is FailureKind.UNEXPECTED
    assert parse_kind(None, PhaseStatus.SUCCEEDED) is None
