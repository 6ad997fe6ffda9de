"""sdk_wrapper.v3 as a drop-in: V3's runner, unchanged but for one import line, against V3's own behaviour."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from claude_code_sdk import ClaudeCodeOptions

from migration import migrate, read_masked
from sdk_wrapper import v3
from sdk_wrapper.testing import process_alive, scenario_env
from sdk_wrapper.testing.pytest_plugin import LeakGuard

ROOT = Path(__file__).parents[2]
RUNNER = ROOT / "migration" / "examples" / "v3_phase_runner.py"
LEGACY = Path(__file__).with_name("v3_legacy")


@pytest.fixture
def runners(tmp_path: Path) -> dict[str, Path]:
    """The V3 runner as it is (importing the test copy of V3) and as the codemod rewrote it."""
    (tmp_path / "v3").mkdir()
    (tmp_path / "ours").mkdir()
    shutil.copy(RUNNER, tmp_path / "v3" / RUNNER.name)
    shutil.copy(RUNNER, tmp_path / "ours" / RUNNER.name)
    (result,) = migrate([tmp_path / "ours"], write=True)
    assert result.changed and "from sdk_wrapper.v3 import" in (tmp_path / "ours" / RUNNER.name).read_text()
    return {"v3": tmp_path / "v3" / RUNNER.name, "ours": tmp_path / "ours" / RUNNER.name}


def run_runner(runner: Path, scenario: str | dict[str, Any], work: Path, guard: LeakGuard,
               timeout_s: float = 2.0) -> tuple[dict[str, Any], list[int]]:
    """Run the V3-style runner in a fresh interpreter; return its phase record and the CLI pids left alive."""
    env = {**os.environ, **scenario_env(scenario), "PYTHONPATH": str(LEGACY)}
    before = {pid for pid, _ in guard.recorded_pids()}
    proc = subprocess.run([sys.executable, str(runner), str(work), f"p1:do it:{timeout_s}"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=60)
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    left = [pid for pid, _ in guard.recorded_pids() if pid not in before and process_alive(pid)]
    for pid in left:
        psutil.Process(pid).kill()
    return record, left


def test_good_run_reports_the_same_success(leak_guard: LeakGuard, standin_on_path: Path, runners: dict[str, Path],
                                           tmp_path: Path) -> None:
    scenario = {"preset": "ok", "session_id": "sess-42", "result": {"total_cost_usd": 0.25}}
    v3_record, _ = run_runner(runners["v3"], scenario, tmp_path, leak_guard)
    ours, left = run_runner(runners["ours"], scenario, tmp_path, leak_guard)
    for record in (v3_record, ours):
        assert (record["status"], record["session_id"], record["cost_usd"]) == ("completed", "sess-42", 0.25)
    assert left == []


def test_hang_then_cancelled(leak_guard: LeakGuard, standin_on_path: Path, runners: dict[str, Path],
                             tmp_path: Path) -> None:
    v3_record, v3_left = run_runner(runners["v3"], "hang", tmp_path, leak_guard)
    # V3: a success the CLI never sent, with a made-up cost, and the CLI still running.
    assert v3_record["status"] == "completed" and v3_record["cost_usd"] == 0.0 and len(v3_left) == 1
    ours, left = run_runner(runners["ours"], "hang", tmp_path, leak_guard)
    assert ours["status"] == "failed" and ours["error"].startswith("TimeoutError") and left == []


def test_cli_exits_with_an_error(leak_guard: LeakGuard, standin_on_path: Path, runners: dict[str, Path],
                                 tmp_path: Path) -> None:
    v3_record, _ = run_runner(runners["v3"], "exit_error", tmp_path, leak_guard)
    # V3 reports this one as a failure, measured, but without its type or the CLI's stderr.
    assert v3_record["status"] == "failed" and "Check stderr output for details" in v3_record["error"]
    ours, left = run_runner(runners["ours"], "exit_error", tmp_path, leak_guard)
    assert ours["status"] == "failed" and ours["error"].startswith("process_exit: ")
    assert "the stand-in failed on purpose" in ours["error"] and left == []


async def _collect(prompt: str, options: ClaudeCodeOptions, work: Path) -> list[dict[str, Any]]:
    return [m async for m in v3.query_v3(prompt, options, work)]


@pytest.mark.anyio
async def test_dict_shapes(leak_guard: LeakGuard, standin_on_path: Path, tmp_path: Path) -> None:
    options = ClaudeCodeOptions(env=scenario_env({"preset": "tools", "session_id": "s-1"}))
    items = await _collect("go", options, tmp_path)  # cwd comes from working_dir, as in V3
    init, result = items[0], items[-1]
    assert (init["type"], init["subtype"], init["session_id"], init["data"]["session_id"]) == \
        ("system", "init", "s-1", "s-1")
    assert [i["type"] for i in items].count("result") == 1
    assert {k: result[k] for k in ("type", "subtype", "is_error", "session_id", "num_turns")} == \
        {"type": "result", "subtype": "success", "is_error": False, "session_id": "s-1", "num_turns": 3}
    assert result["total_cost_usd"] == result["cost_usd"] == 0.0123 and isinstance(result["cost_usd"], float)
    assert {"duration_ms", "duration_api_ms", "usage", "result"} <= result.keys()
    assert (tmp_path / "standin-output.md").exists()


@pytest.mark.anyio
@pytest.mark.parametrize(("preset", "subtype"), [("exit_error", "error_process_exit"),
                                                 ("malformed_json", "error_invalid_output")])
async def test_failure_is_one_final_error_result(preset: str, subtype: str, leak_guard: LeakGuard,
                                                 standin_on_path: Path, tmp_path: Path) -> None:
    items = await _collect("go", ClaudeCodeOptions(env=scenario_env(preset)), tmp_path)
    results = [i for i in items if i.get("type") == "result"]
    assert len(results) == 1 and results[0] is items[-1]
    final = results[0]
    assert final["subtype"] == subtype and final["is_error"] is True
    assert final["result"].startswith(subtype.removeprefix("error_") + ": ")
    assert final["failure"]["kind"] == subtype.removeprefix("error_")


@pytest.mark.anyio
async def test_cli_error_result_is_passed_through_once(leak_guard: LeakGuard, standin_on_path: Path,
                                                       tmp_path: Path) -> None:
    items = await _collect("go", ClaudeCodeOptions(env=scenario_env("max_turns")), tmp_path)
    results = [i for i in items if i.get("type") == "result"]
    assert [(r["subtype"], r["is_error"]) for r in results] == [("error_max_turns", True)]


@pytest.mark.anyio
async def test_leaving_early_without_closing_is_safe(leak_guard: LeakGuard, standin_on_path: Path,
                                                     tmp_path: Path) -> None:
    """V3 code may break out of `async for` and drop the generator: the GC then closes it in another task."""
    stream = v3.query_v3("go", ClaudeCodeOptions(env=scenario_env("hang")), tmp_path)
    async for _ in stream:
        break
    del stream  # finalized by asyncio's async-generator hook, in a new task
    for _ in range(100):
        await anyio.sleep(0.02)
        if not any(process_alive(pid) for pid, _ in leak_guard.recorded_pids()):
            break
    assert not any(process_alive(pid) for pid, _ in leak_guard.recorded_pids())


def test_threads_each_with_their_own_loop(leak_guard: LeakGuard, standin_on_path: Path, tmp_path: Path) -> None:
    """V3's parallel lint/typecheck executor: 4 threads, each anyio.run(...), one shared wrapper object."""
    results: list[list[dict[str, Any]]] = []
    wrappers: list[object] = []
    errors: list[BaseException] = []

    def worker(scenario: str) -> None:
        try:
            wrappers.append(v3.get_v3_wrapper(tmp_path))
            results.append(anyio.run(_collect, "go", ClaudeCodeOptions(env=scenario_env(scenario)), tmp_path))
        except BaseException as exc:
            errors.append(exc)

    before = v3.get_v3_wrapper(tmp_path).get_taskgroup_error_summary()["total_errors"]
    threads = [threading.Thread(target=worker, args=(s,)) for s in ("ok", "slow", "exit_error", "ok")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(results) == 4
    assert all(w is wrappers[0] for w in wrappers)
    assert sorted(r[-1]["subtype"] for r in results) == ["error_process_exit", "success", "success", "success"]
    summary = v3.get_v3_wrapper(tmp_path).get_taskgroup_error_summary()
    assert summary["total_errors"] == before + 1 and summary["fabricated_successes"] == 0


def test_shadow_mode_records_what_v3_would_have_hidden(leak_guard: LeakGuard, standin_on_path: Path,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(v3.MODE_ENV, "shadow")

    async def phase() -> None:
        with anyio.move_on_after(0.5):
            await _collect("research the repo", ClaudeCodeOptions(env=scenario_env("hang")), tmp_path)
        await _collect("ok one", ClaudeCodeOptions(env=scenario_env("ok")), tmp_path)

    anyio.run(phase)
    (row,) = read_masked(tmp_path / ".claude-scope" / "runs.db")
    assert (row["kind"], row["v3_category"], row["basis"]) == ("cancelled", "taskgroup_cleanup", "matrix")
    assert row["prompt"] == "research the repo"
    out = subprocess.run([sys.executable, "-m", "orchestrator._cli", "--project-dir", str(tmp_path), "masked"],
                         capture_output=True, text=True, timeout=60)
    assert '"kind": "cancelled"' in out.stdout and "1 failure(s) V3 would have reported" in out.stderr


def test_legacy_mode_delegates_to_the_original(leak_guard: LeakGuard, standin_on_path: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(v3.MODE_ENV, "legacy")
    monkeypatch.syspath_prepend(str(LEGACY))
    leak_guard.tolerate(ResourceWarning)  # legacy runs the raw SDK, which never closes Query's streams
    items = anyio.run(_collect, "go", ClaudeCodeOptions(env=scenario_env("ok")), tmp_path)
    assert "type" not in items[-1] and items[-1]["subtype"] == "success"  # V3's own shape: message.__dict__
    v3.set_mode("scoped")
    try:
        assert anyio.run(_collect, "go", ClaudeCodeOptions(env=scenario_env("ok")), tmp_path)[-1]["type"] == "result"
    finally:
        v3.set_mode(None)
    with pytest.raises(ValueError, match="mode must be one of"):
        v3.set_mode("yolo")


def test_classify_error_is_by_type_and_never_masks() -> None:
    wrapper = v3.V3QueryWrapper(Path("."))
    error = RuntimeError("Attempted to exit cancel scope in a different task than it was entered in")
    assert wrapper._classify_error(error) == "unexpected"
    assert wrapper._classify_error(TimeoutError()) == "timeout"


def test_import_has_no_side_effects() -> None:
    code = ("import sdk_wrapper.v3, claude_code_sdk._internal.client as c; "
            "print(c.InternalClient.__dict__.get('_parse_message'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout == "None\n" and out.stderr == ""  # no print at import, no monkey-patch
