"""Small holes found by attack: bytes that are not UTF-8, a secret cut in half by the stderr tail, and numbers
that are not limits (``nan``, ``inf``, negative budgets) in the Python API and in pipeline files."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import Phase, Pipeline, PipelineError, load_pipeline
from sdk_wrapper import FailureKind, QueryLimits, RetryPolicy, run_query
from sdk_wrapper._redact import redact_tail
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import SDKS, sdk_options

SECRET = "sk-ant-" + "Q" * 40


@pytest.mark.anyio
@pytest.mark.parametrize("sdk", SDKS)
async def test_a_json_line_that_is_not_utf8_is_invalid_output(sdk: str, leak_guard: LeakGuard, standin_cli: Path,
                                                              tmp_path: Path) -> None:
    scenario = {"steps": [{"raw": '{"type": "assistant", "text": "caf\udce9"}'}]}
    outcome = await run_query("go", sdk_options(sdk, scenario, tmp_path), cli_path=standin_cli)
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.INVALID_OUTPUT, outcome.failure
    assert "not UTF-8" in str(outcome.failure.cause)


@pytest.mark.anyio
async def test_a_secret_cut_by_the_stderr_tail_is_not_shown_in_part(leak_guard: LeakGuard, standin_cli: Path,
                                                                    tmp_path: Path) -> None:
    stderr = "prefix-" * 20 + SECRET + "\n" + "t" * 60
    scenario = {"stderr": stderr, "result": None, "exit_code": 1}
    outcome = await run_query("go", sdk_options("code-sdk", scenario, tmp_path), cli_path=standin_cli,
                              limits=QueryLimits(stderr_tail_bytes=100))
    assert outcome.failure is not None
    tail = outcome.failure.stderr_tail
    assert "QQQQQQQQ" not in tail and tail.strip() == "t" * 60


def test_redact_tail_redacts_whole_lines_before_cutting() -> None:
    raw = ("x" * 30 + " token=" + "A" * 30 + "\nlast line\n").encode()
    # Cut to 40 characters after redaction: the partial first line is dropped, not shown in part.
    assert redact_tail(raw, 40, cut=False) == "last line\n"
    assert redact_tail(raw, 1000, cut=False).count("[REDACTED]") == 1
    assert "A" * 8 not in redact_tail(raw[20:], 1000, cut=True)  # a buffer that lost its head: line dropped
    assert redact_tail(b"only one line without end", 10, cut=False) == "ithout end"  # the only line is kept


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 0.0])
def test_limits_must_be_finite_and_positive(value: float) -> None:
    with pytest.raises(ValueError, match="finite positive"):
        QueryLimits(timeout_s=value)
    with pytest.raises(ValueError, match="finite positive"):
        QueryLimits(max_cost_usd=value)
    with pytest.raises(PipelineError, match="finite positive"):
        Phase("a", "p", timeout_s=value)
    with pytest.raises(PipelineError, match="finite positive"):
        Pipeline([Phase("a", "p")], max_cost_usd=value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_retry_waits_must_be_finite(value: float) -> None:
    with pytest.raises(ValueError, match="finite number >= 0"):
        RetryPolicy(initial_wait_s=value)


@pytest.mark.parametrize(("text", "expected"), [
    ("[[phases]]\nname = 'a'\nprompt = 'p'\ntimeout_s = nan\n", "key 'timeout_s' must be a finite positive"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\ntimeout_s = inf\n", "key 'timeout_s' must be a finite positive"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\nidle_timeout_s = -inf\n", "key 'idle_timeout_s' must be a finite"),
    ("[pipeline]\nmax_cost_usd = nan\n[[phases]]\nname = 'a'\nprompt = 'p'\n", "[pipeline]: key 'max_cost_usd'"),
    ("[pipeline]\nmax_cost_usd = -1.0\n[[phases]]\nname = 'a'\nprompt = 'p'\n", "[pipeline]: key 'max_cost_usd'"),
    ("[pipeline]\nmax_parallel = 0\n[[phases]]\nname = 'a'\nprompt = 'p'\n", "[pipeline]: key 'max_parallel'"),
    ("[defaults]\nmax_cost_usd = nan\n[[phases]]\nname = 'a'\nprompt = 'p'\n", "key 'max_cost_usd' must be"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\nmax_turns = 0\n", "key 'max_turns' must be a finite positive"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\nretry = {max_wait_s = nan}\n", "retry: key 'max_wait_s' must be"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\nchecks = [{type = 'command', command = 'true', timeout_s = inf}]\n",
     "key 'timeout_s' must be a finite positive"),
    ("[[phases]]\nname = 'a'\nprompt = 'p'\nchecks = [{type = 'glob', pattern = '*', min_count = -1}]\n",
     "key 'min_count' must be a finite non-negative"),
])
def test_pipeline_file_numbers_must_be_limits(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    assert expected in str(info.value)
    run = subprocess.run([sys.executable, "-m", "orchestrator._cli", "run", str(path), "--simulate"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 2 and expected in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / ".claude-scope" / "runs.db").exists()  # refused before any run was recorded
