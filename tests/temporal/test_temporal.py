"""Pipelines on a real Temporal dev server: the same reports as the local orchestrator, history as the record,
cancellation ending CLI trees, a killed worker's phase retried elsewhere, and workspaces pinned by queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from claude_code_sdk import ClaudeCodeOptions

from orchestrator import Phase, PhaseKind, PhaseStatus, Pipeline, PipelineError, check, file_exists
from orchestrator._runpage import render_run_page
from sdk_wrapper import FailureKind
from sdk_wrapper.testing import process_alive
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import until
from tests.temporal.conftest import Client, queue_name, temporal, worker, write_pipeline

pytestmark = pytest.mark.anyio

THREE = """
[pipeline]
name = "three"
[[phases]]
name = "research"
prompt = "research"
scenario = "ok"
[[phases]]
name = "plan"
prompt = "plan"
depends_on = ["research"]
scenario = {{ steps = [{{ tool = {{ name = "Write", input = {{ file_path = "plan.md", content = "the plan" }} }} }}] }}
[[phases.checks]]
type = "file_exists"
path = "plan.md"
[[phases]]
name = "e2e"
prompt = "test"
depends_on = ["plan"]
scenario = "max_turns"
[[phases]]
name = "commit"
prompt = "commit"
depends_on = ["e2e"]
scenario = "ok"
"""


async def test_a_pipeline_runs_as_a_workflow_and_reports_like_the_local_orchestrator(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    queue = queue_name(tmp_path)
    spec = temporal.spec_from_file(write_pipeline(tmp_path, THREE.format()), simulate=True)
    async with worker(temporal_client, queue, tmp_path, standin_cli):
        runner = temporal.TemporalRunner(temporal_client, queue)
        report = await runner.run(spec, run_id=f"three-{tmp_path.name}")
        state, status = await runner.status(report.run_id)
        listed = await runner.runs()
    phases = report.phases
    assert list(phases) == ["research", "plan", "e2e", "commit"]  # pipeline order, as Orchestrator reports
    assert [phases[n].status for n in ("research", "plan", "e2e", "commit")] == [
        PhaseStatus.SUCCEEDED, PhaseStatus.SUCCEEDED, PhaseStatus.FAILED, PhaseStatus.SKIPPED]
    assert phases["e2e"].kind is FailureKind.MAX_TURNS and phases["commit"].message == "dependency 'e2e' failed"
    assert (tmp_path / "plan.md").read_text() == "the plan"  # the phase ran in the worker's workspace
    assert not report.ok and phases["research"].cost_usd is not None and report.cost_usd > 0
    assert state == "failed" and {n: o.status for n, o in status.phases.items()} == {
        n: o.status for n, o in phases.items()}
    assert any(r["run_id"] == report.run_id for r in listed)
    # the host kept the message log, history says where
    history = await runner.client.get_workflow_handle(report.run_id).fetch_history()
    records = [json.loads(p.data) for e in history.events if e.HasField("activity_task_completed_event_attributes")
               for p in e.activity_task_completed_event_attributes.result.payloads]
    research = next(r for r in records if r["name"] == "research")
    assert await anyio.Path(research["message_log"]).is_file() and research["host"]


async def test_each_agent_retry_is_its_own_activity(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    queue = queue_name(tmp_path)
    spec = temporal.spec_from_data({"phases": [{
        "name": "flaky", "prompt": "x", "scenario": "rate_limited",
        "retry": {"attempts": 3, "initial_wait_s": 0, "max_wait_s": 0, "jitter_s": 0}}]}, simulate=True)
    async with worker(temporal_client, queue, tmp_path, standin_cli):
        runner = temporal.TemporalRunner(temporal_client, queue)
        report = await runner.run(spec, run_id=f"flaky-{tmp_path.name}")
        history = await runner.client.get_workflow_handle(report.run_id).fetch_history()
    flaky = report.phases["flaky"]
    assert flaky.status is PhaseStatus.FAILED and flaky.kind is FailureKind.RATE_LIMITED and flaky.attempts == 3
    scheduled = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    assert len(scheduled) == 3


async def test_the_run_page_of_a_workflow(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    """The same page as a local run's, from the workflow's record: attempts timed by the workflow, each
    attempt's query facts, transcripts read from the worker's message log on this host."""
    queue = queue_name(tmp_path)
    data = {"pipeline": {"name": "paged"}, "phases": [
        {"name": "write", "prompt": "x", "scenario": {"steps": [
            {"tool": {"name": "Write", "input": {"file_path": "a.md", "content": "text"}}}]}},
        {"name": "flaky", "prompt": "x", "scenario": "rate_limited", "depends_on": ["write"],
         "retry": {"attempts": 2, "initial_wait_s": 0, "max_wait_s": 0, "jitter_s": 0}},
        {"name": "after", "prompt": "x", "scenario": "ok", "depends_on": ["flaky"]}]}
    async with worker(temporal_client, queue, tmp_path, standin_cli):
        runner = temporal.TemporalRunner(temporal_client, queue)
        report = await runner.run(temporal.spec_from_data(data, simulate=True), run_id=f"page-{tmp_path.name}")
        view = await runner.view(report.run_id)
    phases = {p.name: p for p in view.phases}
    assert view.status == "failed" and view.finished and view.pipeline == "paged" and view.source.startswith("temporal")
    assert list(phases) == ["write", "flaky", "after"] and phases["flaky"].depends_on == ("write",)
    (write,) = phases["write"].attempts
    assert write.ok and write.ended is not None and view.started <= write.started < write.ended
    assert write.query_id and write.cleanup is not None and write.cleanup.leftover_pids == ()
    assert [i.kind for i in write.transcript.head] == ["system", "tool_use", "tool_result", "result"]
    first, second = phases["flaky"].attempts
    assert (first.ok, second.ok, first.kind, second.kind) == (False, False, "rate_limited", "rate_limited")
    assert (first.ended or 0) <= second.started  # the retry came after the first attempt, as the workflow timed it
    assert phases["after"].status == "skipped" and phases["after"].attempts == ()
    page = render_run_page(view)
    assert page.count('class="bar s-') == 3 and 'data-phase="flaky" data-attempt="2"' in page


async def test_budget_and_fail_fast_skip_with_reasons(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    queue = queue_name(tmp_path)
    expensive = {"steps": [{"text": "spent"}], "result": {"total_cost_usd": 0.6}}
    spec = temporal.spec_from_data({"pipeline": {"max_cost_usd": 1.0}, "phases": [
        {"name": "a", "prompt": "x", "scenario": expensive},
        {"name": "b", "prompt": "x", "scenario": expensive, "depends_on": ["a"], "max_cost_usd": 0.5},
        {"name": "c", "prompt": "x", "scenario": "ok", "depends_on": ["b"]}]}, simulate=True)
    async with worker(temporal_client, queue, tmp_path, standin_cli):
        runner = temporal.TemporalRunner(temporal_client, queue)
        report = await runner.run(spec, run_id=f"budget-{tmp_path.name}")
    b, c = report.phases["b"], report.phases["c"]  # b's cap (0.50) does not fit in what a left (0.40)
    assert b.status is PhaseStatus.SKIPPED and b.kind is PhaseKind.RUN_BUDGET_SPENT and report.budget_exhausted
    assert b.message == "run budget: phase may spend up to 0.5000 USD (its max_cost_usd), 0.4000 of 1.0 USD left"
    assert c.message == "dependency 'b' skipped" and report.cost_usd == pytest.approx(0.6)


async def test_cancel_ends_the_running_phase_tree(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    queue = queue_name(tmp_path)
    hang = {"steps": [{"spawn": {"new_session": True}}, {"text": "working"}, {"hang": True}], "result": None}
    spec = temporal.spec_from_data({"phases": [{"name": "long", "prompt": "x", "scenario": hang}]}, simulate=True)
    async with worker(temporal_client, queue, tmp_path, standin_cli):
        runner = temporal.TemporalRunner(temporal_client, queue, heartbeat_timeout_s=10)
        run_id = await runner.submit(spec, run_id=f"cancel-{tmp_path.name}")
        await until(lambda: len(leak_guard.live_recorded()) >= 2, 30)  # the CLI and its own-session child
        started = time.monotonic()
        await runner.cancel(run_id)
        await until(lambda: not leak_guard.live_recorded(), 10)
        took = time.monotonic() - started
        state, status = await runner.status(run_id)
    assert state == "cancelled" and status.phases["long"].status is PhaseStatus.CANCELLED
    assert took < 5  # generous: catches a cancel that never reaches the activity (goal p95 < 0.5 s: benchmark)


WORKER = """
import anyio, sys
from temporalio.client import Client
from orchestrator.temporal import run_worker
async def main():
    client = await Client.connect(sys.argv[1])
    await run_worker(client, sys.argv[2], workspace=sys.argv[3], cli_path=sys.argv[4])
anyio.run(main)
"""


async def test_a_killed_worker_phase_runs_again_elsewhere_and_its_tree_is_ended(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    queue = queue_name(tmp_path)
    slow = {"steps": [{"text": "started"}, {"sleep": 4}, {"text": "done"}]}
    spec = temporal.spec_from_data({"phases": [
        {"name": "first", "prompt": "x", "scenario": "ok"},
        {"name": "second", "prompt": "x", "scenario": slow, "depends_on": ["first"]}]}, simulate=True)
    # Without its host guard (which would end the tree at once, see tests/reliability/test_host_death.py):
    # the case of a host that lost its guard too, where the next worker on the host must end the tree.
    argv = [sys.executable, "-c", WORKER, temporal_server.address, queue, str(tmp_path), str(standin_cli)]
    doomed = subprocess.Popen(argv, env={**os.environ, "CLAUDE_SCOPE_GUARD": "0"},  # noqa: ASYNC220 - to be killed
                              start_new_session=True)
    try:
        runner = temporal.TemporalRunner(temporal_client, queue, heartbeat_timeout_s=2)
        run_id = await runner.submit(spec, run_id=f"killed-{tmp_path.name}")
        await until(lambda: len(leak_guard.recorded_pids()) >= 2 and bool(leak_guard.live_recorded()), 30)
        orphan = leak_guard.live_recorded()[-1][0]  # the second phase's CLI
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        assert process_alive(orphan)  # the worker's death left it running
        async with worker(temporal_client, queue, tmp_path, standin_cli):
            await until(lambda: not process_alive(orphan), 10)  # ended by the new worker on this host
            report = await runner.wait(run_id)
            history = await runner.client.get_workflow_handle(run_id).fetch_history()
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()
    assert report.ok and report.phases["second"].attempts == 1  # one agent attempt; Temporal retried the activity
    inputs = [json.loads(p.data) for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
              for p in e.activity_task_scheduled_event_attributes.input.payloads]
    assert [i["phase"] for i in inputs] == ["first", "second"]  # the finished phase was not rerun
    started = [e for e in history.events if e.HasField("activity_task_started_event_attributes")]
    assert started[-1].activity_task_started_event_attributes.attempt >= 2


async def test_a_pipeline_runs_in_the_workspace_of_its_queue(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    one, two = tmp_path / "checkout-one", tmp_path / "checkout-two"
    one.mkdir()
    two.mkdir()
    write = {"steps": [{"tool": {"name": "Write", "input": {"file_path": "out.md", "content": "here"}}}]}
    spec = temporal.spec_from_data({"phases": [{"name": "edit", "prompt": "x", "scenario": write,
                                                "checks": [{"type": "file_exists", "path": "out.md"}]}]},
                                   simulate=True)
    async with worker(temporal_client, "ws-one-" + tmp_path.name, one, standin_cli), \
            worker(temporal_client, "ws-two-" + tmp_path.name, two, standin_cli):
        runner = temporal.TemporalRunner(temporal_client, "ws-two-" + tmp_path.name)
        report = await runner.run(spec, run_id=f"ws-{tmp_path.name}")
    assert report.ok and (two / "out.md").read_text() == "here" and not (one / "out.md").exists()


def test_what_cannot_travel_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="callable prompt"):
        temporal.spec_from_pipeline(Pipeline((Phase("a", lambda ctx: "x"),)))

    async def mine(ctx: object) -> bool:
        return True

    with pytest.raises(PipelineError, match="callable"):
        temporal.spec_from_pipeline(Pipeline((Phase("a", "x", checks=(check(mine),)),)))
    with pytest.raises(PipelineError, match="can_use_tool"):
        temporal.spec_from_pipeline(Pipeline((Phase("a", "x", options=ClaudeCodeOptions(
            can_use_tool=mine)),)))  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match="looks like a secret"):
        temporal.spec_from_data({"phases": [{"name": "a", "prompt": "x", "env": {"ANTHROPIC_API_KEY": "sk-1"}}]})
    with pytest.raises(PipelineError, match="unknown key"):
        temporal.spec_from_data({"phases": [{"name": "a", "prompt": "x", "bogus": 1}]})
    spec = temporal.spec_from_pipeline(Pipeline((
        Phase("a", "x", checks=(file_exists("a.md", 10),), options=ClaudeCodeOptions(model="m", max_turns=3)),
        Phase("b", "y", depends_on=("a",))), max_parallel=2))
    assert temporal.PipelineSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    plan = spec.plan()
    assert plan["max_parallel"] == 2 and [p["depends_on"] for p in plan["phases"]] == [[], ["a"]]
    assert spec.pipeline(tmp_path).phases[0].options.max_turns == 3  # type: ignore[union-attr]


def test_backoff_and_retry_decisions_match_the_policy() -> None:
    from orchestrator.temporal._records import backoff_s, should_retry

    retry = {"attempts": 3, "initial_wait_s": 1.0, "max_wait_s": 5.0, "jitter_s": 1.0, "after_side_effects": False}
    failed = {"status": "failed", "kind": "rate_limited", "retryable": True, "side_effects": False}
    assert should_retry(retry, failed, 1) and should_retry(retry, failed, 2) and not should_retry(retry, failed, 3)
    assert not should_retry(retry, {**failed, "side_effects": True}, 1)
    assert not should_retry(retry, {**failed, "retryable": False}, 1)
    assert not should_retry(None, failed, 1) and not should_retry(retry, {**failed, "status": "succeeded"}, 1)
    assert [backoff_s(retry, n, 0.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert backoff_s(retry, 1, 0.5) == 1.5 and backoff_s({**retry, "wait": False}, 1, 0.5) == 0.0


async def test_the_commands(
        leak_guard: LeakGuard, temporal_server: temporal.DevServer, temporal_client: Client, standin_cli: Path,
        tmp_path: Path) -> None:
    """submit --wait (the report table and exit 1 for a failed phase), status and runs --address, cancel, and
    exit 2 for bad input."""
    queue = queue_name(tmp_path)
    address = temporal_server.address
    pipeline = write_pipeline(tmp_path, THREE.format())
    hang = write_pipeline(tmp_path / "hang", "[[phases]]\nname = 'long'\nprompt = 'x'\nscenario = 'hang'\n")

    async def cli(*args: str) -> tuple[int, str]:
        done = await anyio.run_process([sys.executable, "-m", "orchestrator._cli", *args], check=False)
        return done.returncode, (done.stdout + done.stderr).decode()

    async with worker(temporal_client, queue, tmp_path, standin_cli):
        code, out = await cli("submit", str(pipeline), "--address", address, "--task-queue", queue, "--simulate",
                              "--wait", "--run-id", f"cli-{tmp_path.name}")
        assert code == 1 and "e2e            failed" in out and "[max_turns]" in out, out
        code, out = await cli("status", f"cli-{tmp_path.name}", "--address", address)
        assert code == 0 and out.startswith(f"run cli-{tmp_path.name}  failed") and "\ncommit " in out, out
        code, out = await cli("status", f"cli-{tmp_path.name}", "--address", address, "--json")
        assert code == 0 and '"phase": "commit"' in out and '"status": "skipped"' in out
        code, out = await cli("status", f"cli-{tmp_path.name}", "--address", address, "--follow")
        assert code == 1 and "e2e  failed" in out and out.rstrip().endswith(f"run cli-{tmp_path.name} failed")
        code, out = await cli("runs", "--address", address)
        assert code == 0 and f"cli-{tmp_path.name}" in out
        code, out = await cli("submit", str(hang), "--address", address, "--task-queue", queue, "--simulate",
                              "--run-id", f"hang-{tmp_path.name}")
        assert code == 0, out
        await until(lambda: bool(leak_guard.live_recorded()), 30)
        followed: list[tuple[int, str]] = []

        async def follow() -> None:  # from another process, live, until the run ends (cancelled below)
            followed.append(await cli("status", f"hang-{tmp_path.name}", "--address", address, "--follow"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await anyio.sleep(1.0)
            code, out = await cli("report", f"hang-{tmp_path.name}", "--address", address, "--out",
                                  str(tmp_path / "hang.html"))
            page = (tmp_path / "hang.html").read_text()
            assert code == 0 and 'id="run-status"><span class="pill s-running">' in page, out
            assert 'class="bar s-running"' in page  # the open attempt, drawn up to the page's making
            code, out = await cli("cancel", f"hang-{tmp_path.name}", "--address", address)
            assert code == 0 and not leak_guard.live_recorded(), out  # the tree is gone when cancel returns
        [(code, out)] = followed
        assert code == 130 and "long  running  attempt 1" in out and "long  cancelled" in out, out
        code, out = await cli("report", f"hang-{tmp_path.name}", "--address", address, "--out",
                              str(tmp_path / "hang.html"))
        page = (tmp_path / "hang.html").read_text()
        assert code == 0 and 'id="run-status"><span class="pill s-cancelled">' in page, out
    code, out = await cli("submit", str(tmp_path / "missing.toml"), "--address", address, "--task-queue", queue)
    assert code == 2 and "cannot read" in out
    code, out = await cli("status", "no-such-run", "--address", address)
    assert code == 2 and "no run 'no-such-run'" in out
    code, out = await cli("report", "no-such-run", "--address", address)
    assert code == 2 and "no run 'no-such-run'" in out
