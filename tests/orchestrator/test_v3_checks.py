"""V3's validators as check types, on real files and real processes: pytest really runs (judged from its
JUnit XML), grep present and absent, a command with scripted input and an expected output, a glob whose
every match must be big enough; each from a pipeline file too, and each able to travel to Temporal."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator import (
    CheckContext,
    PipelineError,
    RunContext,
    command_succeeds,
    glob_matches,
    grep,
    parse_pipeline,
    pytest_passes,
)
from sdk_wrapper.testing.pytest_plugin import LeakGuard

pytestmark = pytest.mark.anyio

TESTS = """
def test_adds():
    assert 1 + 1 == 2

def test_subtracts():
    assert 3 - 1 == 1, "three minus one is two"

def test_skipped():
    import pytest
    pytest.skip("not today")
"""


def ctx(project: Path) -> CheckContext:
    return CheckContext(project, RunContext("r", project, {}))


async def test_pytest_check_runs_pytest_and_reads_its_report(leak_guard: LeakGuard, tmp_path: Path) -> None:
    (tmp_path / "test_calc.py").write_text(TESTS)
    check = pytest_passes("test_calc.py", python=sys.executable)
    failed = await check.run(ctx(tmp_path))
    assert not failed.passed
    assert failed.evidence.startswith("2 ran: 1 passed, 1 failed, 0 errors, 1 skipped; first: ")
    assert "test_subtracts" in failed.evidence and "three minus one is two" in failed.evidence
    assert (failed.details["tests"], failed.details["failures"]) == (3, 1)
    assert failed.details["cleanup"]["leftover_pids"] == []
    (tmp_path / "test_calc.py").write_text(TESTS.replace("== 1,", "== 2,"))
    passed = await check.run(ctx(tmp_path))
    assert passed.passed and passed.evidence == "2 ran: 2 passed, 0 failed, 0 errors, 1 skipped"


async def test_pytest_check_fails_when_nothing_ran_or_pytest_is_missing(leak_guard: LeakGuard, tmp_path: Path) -> None:
    (tmp_path / "test_none.py").write_text("x = 1\n")
    none = await pytest_passes("test_none.py", python=sys.executable).run(ctx(tmp_path))
    assert not none.passed and none.evidence == "no tests ran"
    venv = tmp_path / "bare"  # an interpreter without pytest: its python -m pytest writes no report
    bare = venv / "python"
    bare.parent.mkdir()
    bare.write_text("#!/bin/sh\necho 'No module named pytest' >&2\nexit 1\n")
    bare.chmod(0o755)
    missing = await pytest_passes(python=str(bare)).run(ctx(tmp_path))
    assert not missing.passed and "pytest wrote no report (exit 1): is pytest installed" in missing.evidence


async def test_grep_present_and_absent(leak_guard: LeakGuard, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def add(a, b):\n    # TODO: overflow\n    return a + b\n")
    (tmp_path / "src" / "ok.py").write_text("X = 1\n")
    todo = await grep(r"TODO|NotImplementedError|mock", "src/**/*.py", absent=True).run(ctx(tmp_path))
    assert not todo.passed and todo.details["matches"] == ["src/app.py:2: # TODO: overflow"]
    assert todo.evidence == "1 line(s) in 2 file(s) matching src/**/*.py match 'TODO|NotImplementedError|mock' " \
                            "(must be absent)"
    assert (await grep(r"def add\(", "src/*.py").run(ctx(tmp_path))).passed
    assert not (await grep(r"def sub\(", "src/*.py").run(ctx(tmp_path))).passed


async def test_command_with_scripted_input_and_expected_output(leak_guard: LeakGuard, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("name = input('name? ')\nprint(f'hello {name}')\n")
    check = command_succeeds([sys.executable, "main.py"], stdin="claude\n", expect_output=r"^name\? hello claude$")
    result = await check.run(ctx(tmp_path))
    assert result.passed, result
    wrong = await command_succeeds([sys.executable, "main.py"], stdin="V3\n", expect_output="hello claude").run(
        ctx(tmp_path))
    assert not wrong.passed and wrong.evidence == "exit 0; output does not match 'hello claude'"


async def test_glob_with_min_bytes_for_each_match(leak_guard: LeakGuard, tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("x" * 50)
    (tmp_path / "b.md").write_text("x")
    result = await glob_matches("*.md", 2, min_bytes=10).run(ctx(tmp_path))
    assert not result.passed and result.evidence == "2 match(es) for *.md (need >= 2); 1 under 10 bytes: b.md"
    (tmp_path / "b.md").write_text("x" * 10)
    assert (await glob_matches("*.md", 2, min_bytes=10).run(ctx(tmp_path))).passed


def test_the_check_types_in_a_pipeline_file_and_on_their_way_to_temporal(tmp_path: Path) -> None:
    temporal = pytest.importorskip("orchestrator.temporal")
    checks = [{"type": "pytest", "args": ["tests/"], "python": "python3", "timeout_s": 60},
              {"type": "grep", "pattern": "TODO", "files": "src/**/*.py", "absent": True},
              {"type": "command", "command": ["python3", "main.py"], "stdin": "x\n", "expect_output": "hello"},
              {"type": "glob", "pattern": "*.md", "min_count": 2, "min_bytes": 10}]
    pipeline = parse_pipeline({"phases": [{"name": "v", "prompt": "x", "checks": checks}]}, project_dir=tmp_path)
    spec = temporal.spec_from_pipeline(pipeline)
    again = spec.pipeline(tmp_path)
    assert [c.to_dict() for c in again.phases[0].checks] == [c.to_dict() for c in pipeline.phases[0].checks]
    with pytest.raises(PipelineError, match=r"checks\[0\]: key 'pattern' is not a valid regular expression"):
        parse_pipeline({"phases": [{"name": "v", "prompt": "x", "checks": [{"type": "grep", "pattern": "("}]}]},
                       project_dir=tmp_path)
