"""Approval gates on Temporal, against a real dev server: a phase waits for the ``decide`` signal (sent by
``claude-scope approve/reject --address``), durably; its slot is free while it waits; ``reject --retry``
reruns it told the note; a decision for a phase that is not waiting is refused, nothing sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator import PhaseKind, PhaseStatus
from sdk_wrapper import StateError
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import hook_server
from tests.temporal.conftest import Client, queue_name, temporal, worker

pytestmark = pytest.mark.anyio


def writes(content: str) -> dict[str, Any]:
    return {"steps": [{"tool": {"name": "Write", "input": {"file_path": "out.txt", "content": content}}}]}


async def _until_waiting(runner: temporal.TemporalRunner, run_id: str, phase: str,
                         status: PhaseStatus = PhaseStatus.WAITING_APPROVAL) -> None:
    with anyio.fail_after(60):
        while True:
            _, report = await runner.status(run_id)
            if report.phases[phase].status is status:
                return
            await anyio.sleep(0.1)


async def _cli(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await anyio.to_thread.run_sync(lambda: subprocess.run(
        [sys.executable, "-m", "orchestrator._cli", *args, "--address", address], capture_output=True, text=True,
        timeout=120))


async def test_gates_on_temporal(leak_guard: LeakGuard, temporal_server: temporal.DevServer,
                                 temporal_client: Client, standin_cli: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    learns = {**writes("draft"), "when_prompt_contains": {"make it final": writes("final")}}
    posted: list[dict[str, Any]] = []
    monkeypatch.setenv("HOOK_TOKEN", "Bearer t0ken")
    with hook_server(posted) as url:
        hook = {"url": url, "headers": {"Authorization": "HOOK_TOKEN"}}
        spec = temporal.spec_from_data({"pipeline": {"max_parallel": 1, "approval_webhook": hook}, "phases": [
            {"name": "build", "prompt": "x", "approval": "after", "scenario": learns},
            {"name": "docs", "prompt": "x", "scenario": "ok", "depends_on": []},
            {"name": "ship", "prompt": "x", "approval": "before", "scenario": "ok", "depends_on": ["build"]},
            {"name": "after", "prompt": "x", "scenario": "ok", "depends_on": ["ship"]}]}, simulate=True)
        queue = queue_name(tmp_path)
        address = temporal_server.address
        async with worker(temporal_client, queue, tmp_path, standin_cli):
            runner = temporal.TemporalRunner(temporal_client, queue)
            run_id = await runner.submit(spec, run_id=f"gates-{tmp_path.name}")
            await _until_waiting(runner, run_id, "build")
            # its slot is free: docs runs while build waits (max_parallel = 1)
            await _until_waiting(runner, run_id, "docs", PhaseStatus.SUCCEEDED)
            early = await _cli(address, "approve", run_id, "ship")
            assert early.returncode == 2 and "not waiting for approval" in early.stderr
            retry = await _cli(address, "reject", run_id, "build", "--retry", "--note", "make it final")
            assert retry.returncode == 0, retry.stderr
            await anyio.sleep(0.5)
            await _until_waiting(runner, run_id, "build")
            assert (tmp_path / "out.txt").read_text() == "final"
            assert (await _cli(address, "approve", run_id, "build", "--note", "good")).returncode == 0
            await _until_waiting(runner, run_id, "ship")
            with pytest.raises(StateError, match="--retry is for a phase whose result waits"):
                await runner.decide(run_id, "ship", "rejected", who="t", retry=True)
            assert (await _cli(address, "reject", run_id, "ship", "--note", "not today")).returncode == 0
            report = await runner.wait(run_id)
    # a POST each time a phase started waiting: build twice (the retry), ship once; the token as the header
    assert [(p["phase"], p["gate"], p["auth"]) for p in posted] == [
        ("build", "after", "Bearer t0ken"), ("build", "after", "Bearer t0ken"), ("ship", "before", "Bearer t0ken")]
    phases = report.phases
    assert phases["build"].status is PhaseStatus.SUCCEEDED and phases["build"].attempts == 2
    assert "approved by" in phases["build"].message and "good" in phases["build"].message
    assert phases["ship"].kind is PhaseKind.REJECTED and "not today" in phases["ship"].message
    assert phases["after"].status is PhaseStatus.SKIPPED and phases["docs"].status is PhaseStatus.SUCCEEDED
