"""Record the workflow histories that tests/temporal/test_replay.py replays: each pipeline below run once on
a dev server with the code on PYTHONPATH, against the stand-in CLI, its history written as JSON.

    python -m tests.temporal.histories.record OUT_DIR [PREFIX [NAME ...]]

A history recorded by an older version of the workflow and replayed by this one is the test that a
workflow already running when a worker is upgraded carries on (see docs: Temporal, upgrading workers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from temporalio.client import Client

from orchestrator import temporal
from sdk_wrapper.testing import install_standin

_RETRY = {"attempts": 2, "initial_wait_s": 0, "max_wait_s": 0, "jitter_s": 0}
#: name -> pipeline data: an implicit order whose first phase fails, and a DAG with parallelism, a retry,
#: a failure skipping its dependent, and a budget
PIPELINES: dict[str, dict[str, Any]] = {
    "implicit-order-failure": {"pipeline": {"name": "implicit"}, "phases": [
        {"name": "a", "prompt": "x", "scenario": "max_turns"},
        {"name": "b", "prompt": "x", "scenario": "ok"}]},
    "dag": {"pipeline": {"name": "dag", "max_parallel": 2, "max_cost_usd": 5.0}, "phases": [
        {"name": "research", "prompt": "x", "scenario": "ok"},
        {"name": "plan", "prompt": "x", "scenario": "ok", "depends_on": ["research"]},
        {"name": "lint", "prompt": "x", "scenario": "rate_limited", "depends_on": ["research"], "retry": _RETRY},
        {"name": "docs", "prompt": "x", "scenario": "ok", "depends_on": ["research"]},
        {"name": "commit", "prompt": "x", "scenario": "ok", "depends_on": ["plan", "lint"]}]},
    # a race of three variants in worktrees (the workspace is a git repository): one hangs, one fails its
    # check, one wins and is merged
    "race": {"pipeline": {"name": "race"}, "phases": [{
        "name": "solve", "prompt": "x", "isolation": "worktree",
        "checks": [{"type": "file_exists", "path": "answer.md"}], "variants": [
            {"name": "slow", "scenario": {"steps": [{"text": "thinking"}, {"hang": True}]}},
            {"name": "quick", "scenario": {"steps": [
                {"tool": {"name": "Write", "input": {"file_path": "answer.md", "content": "quick\n"}}},
                {"sleep": 0.5}]}},
            {"name": "wrong", "scenario": "ok"}]}]},
}


def _make_repo(work: Path) -> None:
    """The workspace as a git repository (a race needs one); it ignores everything in it (the stand-in, our
    state), so the race's winner merges nothing: the history is about the scheduling, not the files."""
    for args in (["init", "-q", "-b", "main"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                                                 "--allow-empty", "-m", "first"]):
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True)
    (work / ".gitignore").write_text("*\n")


async def record(out: Path, prefix: str, names: list[str]) -> None:
    await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, temporal.DevServer() as server:
        work = Path(tmp)
        _make_repo(work)
        os.environ["CLAUDE_SCOPE_WORKTREES"] = str(work / "worktrees")
        cli = install_standin(work / "bin")
        client = await Client.connect(server.address)
        stop, ready = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: temporal.run_worker(client, "record", workspace=work, cli_path=str(cli),
                                                      stop=stop, ready=ready))
            with anyio.fail_after(30):
                await ready.wait()
            runner = temporal.TemporalRunner(client, "record")
            for name, data in PIPELINES.items():
                if names and name not in names:
                    continue
                run_id = f"{prefix}-{name}"
                await runner.run(temporal.spec_from_data(data, simulate=True), run_id=run_id)
                history = await client.get_workflow_handle(run_id).fetch_history()
                await anyio.Path(out / f"{run_id}.json").write_text(history.to_json())
            stop.set()


if __name__ == "__main__":
    anyio.run(record, Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "v1", sys.argv[3:])
