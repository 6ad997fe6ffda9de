"""sdk_wrapper.v3 as a drop-in: V3's runner, unchanged but for one import line, against V3's own behaviour."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
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


V3_PYTHON = os.environ.get("CLAUDE_SCOPE_V3_PYTHON") or str(ROOT / ".cache" / "v3-sdk-0.0.10" / "bin" / "python")
V3_SUMMARY_KEYS = {"total_errors", "recent_errors_count", "error_types", "severity_distribution",
                   "most_common_type", "last_error_time"}


@pytest.fixture(autouse=True)
def _fresh_v3_wrapper() -> Iterator[None]:
    """get_v3_wrapper is process-wide, as V3's was (the first working_dir wins): one per test here."""
    v3._wrapper = None
    yield
    v3._wrapper = None


@pytest.fixture
def runners(tmp_path: Path) -> dict[str, Path]:
    """The V3-shaped runner as it is (its ladder finds the V3 model) and as the codemod rewrote it."""
    (tmp_path / "v3").mkdir()
    (tmp_path / "ours").mkdir()
    shutil.copy(RUNNER, tmp_path / "v3" / RUNNER.name)
    shutil.copy(RUNNER, tmp_path / "ours" / RUNNER.name)
    (result,) = migrate([tmp_path / "ours"], write=True)
    text = (tmp_path / "ours" / RUNNER.name).read_text()
    assert result.changed and "from sdk_wrapper.v3 import query_v4_fixed as query_v3" in text
    assert result.left == []  # every rung rewritten: nothing of V3 is left to fail at import
    return {"v3": tmp_path / "v3" / RUNNER.name, "ours": tmp_path / "ours" / RUNNER.name}


def run_runner(runner: Path, scenario: str | dict[str, Any], work: Path, guard: LeakGuard, *, python: str,
               timeout_s: float = 2.0, mode: str = "scoped") -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Run the runner in a fresh interpreter; return its phase record, its totals line, and the roles of the
    processes the stand-in recorded that were left alive (then killed)."""
    env = {**os.environ, **scenario_env(scenario), "PYTHONPATH": str(LEGACY), v3.MODE_ENV: mode}
    before = {pid for pid, _ in guard.recorded_pids()}
    proc = subprocess.run([python, str(runner), str(work), f"p1:do it:{timeout_s}"], env=env,
                          capture_output=True, text=True, timeout=60)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) >= 2, proc.stderr[-2000:]
    left = [(pid, role) for pid, role in guard.recorded_pids() if pid not in before and process_alive(pid)]
    for pid, _ in left:
        psutil.Process(pid).kill()
    return json.loads(lines[-2]), json.loads(lines[-1]), [role for _, role in left]


SLOW = 0.05  # between messages, so that each is its own stdout read (as from a CLI that thinks)
#: scenario -> (its stand-in scenario, what the real V3 did on claude-code-sdk 0.0.10
#: (migration/MIGRATION.md, "What V3 really did"), what ours does, the shadow verdict that must record V3's behaviour)
V3_TABLE: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any], str | None]] = {
    "two lines in one read": ({"steps": [{"burst": {"count": 5}}]},
                              {"status": "completed", "cost_usd": 0.0}, {"status": "completed", "cost_usd": 0.0123},
                              "fabricated_success"),
    "a line over 64 KiB": ({"delay_s": SLOW, "steps": [{"long_line_bytes": 70000}]},
                           {"status": "completed", "cost_usd": 0.0}, {"status": "completed", "cost_usd": 0.0123},
                           "fabricated_success"),
    "hang, caller times out": ({"preset": "hang", "delay_s": SLOW},
                               {"status": "failed", "error": "V3 SDK execution failed: TimeoutError: "},
                               {"status": "failed", "error": "V3 SDK execution failed: TimeoutError: "}, None),
    "hang, SIGTERM ignored": ({"preset": "hang_ignore_term", "delay_s": SLOW},
                              {"status": "failed", "left": ["cli"]}, {"status": "failed"}, "processes_left"),
    "hang, setsid grandchild": ({"delay_s": SLOW, "steps": [{"spawn": {"new_session": True}}, {"text": "w"},
                                                            {"hang": True}], "result": None},
                                {"status": "failed", "left": ["grandchild"]}, {"status": "failed"},
                                "processes_left"),
    "exit 1, stderr without 'error'": ({"preset": "exit_error", "delay_s": SLOW},
                                       {"status": "running", "error": None}, {"status": "failed"}, "stuck_running"),
    "exit 1, stderr 'Error: ...'": ({"preset": "exit_error", "delay_s": SLOW,
                                     "steps": [{"text": "starting"}, {"stderr": "Error: it broke"}]},
                                    {"status": "failed"}, {"status": "failed"}, None),
    "max turns": ({"preset": "max_turns", "delay_s": SLOW}, {"status": "failed", "error": None},
                  {"status": "failed", "error": "Reached maximum number of turns (3)"}, None),
    "not logged in": ({"preset": "not_logged_in", "delay_s": SLOW},
                      {"status": "failed", "error": "Not logged in · Please run /login"},
                      {"status": "failed", "error": "Not logged in · Please run /login"}, None),
    "only an older cost field": ({"preset": "ok", "delay_s": SLOW, "omit_result_keys": ["total_cost_usd"],
                                  "result": {"cost_usd": 0.5}},
                                 {"status": "completed", "cost_usd": 0.5}, {"status": "completed", "cost_usd": 0.5},
                                 None),
    "no cost at all": ({"preset": "ok", "delay_s": SLOW, "omit_result_keys": ["total_cost_usd"]},
                       {"status": "completed", "cost_usd": 0.0}, {"status": "completed", "cost_usd": 0.0}, None),
}


@pytest.mark.parametrize("case", list(V3_TABLE))
def test_v3_on_its_own_sdk_against_the_drop_in(case: str, leak_guard: LeakGuard, standin_on_path: Path,
                                               runners: dict[str, Path], tmp_path: Path) -> None:
    """Each scenario of the shared table: the V3 model on claude-code-sdk 0.0.10 does what the real V3 did;
    the migrated runner gets the truth, with nothing left running; shadow mode records what V3 hid or lost."""
    if not Path(V3_PYTHON).exists():
        pytest.skip("V3 COMPARISON SKIPPED: no claude-code-sdk 0.0.10 venv (scripts/test makes it in .cache)")
    scenario, want_v3, want_ours, verdict = V3_TABLE[case]
    timeout = 1.5 if case.startswith("hang") else 20
    (tmp_path / "w3").mkdir()
    (tmp_path / "w").mkdir()
    got_v3, _, left_v3 = run_runner(runners["v3"], scenario, tmp_path / "w3", leak_guard, python=V3_PYTHON,
                                    timeout_s=timeout)
    for key, value in want_v3.items():
        assert (left_v3 if key == "left" else got_v3[key]) == value, (key, got_v3, left_v3)
    if "left" not in want_v3:
        assert left_v3 == []
    ours, totals, left = run_runner(runners["ours"], scenario, tmp_path / "w", leak_guard, python=sys.executable,
                                    timeout_s=timeout, mode="shadow")
    for key, value in want_ours.items():
        assert ours[key] == value, (key, ours)
    if ours["status"] == "failed" and "error" not in want_ours:
        assert ours["error"]  # a reason, never None
    assert left == []
    assert totals["total_cost_usd"] == ours["cost_usd"]  # V3's sum(...) ran: no None in it
    masked = read_masked(tmp_path / "w" / ".claude-scope" / "runs.db")
    assert [row["v3_category"] for row in masked] == ([verdict] if verdict else []), masked
    summary = totals["summary"]
    if ours["status"] == "failed" and not case.startswith("hang"):  # a caller's cancel is not an error
        assert summary.keys() >= V3_SUMMARY_KEYS and summary["total_errors"] == 1, summary
        log = tmp_path / "w" / ".cc_automator" / "stability_logs" / "taskgroup_errors.jsonl"
        (line,) = log.read_text().splitlines()
        assert json.loads(line)["error_analysis"]["specific_type"] in summary["error_types"]
    else:
        assert summary.get("no_data") is True or summary["total_errors"] == 0, summary


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
    """In process: a cancelled hang of a CLI that obeys SIGTERM (V3 reported that truthfully: no record) and
    an exit 1 whose stderr lacks "error" (V3's phase stayed "running": recorded). The whole table, against
    V3 on its own SDK, is test_v3_on_its_own_sdk_against_the_drop_in."""
    monkeypatch.setenv(v3.MODE_ENV, "shadow")
    slow_exit = {"preset": "exit_error", "delay_s": SLOW}

    async def phase() -> None:
        with anyio.move_on_after(0.5):
            await _collect("research the repo", ClaudeCodeOptions(env=scenario_env("hang")), tmp_path)
        await _collect("crash quietly", ClaudeCodeOptions(env=scenario_env(slow_exit)), tmp_path)

    anyio.run(phase)
    (row,) = read_masked(tmp_path / ".claude-scope" / "runs.db")
    assert (row["kind"], row["v3_category"], row["prompt"]) == ("process_exit", "stuck_running", "crash quietly")
    out = subprocess.run([sys.executable, "-m", "orchestrator._cli", "--project-dir", str(tmp_path), "masked"],
                         capture_output=True, text=True, timeout=60)
    assert '"v3_category": "stuck_running"' in out.stdout
    assert "1 thing(s) the real V3 would have hidden or lost" in out.stderr


def test_legacy_mode_fails_clearly_where_v3_cannot_run(leak_guard: LeakGuard, standin_on_path: Path,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rollback flag on our SDK (0.0.25): V3's module raises AttributeError at import, as the real one
    does; legacy mode says so and how to roll back, before any CLI starts, and never runs the new wrapper."""
    monkeypatch.setenv(v3.MODE_ENV, "legacy")
    with pytest.raises(v3.LegacyModeError, match="no V3 module is recorded"):
        anyio.run(_collect, "go", ClaudeCodeOptions(env=scenario_env("ok")), tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.claude-scope]\nlegacy_module = "claude_code_sdk_fixed_v3"\n')
    monkeypatch.syspath_prepend(str(LEGACY))
    with pytest.raises(v3.LegacyModeError) as info:
        anyio.run(_collect, "go", ClaudeCodeOptions(env=scenario_env("ok")), tmp_path)
    message = str(info.value)
    assert "AttributeError" in message and "claude-scope migrate --revert" in message
    assert "claude-code-sdk==0.0.10" in message
    assert leak_guard.recorded_pids() == []  # no CLI was started, by either wrapper
    sys.modules.pop("claude_code_sdk_fixed_v3", None)


def test_legacy_mode_runs_a_recorded_module_that_can_run(leak_guard: LeakGuard, standin_on_path: Path,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "old_wrapper.py").write_text(
        "async def query_v3(prompt, options, working_dir, verbose=False):\n"
        "    yield {'from': 'the legacy module', 'prompt': prompt}\n")
    (tmp_path / "pyproject.toml").write_text('[tool.claude-scope]\nlegacy_module = "pkg.old_wrapper"\n')
    monkeypatch.setenv(v3.MODE_ENV, "legacy")
    try:
        items = anyio.run(_collect, "go", ClaudeCodeOptions(env=scenario_env("ok")), tmp_path)
        assert items == [{"from": "the legacy module", "prompt": "go"}]
        v3.set_mode("scoped")
        assert anyio.run(_collect, "go", ClaudeCodeOptions(env=scenario_env("ok")), tmp_path)[-1]["type"] == "result"
    finally:
        v3.set_mode(None)
        sys.modules.pop("pkg.old_wrapper", None)
        sys.modules.pop("pkg", None)
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


def test_result_dicts_never_hold_none_where_v3_reads_a_default() -> None:
    """V3 reads `msg.get("total_cost_usd", 0.0)` then `> 0` and `sum(...)`, and `msg.get("result", "Unknown
    error")`: a present None breaks both; an older cost field is the CLI's own number."""
    from claude_code_sdk import ResultMessage

    def result(**fields: Any) -> ResultMessage:
        base: dict[str, Any] = {"subtype": "success", "duration_ms": 5, "duration_api_ms": 4, "is_error": False,
                                "num_turns": 1, "session_id": "s", "total_cost_usd": None, "usage": None,
                                "result": "done"}
        return ResultMessage(**{**base, **fields})

    none = v3.message_to_v3(result(), {"type": "result", "subtype": "success"})
    assert "total_cost_usd" not in none and "cost_usd" not in none and "usage" not in none
    assert none.get("total_cost_usd", 0.0) + 1 == 1.0  # V3's arithmetic works with its own default
    older = v3.message_to_v3(result(), {"type": "result", "total_cost": 0.25})
    assert older["total_cost_usd"] == older["cost_usd"] == 0.25
    max_turns = v3.message_to_v3(result(subtype="error_max_turns", is_error=True, result=None),
                                 {"type": "result", "errors": ["Reached maximum number of turns (3)"]})
    assert max_turns.get("result", "Unknown error") == "Reached maximum number of turns (3)"
    assert (max_turns["subtype"], max_turns["is_error"]) == ("error_max_turns", True)  # still the CLI's failure
    bare = v3.message_to_v3(result(subtype="error_during_execution", is_error=True, result=None), {"errors": []})
    assert bare["result"] == "error_during_execution"


def test_v4_names_behave_as_v4_did(tmp_path: Path) -> None:
    assert v3.query_v4_fixed is v3.query_v3
    wrapper = v3.get_v4_fixed_wrapper(tmp_path)
    assert wrapper is v3.get_v3_wrapper(tmp_path / "elsewhere")  # process-wide, the first directory wins
    assert wrapper.working_dir == tmp_path
    status = wrapper.get_session_status()
    assert status["active_sessions"] == 0 and status["session_ids"] == []
    assert wrapper.execute_phase_with_fixes.__func__ is v3.V3QueryWrapper.execute_phase  # type: ignore[attr-defined]
    assert wrapper.get_taskgroup_error_summary()["no_data"] is True
