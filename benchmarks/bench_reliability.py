"""Reliability figures: what the host guard and per-query cgroups cost, and how fast a dead host's tree goes.

    python -m benchmarks.bench_reliability [--quick]

Prints a markdown table:
- guard start: the time ``ensure_guard()`` takes in a fresh process (the first query pays it once; later
  queries pay a pipe write), and the guard's resident memory;
- cgroup overhead: per-query wall time with a cgroup per query against ``CLAUDE_SCOPE_CGROUP=0``, side by
  side in one process, alternating, on the stand-in CLI (whose own start dominates either figure);
- host SIGKILL -> tree gone: a host program running ``open_query`` is killed with ``kill -9`` while its CLI
  and a grandchild in a session of its own run; the time until every process of the tree is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import psutil

from sdk_wrapper import run_query
from sdk_wrapper._containment._cgroup import host_cgroup, mount_options, rcu_expedited
from sdk_wrapper.testing import PID_FILE_ENV, install_standin, process_alive, read_pids, scenario_env

GUARD_PROBE = """
import time, psutil
from sdk_wrapper._containment._guard import ensure_guard
t = time.perf_counter(); pid = ensure_guard(); spent = time.perf_counter() - t
time.sleep(0.3)  # the guard's own interpreter has started by then
print(spent * 1000, psutil.Process(pid).memory_info().rss / 2**20)
"""

HOST = """
import sys, json, anyio
from claude_code_sdk import ClaudeCodeOptions
from sdk_wrapper import open_query

async def main() -> None:
    options = ClaudeCodeOptions(cwd=sys.argv[2], env=json.loads(sys.argv[3]))
    async with open_query("go", options, cli_path=sys.argv[1]) as stream:
        async for message in stream:
            print(type(message).__name__, flush=True)

anyio.run(main)
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def guard_start(n: int) -> tuple[list[float], list[float]]:
    spawn, rss = [], []
    for _ in range(n):
        out = subprocess.run([sys.executable, "-c", GUARD_PROBE], capture_output=True, text=True, check=True)
        ms, mb = out.stdout.split()
        spawn.append(float(ms))
        rss.append(float(mb))
    return spawn, rss


async def cgroup_overhead(n: int, cli: Path, cwd: str) -> tuple[list[float], list[float]]:
    with_cg, without = [], []
    await run_query("warm", cli_path=cli)
    for i in range(2 * n):
        off = i % 2 == 1
        if off:
            os.environ["CLAUDE_SCOPE_CGROUP"] = "0"
        started = time.perf_counter()
        outcome = await run_query("hi", cli_path=cli)
        spent = (time.perf_counter() - started) * 1000
        os.environ.pop("CLAUDE_SCOPE_CGROUP", None)
        assert outcome.ok, outcome.failure
        (without if off else with_cg).append(spent)
    return with_cg, without


def host_kill(n: int, cli: Path, tmp: Path, cgroups: bool) -> list[float]:
    script = tmp / "host.py"
    script.write_text(HOST)
    times = []
    scenario = {"steps": [{"spawn": {"new_session": True}}, {"text": "working"}, {"hang": True}], "result": None}
    for i in range(n):
        pid_file = tmp / f"pids-{cgroups}-{i}"
        env = {**os.environ, PID_FILE_ENV: str(pid_file)}
        if not cgroups:
            env["CLAUDE_SCOPE_CGROUP"] = "0"
        host = subprocess.Popen([sys.executable, str(script), str(cli), str(tmp), json.dumps(scenario_env(scenario))],
                                stdout=subprocess.PIPE, text=True, env=env)
        assert host.stdout is not None
        for line in host.stdout:
            if line.startswith("AssistantMessage"):
                break
        tree = [pid for pid, _ in read_pids(pid_file)]
        killed = time.monotonic()
        host.send_signal(signal.SIGKILL)
        host.wait()
        host.stdout.close()
        while any(process_alive(pid) for pid in tree) and time.monotonic() - killed < 10:
            time.sleep(0.002)
        times.append((time.monotonic() - killed) * 1000)
        for pid in tree:  # reparented to us: reap
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 5 if args.quick else 20
    support = host_cgroup()
    rows = []
    spawn, rss = guard_start(n)
    rows.append(("guard start (ensure_guard, first query only), ms", n, statistics.median(spawn), _pct(spawn, 0.95)))
    rows.append(("guard resident memory, MB", n, statistics.median(rss), max(rss)))
    with tempfile.TemporaryDirectory(prefix="claude-scope-bench-rel-") as tmp_name:
        tmp = Path(tmp_name)
        cli = install_standin(tmp / "bin")
        if support.host is not None:
            with_cg, without = anyio.run(cgroup_overhead, 2 * n, cli, tmp_name)
            rows.append(("per-query wall ms, no cgroup (CLAUDE_SCOPE_CGROUP=0)", 2 * n, statistics.median(without),
                         _pct(without, 0.95)))
            rows.append(("per-query wall ms, a cgroup per query", 2 * n, statistics.median(with_cg),
                         _pct(with_cg, 0.95)))
            kills = host_kill(n, cli, tmp, cgroups=True)
            rows.append(("host SIGKILL -> tree gone ms (cgroup)", n, statistics.median(kills), _pct(kills, 0.95)))
        kills = host_kill(n, cli, tmp, cgroups=False)
        rows.append(("host SIGKILL -> tree gone ms (no cgroup)", n, statistics.median(kills), _pct(kills, 0.95)))
    options = "n/a" if support.host is None else ",".join(sorted(mount_options(support.host.path)))
    print(f"cgroups: {support.reason}; cgroup2 mount options: {options}; rcu_expedited: {rcu_expedited()}; "
          f"{psutil.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    print("| measurement | N | median | p95 (max for memory) |\n|---|---|---|---|")
    for name, count, median, high in rows:
        print(f"| {name} | {count} | {median:.2f} | {high:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
