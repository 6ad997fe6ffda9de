"""What isolated phases, races and planners cost, measured against the stand-in CLI and real git.

    python -m benchmarks.bench_isolation [isolation|race|temporal-race|planner|temporal-planner|all] [N]

- ``isolation``: per attempt on a repository of 10,000 files, our worktree's start (HEAD, a status of the
  checkout for uncommitted changes, ``git worktree add``) and a whole start-and-end, against ``git worktree
  add`` alone (the floor) and add-and-remove; paired rounds. Then bringing back an attempt that changed one
  file (commit and merge).
- ``race``: a race of one quick variant and three that hang: from the decision to every loser's CLI tree
  gone (its query's cleanup, verified) and to their worktrees removed (the race's own evidence).
  ``temporal-race``: the same race on a Temporal dev server, each variant an activity: from the workflow
  task that decided to the one that saw every loser's activity cancelled (each ended its tree and removed
  its worktree first), as the workflow's clock has it.
- ``planner``: a planner that writes N phases (default 1,000), each one stand-in query, run one at a time:
  the orchestration's time per phase besides the phase itself (the run's wall time less the phases' own),
  and the journal's size after. ``temporal-planner``: the same on a Temporal dev server and worker.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from orchestrator import Orchestrator, parse_pipeline
from orchestrator._git import open_repo
from orchestrator._worktree import Isolation
from sdk_wrapper.testing import install_standin


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(path: Path, files: int) -> Path:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    for i in range(files):
        folder = path / f"d{i % 100:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}.txt").write_text(f"file {i}\n" * 8)
    (path / ".gitignore").write_text(".claude-scope/\n")
    _git(path, "add", "-A")
    _git(path, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "files")
    return path


class _Record:
    def git_state_added(self, *args: Any) -> None:
        pass

    def git_state_done(self, key: str) -> None:
        pass


async def isolation(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp) / "repo", 10_000)
        root = Path(tmp) / "worktrees"
        iso = Isolation(await open_repo(repo), _Record(), "bench", "phase", root)
        floor_add, floor_cycle, ours_start, ours_cycle, back = [], [], [], [], []
        for n in range(rounds):
            path = root / f"floor-{n}"
            started = time.perf_counter()
            await anyio.run_process(["git", "worktree", "add", "--detach", "--quiet", str(path), "HEAD"], cwd=repo)
            floor_add.append((time.perf_counter() - started) * 1000)
            await anyio.run_process(["git", "worktree", "remove", "--force", str(path)], cwd=repo)
            floor_cycle.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            wt = await iso.start(n)
            ours_start.append((time.perf_counter() - started) * 1000)
            await iso.end(wt)
            ours_cycle.append((time.perf_counter() - started) * 1000)
            wt = await iso.start(n)
            (wt.path / "d00" / "f0.txt").write_text(f"changed {n}\n")
            started = time.perf_counter()
            merged = await iso.bring_back(wt, n)
            back.append((time.perf_counter() - started) * 1000)
            await iso.end(wt)
            assert merged.passed, merged.evidence
        print(f"isolation, 10,000 files, {rounds} paired rounds (ms)")
        print(f"{'':34} {'median':>8} {'p95':>8}")
        for label, values in (("git worktree add (the floor)", floor_add), ("ours: start", ours_start),
                              ("git worktree add + remove", floor_cycle), ("ours: start + end", ours_cycle),
                              ("ours: bring back one changed file", back)):
            print(f"{label:34} {statistics.median(values):>8.1f} {_p95(values):>8.1f}")
        print(f"ratio start / add: {statistics.median(ours_start) / statistics.median(floor_add):.2f}x; "
              f"start+end / add+remove: {statistics.median(ours_cycle) / statistics.median(floor_cycle):.2f}x")


async def race(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp) / "repo", 10)
        os.environ["CLAUDE_SCOPE_WORKTREES"] = str(Path(tmp) / "worktrees")
        cli = install_standin(Path(tmp) / "bin")
        trees, worktrees = [], []
        with Orchestrator(repo / ".claude-scope" / "runs.db", project_dir=repo, cli_path=cli) as orch:
            for n in range(rounds):
                report = await orch.run(parse_pipeline(_race_of_four(n), project_dir=repo, simulate=True),
                                        run_id=f"r{n}")
                evidence = next(c for c in report.phases["race"].checks if c.name == "race")
                trees.append(evidence.details["trees_gone_ms"])
                worktrees.append(evidence.details["worktrees_gone_ms"])
        print(f"race of 4 (1 wins after 0.3 s, 3 hang), {rounds} runs: from the decision to (ms)")
        print(f"{'':34} {'median':>8} {'p95':>8} {'max':>8}")
        for label, values in (("every loser's CLI tree gone", trees), ("... and its worktree removed", worktrees)):
            print(f"{label:34} {statistics.median(values):>8.1f} {_p95(values):>8.1f} {max(values):>8.1f}")


def _race_of_four(n: int) -> dict[str, Any]:
    hang = {"steps": [{"text": "thinking"}, {"hang": True}]}
    quick = {"steps": [{"sleep": 0.3}, {"tool": {"name": "Write", "input": {"file_path": "a.md", "content": f"a{n}"}}}]}
    return {"phases": [{"name": "race", "prompt": "x", "isolation": "worktree", "variants": [
        {"scenario": quick}, {"scenario": hang}, {"scenario": hang}, {"scenario": hang}]}]}


async def temporal_race(rounds: int) -> None:
    from orchestrator import temporal

    from ._temporal import dev_worker

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CLAUDE_SCOPE_WORKTREES"] = str(Path(tmp) / "worktrees")
        async with dev_worker("bench-race", max_parallel=4) as bench:
            (bench.workspace / ".gitignore").write_text("bin/\n.claude-scope/\n")
            for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b",
                                                                         "commit", "-q", "-m", "first"]):
                _git(bench.workspace, *args)
            gone, walls = [], []
            for n in range(rounds):
                started = time.perf_counter()
                report = await bench.runner.run(temporal.spec_from_data(_race_of_four(n), simulate=True),
                                                run_id=f"race-{n}")
                walls.append((time.perf_counter() - started) * 1000)
                assert report.ok, report.phases["race"].message
                view = await bench.runner.view(f"race-{n}")
                race = next(c for a in view.phases[0].attempts for c in a.checks if c["name"] == "race")
                gone.append(race["details"]["losers_gone_ms"])
    print(f"Temporal race of 4 (1 wins after 0.3 s, 3 hang; each variant an activity), {rounds} runs (ms)")
    print(f"{'':46} {'median':>8} {'p95':>8} {'max':>8}")
    for label, values in (("decision to every loser's activity cancelled", gone),
                          ("the whole run, client side", walls)):
        print(f"{label:46} {statistics.median(values):>8.1f} {_p95(values):>8.1f} {max(values):>8.1f}")


def _planner_pipeline(count: int) -> dict[str, Any]:
    plan = "".join(f'[[phases]]\nname = "p{i}"\nprompt = "step {i}"\nscenario = "ok"\n' for i in range(count))
    return {"phases": [{"name": "plan", "prompt": "plan", "expands": "plan.toml", "max_planned": count,
                        "scenario": {"steps": [{"tool": {"name": "Write", "input": {
                            "file_path": "plan.toml", "content": plan}}}]}}]}


def _overhead(wall: float, durations: list[float]) -> float:
    return (wall - sum(durations)) / len(durations) * 1000


async def planner(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        cli = install_standin(project / "bin")
        db = project / ".claude-scope" / "runs.db"
        with Orchestrator(db, project_dir=project, cli_path=cli) as orch:
            started = time.perf_counter()
            report = await orch.run(parse_pipeline(_planner_pipeline(count), project_dir=project, simulate=True))
            wall = time.perf_counter() - started
        assert report.ok and len(report.phases) == count + 1, [o.message for o in report.failed][:3]
        durations = [o.duration_s for o in report.phases.values()]
        size = db.stat().st_size + sum(f.stat().st_size for f in (project / ".claude-scope").rglob("*") if f.is_file()
                                       and f != db)
        print(f"local planner of {count} phases, one at a time: wall {wall:.1f} s, "
              f"orchestration per phase {_overhead(wall, durations):.2f} ms besides the phase itself; "
              f"journal {db.stat().st_size / 1e6:.2f} MB, with message logs {size / 1e6:.2f} MB")


async def temporal_planner(count: int) -> None:
    from orchestrator import temporal

    from ._temporal import dev_worker

    async with dev_worker("bench", max_parallel=1) as bench:
        started = time.perf_counter()
        report = await bench.runner.run(temporal.spec_from_data(_planner_pipeline(count), simulate=True),
                                        run_id="bp")
        wall = time.perf_counter() - started
        result = await bench.client.get_workflow_handle("bp").result()
        histories = [await bench.client.get_workflow_handle("bp", run_id=w.run_id).fetch_history()
                     async for w in bench.client.list_workflows("WorkflowId = 'bp'")]
    if not (report.ok and len(report.phases) == count + 1):
        bad = [(o.name, o.status.value, o.message[:200]) for o in report.phases.values() if not o.succeeded]
        raise SystemExit(f"the Temporal run did not succeed whole: {len(report.phases)} phases, {bad[:5]}")
    durations = [o.duration_s for o in report.phases.values()]
    sizes = [(len(h.events), sum(len(e.SerializeToString()) for e in h.events)) for h in histories]
    events, size = max(sizes, key=lambda s: s[1])
    print(f"Temporal planner of {count} phases, one at a time: wall {wall:.1f} s, orchestration per phase "
          f"{_overhead(wall, durations):.2f} ms besides the phase itself; {len(histories)} run(s) "
          f"({result.get('rolls', 0)} continue-as-new), the largest history {events} events, {size / 1e6:.2f} MB "
          f"(limits: 51,200 events, 50 MB); all: {sum(e for e, _ in sizes)} events; the result "
          f"{len(json.dumps(result)) / 1e6:.2f} MB (limit 2 MB)")


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if which in ("isolation", "all"):
        anyio.run(isolation, n or 10)
    if which in ("race", "all"):
        anyio.run(race, n or 20)
    if which in ("temporal-race", "all"):
        anyio.run(temporal_race, n or 20)
    if which in ("planner", "all"):
        anyio.run(planner, n or 1000)
    if which in ("temporal-planner", "all"):
        anyio.run(temporal_planner, n or 1000)


if __name__ == "__main__":
    main()
