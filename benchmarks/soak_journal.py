"""Soak gate, second stage: many orchestrators on one journal, killed and signalled at random.

    python -m benchmarks.soak_journal                          # 4 orchestrators x 5 runs (CI's form)
    python -m benchmarks.soak_journal --orchestrators 8 --runs 20

N workers share one project directory (so one ``.claude-scope/runs.db``). Each starts ``claude-scope run``
R times, one after another, with a 3-phase pipeline of random stand-in scenarios (answers, slow answers,
CLI crashes, max-turns, hangs that time out); about one run in five is ``kill -9``ed at a random moment and
one in five gets SIGTERM, and each of those is then resumed. At the end the journal must be consistent and
nothing may be left:

- every run ended (succeeded or failed), none left running or interrupted;
- every phase ended as its scenario says it must (an "ok" phase that failed was touched by someone else:
  the bug this gate exists for was a second orchestrator SIGTERMing the first one's CLI);
- no live-process row, no process the stand-ins recorded, no cgroup directory of a dead host.

Exit 0 when clean, 1 with the evidence otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import Journal
from sdk_wrapper._containment._cgroup import dead_host_dirs, host_cgroup
from sdk_wrapper.testing import process_alive, read_pids

#: scenario -> (timeout_s for the phase, the statuses it may end in when it runs)
SCENARIOS: dict[str, tuple[float, set[str]]] = {
    "ok": (30, {"succeeded"}),
    "slow": (30, {"succeeded"}),
    "exit_error": (30, {"failed"}),
    "max_turns": (30, {"failed"}),
    "hang": (1.0, {"timed_out"}),
    "grandchild_setsid": (1.0, {"timed_out"}),
}
ACTIONS = ["plain", "plain", "plain", "kill9", "term"]


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    actions: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    expected: dict[tuple[str, str], str] = field(default_factory=dict)

    def count(self, action: str) -> None:
        with self.lock:
            self.actions[action] = self.actions.get(action, 0) + 1

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


def _pipeline(rng: random.Random, run_id: str) -> tuple[str, dict[str, str]]:
    chosen = {f"p{i}": rng.choice(list(SCENARIOS)) for i in range(3)}
    text = f'[pipeline]\nname = "{run_id}"\n'
    for name, scenario in chosen.items():
        text += (f'[[phases]]\nname = "{name}"\nprompt = "{name}"\nscenario = "{scenario}"\n'
                 f"timeout_s = {SCENARIOS[scenario][0]}\n")
    return text, chosen


def _cli(project: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator._cli", *args], cwd=project,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _worker(project: Path, index: int, runs: int, seed: int, tally: Tally) -> None:
    rng = random.Random(seed * 1000 + index)
    for r in range(runs):
        run_id = f"w{index}-r{r}"
        text, chosen = _pipeline(rng, run_id)
        (project / f"{run_id}.toml").write_text(text)
        with tally.lock:
            tally.expected.update({(run_id, name): scenario for name, scenario in chosen.items()})
        action = rng.choice(ACTIONS)
        tally.count(action)
        proc = _cli(project, "run", f"{run_id}.toml", "--simulate", "--run-id", run_id)
        if action != "plain":
            time.sleep(rng.uniform(0.2, 1.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL if action == "kill9" else signal.SIGTERM)
        code = proc.wait(timeout=120)
        if action == "plain" and code not in (0, 1):
            tally.problem(f"{run_id}: run exited {code}")
        # -15: the signal came while Python was still importing, before claude-scope's own code ran
        if action == "term" and code not in (0, 1, 143, -15):
            tally.problem(f"{run_id}: SIGTERMed run exited {code}, not 143")
        if code not in (0, 1):
            with Journal(project / ".claude-scope" / "runs.db") as journal:
                recorded = journal.run_exists(run_id)
            again = ("resume", run_id) if recorded else ("run", f"{run_id}.toml", "--run-id", run_id)
            resumed = _cli(project, *again, "--simulate").wait(timeout=120)
            if resumed not in (0, 1):
                tally.problem(f"{run_id}: {again[0]} after {action} exited {resumed}")


def _check(project: Path, tally: Tally, pid_file: Path) -> list[str]:
    problems = list(tally.problems)
    with Journal(project / ".claude-scope" / "runs.db") as journal:
        runs = {r["run_id"]: r["status"] for r in journal.runs()}
        for run_id, status in runs.items():
            if status not in ("succeeded", "failed"):
                problems.append(f"{run_id}: run ended {status}")
            phases = journal.phases(run_id)
            blocked = False
            for name, row in phases.items():
                allowed = set(SCENARIOS[tally.expected[(run_id, name)]][1])
                if blocked:
                    allowed = {"skipped"}
                if row["status"] not in allowed:
                    problems.append(f"{run_id}/{name} ({tally.expected[(run_id, name)]}): {row['status']} "
                                    f"[{row['kind']}] {row['message']}")
                blocked = blocked or row["status"] != "succeeded"
        if journal.live_processes():
            problems.append(f"live-process rows left: {journal.live_processes()}")
    live = [(pid, role) for pid, role in read_pids(pid_file) if process_alive(pid)]
    if live:
        problems.append(f"processes left: {live}")
    support = host_cgroup()
    if support.host is not None:
        # Only dead owners' directories: other processes on this host (another test run, another soak) may
        # hold live ones, which are not ours to judge.
        stale = [p.name for p in dead_host_dirs(support.host.path.parent)]
        if stale:
            problems.append(f"cgroup directories of dead hosts left: {stale}")
    return problems


def soak_journal(orchestrators: int, runs: int, seed: int) -> int:
    with tempfile.TemporaryDirectory(prefix="claude-scope-soak-journal-") as tmp:
        project = Path(tmp)
        pid_file = project / "pids"
        os.environ["CLAUDE_STANDIN_PID_FILE"] = str(pid_file)
        tally = Tally()
        started = time.monotonic()
        workers = [threading.Thread(target=_worker, args=(project, i, runs, seed, tally))
                   for i in range(orchestrators)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        time.sleep(0.2)  # let the last exits be reaped
        problems = _check(project, tally, pid_file)
        summary = (f"{orchestrators} orchestrators x {runs} runs on one journal in {time.monotonic() - started:.1f}s; "
                   f"actions {json.dumps(dict(sorted(tally.actions.items())))}")
        if problems:
            print(f"NOT CLEAN: {summary}")
            for problem in problems:
                print(f"  {problem}")
            return 1
        print(f"clean: {summary}")
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orchestrators", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    return soak_journal(args.orchestrators, args.runs, args.seed)


if __name__ == "__main__":
    sys.exit(main())
