"""Retries that learn: a failed check is retried when the phase has ``feedback``, and each retry's prompt
carries what failed before. The stand-in agent reacts to what it is told (``when_prompt_contains``): it
writes a too-short file unless its prompt carries the feedback, so the phase passes on its second attempt
because of the feedback, and only then."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Orchestrator, Phase, PhaseKind, PhaseStatus, PipelineError, parse_pipeline
from orchestrator._feedback import HEADER, MAX_BLOCK, feedback_block
from orchestrator._runpage import render_run_page, run_view
from sdk_wrapper.testing.pytest_plugin import LeakGuard

pytestmark = pytest.mark.anyio


def writes(content: str) -> dict[str, Any]:
    return {"steps": [{"tool": {"name": "Write", "input": {"file_path": "notes.md", "content": content}}}]}


#: too short at first; told what failed, it writes enough
LEARNS = {**writes("tiny"), "when_prompt_contains": {HEADER: writes("long enough notes, at last")}}
_WAITS = {"initial_wait_s": 0, "max_wait_s": 0, "jitter_s": 0}


def pipeline_data(retry: dict[str, Any], secret: str = "") -> dict[str, Any]:
    return {"phases": [{"name": "notes", "prompt": f"write the notes {secret}".strip(), "scenario": LEARNS,
                        "retry": {**_WAITS, **retry},
                        "checks": [{"type": "file_exists", "path": "notes.md", "min_bytes": 20}]}]}


async def run(tmp_path: Path, cli: Path, data: dict[str, Any], run_id: str = "r") -> Orchestrator:
    orch = Orchestrator(tmp_path / "runs.db", project_dir=tmp_path, cli_path=cli)
    await orch.run(parse_pipeline(data, project_dir=tmp_path, simulate=True), run_id=run_id)
    return orch


async def test_a_failed_check_is_retried_with_what_failed(leak_guard: LeakGuard, standin_cli: Path,
                                                          tmp_path: Path) -> None:
    with await run(tmp_path, standin_cli, pipeline_data({"attempts": 3, "feedback": True})) as orch:
        phase = orch.journal.phases("r")["notes"]
        attempts = [a for a in orch.journal.attempts("r") if a["name"] == "notes"]
        page = render_run_page(run_view(orch.journal, "r"))
    # the page says why attempt 1 was retried, though its query was ok, and marks the prompt with feedback
    assert "1: failed (validation_failed: 1 check(s) failed; the CLI&#x27;s result was ok)" in page
    assert "2: ok" in page and "with feedback)" in page
    assert phase["status"] == "succeeded" and phase["attempts"] == 2
    assert phase["cost_usd"] == pytest.approx(2 * 0.0123)  # both attempts
    first, second = attempts
    assert first["prompt"] == "write the notes" and HEADER not in first["prompt"]
    assert second["prompt"].startswith("write the notes\n\n" + HEADER)
    assert "Attempt 1 ended as validation_failed" in second["prompt"]
    assert "file_exists:notes.md: notes.md: 4 bytes (need >= 20)" in second["prompt"]  # the check's evidence
    assert [c["passed"] for c in json.loads(first["evidence"])] == [False]
    assert [c["passed"] for c in json.loads(second["evidence"])] == [True]
    assert (tmp_path / "notes.md").read_text() == "long enough notes, at last"


async def test_without_feedback_a_failed_check_is_final(leak_guard: LeakGuard, standin_cli: Path,
                                                        tmp_path: Path) -> None:
    with await run(tmp_path, standin_cli, pipeline_data({"attempts": 3})) as orch:
        phase = orch.journal.phases("r")["notes"]
    assert (phase["status"], phase["kind"], phase["attempts"]) == ("failed", PhaseKind.VALIDATION_FAILED, 1)


async def test_a_resume_rebuilds_the_feedback_from_the_journal(leak_guard: LeakGuard, standin_cli: Path,
                                                               tmp_path: Path) -> None:
    """One attempt allowed: the run fails on the check. The resume's first attempt is told what failed, as a
    retry in the first run would have been, from what the journal kept; it then passes."""
    data = pipeline_data({"attempts": 1, "feedback": True})
    with await run(tmp_path, standin_cli, data) as orch:
        assert orch.journal.phases("r")["notes"]["status"] == "failed"
        report = await orch.resume("r", parse_pipeline(data, project_dir=tmp_path, simulate=True))
        second = [a for a in orch.journal.attempts("r") if a["name"] == "notes"][1]
    assert report.phases["notes"].status is PhaseStatus.SUCCEEDED and report.phases["notes"].attempts == 2
    assert HEADER in second["prompt"] and "notes.md: 4 bytes (need >= 20)" in second["prompt"]


async def test_the_feedback_is_redacted_and_bounded(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    secret = "sk-ant-api03-" + "s" * 40
    noisy = {"type": "command", "command": ["sh", "-c", f"echo {secret}; yes noise | head -n 5000; exit 1"]}
    data = pipeline_data({"attempts": 2, "feedback": True})
    data["phases"][0]["checks"] = [noisy]
    with await run(tmp_path, standin_cli, data) as orch:
        second = [a for a in orch.journal.attempts("r") if a["name"] == "notes"][1]
    block = second["prompt"].split("\n\n", 1)[1]
    assert secret not in second["prompt"] and "noise" in block and len(block) <= MAX_BLOCK
    assert len(feedback_block(1, "x", "m" * 10**6, "e" * 10**6, [{"passed": False, "evidence": "v" * 10**6}])) \
        <= MAX_BLOCK


def test_retry_keys_in_a_pipeline_file(tmp_path: Path) -> None:
    pipeline = parse_pipeline({"phases": [{"name": "a", "prompt": "x", "retry": {
        "attempts": 2, "kinds": ["max_turns", "rate_limited"], "feedback": True}}]}, project_dir=tmp_path)
    phase = pipeline.phases[0]
    assert phase.feedback and phase.retry is not None and {k.value for k in phase.retry.kinds or ()} == {
        "max_turns", "rate_limited"}
    with pytest.raises(PipelineError, match=r"phase 'a'\.retry: key 'kinds' must list failure kinds.*'maxturns'"):
        parse_pipeline({"phases": [{"name": "a", "prompt": "x", "retry": {"kinds": ["maxturns"]}}]},
                       project_dir=tmp_path)
    with pytest.raises(PipelineError, match="feedback needs a retry policy"):
        Phase("a", "x", feedback=True)
