"""The host process dies (SIGKILL: no ``finally`` runs) while a query runs: its CLI tree must not outlive it.

A real host program (a subprocess running ``open_query``) is killed with ``kill -9`` once its CLI has
started a grandchild in a session of its own (and, with cgroups, one that shed every mark). The guard
process sees the host's pipe close and ends every registered tree; we measure host SIGKILL -> tree gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sdk_wrapper.testing import process_alive, read_pids, scenario_env
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import cgroups_or_skip

HOST = """
import os, sys, time, anyio
from claude_code_sdk import ClaudeCodeOptions
from sdk_wrapper import open_query

async def main() -> None:
    options = ClaudeCodeOptions(cwd=sys.argv[2], env=dict(__import__("json").loads(sys.argv[3])))
    async with open_query("go", options, cli_path=sys.argv[1],
                          on_spawn=lambda cli: print("spawned", cli.pid, flush=True)) as stream:
        forked = False
        async for message in stream:
            if len(sys.argv) > 4 and not forked:
                forked = True
                child = os.fork()
                if child == 0:  # a forked child that outlives its parent
                    time.sleep(30)
                    os._exit(0)
                with open(sys.argv[4], "w") as fh:
                    fh.write(str(child))
            print("message", type(message).__name__, flush=True)

anyio.run(main)
"""


def _kill_host_and_time(tmp_path: Path, standin_cli: Path, steps: list[dict[str, object]], roles: set[str],
                        env_extra: dict[str, str], fork_file: Path | None = None
                        ) -> tuple[float, list[tuple[int, str]]]:
    script = tmp_path / "host.py"
    script.write_text(HOST)
    scenario = {"steps": [*steps, {"text": "working"}, {"hang": True}], "result": None}
    env = {**os.environ, **env_extra}
    extra = [] if fork_file is None else [str(fork_file)]
    host = subprocess.Popen([sys.executable, str(script), str(standin_cli), str(tmp_path),
                             json.dumps(scenario_env(scenario)), *extra], stdout=subprocess.PIPE, env=env, text=True)
    assert host.stdout is not None
    pid_file = Path(os.environ["CLAUDE_STANDIN_PID_FILE"])
    try:
        for line in host.stdout:  # "message AssistantMessage" comes after every spawn step ran
            if line.startswith("message AssistantMessage"):
                break
        deadline = time.monotonic() + 10
        while {role for _, role in read_pids(pid_file)} < roles and time.monotonic() < deadline:
            time.sleep(0.01)
        tree = read_pids(pid_file)
        assert roles <= {role for _, role in tree}, tree
        assert all(process_alive(pid) for pid, _ in tree)
        killed = time.monotonic()
        host.kill()
        host.wait()
        deadline = killed + 10
        while any(process_alive(pid) for pid, _ in tree) and time.monotonic() < deadline:
            time.sleep(0.005)
        gone_after = time.monotonic() - killed
        left = [(pid, role) for pid, role in tree if process_alive(pid)]
        assert not left, f"alive {gone_after:.2f} s after the host's SIGKILL: {left}"
        return gone_after, tree
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        host.stdout.close()
        for pid, _ in read_pids(pid_file):  # orphans came to us (the test process is a subreaper): reap
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def test_host_sigkill_ends_the_tree_with_cgroups(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    cgroups_or_skip()
    steps: list[dict[str, object]] = [{"spawn": {"new_session": True}}, {"spawn": {"escape": True}}]
    gone_after, _ = _kill_host_and_time(tmp_path, standin_cli, steps, {"cli", "grandchild", "escaped"}, {})
    assert gone_after < 3.0  # the goal is about 2 s; this bound only catches a guard that did nothing in time


def test_host_sigkill_ends_the_tree_without_cgroups(leak_guard: LeakGuard, standin_cli: Path,
                                                    tmp_path: Path) -> None:
    steps: list[dict[str, object]] = [{"spawn": {"new_session": True}}, {"spawn": {}}]
    gone_after, _ = _kill_host_and_time(tmp_path, standin_cli, steps, {"cli", "grandchild"},
                                           {"CLAUDE_SCOPE_CGROUP": "0"})
    assert gone_after < 3.0


def test_a_forked_child_of_the_host_does_not_keep_the_tree_alive(leak_guard: LeakGuard, standin_cli: Path,
                                                                  tmp_path: Path) -> None:
    """The host forks (multiprocessing, say) and the child lives on: the child dropped its copy of the guard's
    pipe, so the guard still sees the host die and ends the tree."""
    fork_file = tmp_path / "forked"
    steps: list[dict[str, object]] = [{"spawn": {"new_session": True}}]
    try:
        gone_after, _ = _kill_host_and_time(tmp_path, standin_cli, steps, {"cli", "grandchild"}, {},
                                            fork_file=fork_file)
        assert gone_after < 3.0
    finally:
        if fork_file.exists() and fork_file.read_text():
            forked = int(fork_file.read_text())
            with contextlib.suppress(OSError):
                os.kill(forked, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(forked, 0)
