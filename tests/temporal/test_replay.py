"""Recorded workflow histories replay on today's workflow code (temporalio's ``Replayer``): a change that
would make a running workflow take another path on an upgraded worker fails here, not in production.

``v0-*`` were recorded by the workflow before the scheduling rules were shared with the local orchestrator
(``tests/temporal/histories/record.py`` run on that tree); ``v1-*`` by the shared rules; ``v2-*`` with the
run budget as a cap. ``v0`` of a pipeline without ``depends_on`` whose first phase failed still ran its
second phase: the replay must take that path (the ``IMPLICIT_ORDER`` patch), while a new run skips it as
the local orchestrator does. ``v1`` ran two uncapped phases at once under a run budget; ``v2`` runs each
alone (the ``RESERVATIONS`` patch). ``v3-race`` ran a race as one activity; ``v4-race`` runs each variant as
an activity and the merge as another (the ``RACE_ACTIVITIES`` patch)."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import anyio
import pytest

temporal_worker = pytest.importorskip("orchestrator.temporal._worker",
                                      reason="the temporal extra (temporalio) is not installed")
from temporalio.client import WorkflowHistory  # noqa: E402
from temporalio.converter import DataConverter  # noqa: E402
from temporalio.worker import Replayer  # noqa: E402

from orchestrator.temporal._requests import AttemptRequest, PipelineRequest  # noqa: E402
from orchestrator.temporal._workflow import PipelineWorkflow  # noqa: E402

pytestmark = pytest.mark.anyio

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def most_at_once(text: str) -> int:
    """The most attempts the history had running at the same time."""
    running = most = 0
    for event in json.loads(text)["events"]:
        if "activityTaskScheduledEventAttributes" in event:
            running += 1
            most = max(most, running)
        elif any(k in event for k in ("activityTaskCompletedEventAttributes", "activityTaskFailedEventAttributes")):
            running -= 1
    return most


def scheduled_phases(text: str) -> list[str]:
    events = json.loads(text)["events"]
    inputs = [e["activityTaskScheduledEventAttributes"]["input"]["payloads"][0]["data"]
              for e in events if "activityTaskScheduledEventAttributes" in e]
    return [json.loads(base64.b64decode(data))["phase"] for data in inputs]


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_recorded_history_replays(path: Path) -> None:
    text = await anyio.Path(path).read_text()
    replayer = Replayer(workflows=[PipelineWorkflow], workflow_runner=temporal_worker.workflow_runner())
    result = await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, text), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


def test_the_histories_show_the_old_and_the_new_rule() -> None:
    """What the two generations did with the same pipeline: the older ran ``b`` after ``a`` failed."""
    by_name = {p.stem: p.read_text() for p in HISTORIES}
    assert scheduled_phases(by_name["v0-implicit-order-failure"]) == ["a", "b"]
    assert scheduled_phases(by_name["v1-implicit-order-failure"]) == ["a"]
    assert scheduled_phases(by_name["v2-implicit-order-failure"]) == ["a"]
    assert sorted(scheduled_phases(by_name["v1-dag"])) == sorted(scheduled_phases(by_name["v0-dag"]))
    assert sorted(scheduled_phases(by_name["v2-dag"])) == sorted(scheduled_phases(by_name["v0-dag"]))
    assert (most_at_once(by_name["v1-dag"]), most_at_once(by_name["v2-dag"])) == (2, 1)


def activity_types(text: str) -> list[str]:
    return [e["activityTaskScheduledEventAttributes"]["activityType"]["name"] for e in json.loads(text)["events"]
            if "activityTaskScheduledEventAttributes" in e]


def test_the_race_histories_show_one_activity_then_one_per_variant() -> None:
    by_name = {p.stem: p.read_text() for p in HISTORIES}
    assert activity_types(by_name["v3-race"]) == ["claude-scope-phase-attempt"]
    assert activity_types(by_name["v4-race"]) == ["claude-scope-race-variant"] * 3 + ["claude-scope-race-end"]


def test_inputs_of_the_older_shape_decode_into_the_dataclasses() -> None:
    """An attempt scheduled by a workflow from before these fields (a retry delivered to an upgraded worker)
    and a workflow input recorded before the dataclasses: temporalio's converter reads both."""
    convert = DataConverter.default.payload_converter
    old_attempt = {"run_id": "r", "spec": {"data": {}}, "phase": "p", "attempt": 2, "heartbeat_timeout_s": 10.0}
    (attempt,) = convert.from_payloads(convert.to_payloads([old_attempt]), [AttemptRequest])
    assert attempt == AttemptRequest("r", {"data": {}}, "p", 2, 10.0, None, "", {})
    recorded = json.loads((HISTORIES[0]).read_text())["events"][0]["workflowExecutionStartedEventAttributes"]
    payload = json.loads(base64.b64decode(recorded["input"]["payloads"][0]["data"]))
    (request,) = convert.from_payloads(convert.to_payloads([payload]), [PipelineRequest])
    assert request.run_id == payload["run_id"] and request.plan == payload["plan"]


def test_recorded_results_decode_into_the_record_classes() -> None:
    """Every activity result and workflow result in the recorded histories (written as plain JSON objects,
    before the record classes) reads into ``AttemptRecord`` / ``RunRecord`` with nothing it had lost."""
    from orchestrator.temporal._requests import AttemptRecord, RunRecord

    convert = DataConverter.default.payload_converter
    seen = 0
    for path in HISTORIES:
        for event in json.loads(path.read_text())["events"]:
            done = event.get("activityTaskCompletedEventAttributes") or event.get(
                "workflowExecutionCompletedEventAttributes")
            if not done or "result" not in done:
                continue
            raw = json.loads(base64.b64decode(done["result"]["payloads"][0]["data"]))
            if "merge" in raw:  # a race's end
                continue
            kind = RunRecord if "phases" in raw else AttemptRecord
            (decoded,) = convert.from_payloads(convert.to_payloads([raw]), [kind])
            data = decoded.to_data() if isinstance(decoded, AttemptRecord) else dataclasses.asdict(decoded)
            # every key kept with its value; an unset extra (a variant's worktree: None) is left out, as absent
            lost = {k for k, v in raw.items() if data.get(k) != v and not (k in AttemptRecord._EXTRAS and not v)}
            assert not lost, (path.name, lost)
            seen += 1
    assert seen >= 20
