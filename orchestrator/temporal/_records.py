"""The plain records that come back from a worker and live in workflow history: a phase outcome as JSON
(``outcome_record``) and back (``outcome_from_record``), the run page's view and the ``RunReport`` of a
workflow's status, and the retry rules the workflow applies to a record.

Kept apart from ``_spec`` (what travels out, which imports the SDKs' options and the pipeline file's
parser) so that the client's reading commands (``status``, ``report``, ``cancel``) and the workflow's
sandbox import no SDK. Nothing here imports ``temporalio``.
"""

from __future__ import annotations

import math
import socket
import time
from pathlib import Path
from typing import Any

from sdk_wrapper import FailureKind, redact

from .._evidence import CheckResult
from .._feedback import told_after
from .._journal import RESULT_KEPT, STDERR_KEPT
from .._model import PhaseOutcome, RunReport, parse_kind
from .._runpage import AttemptView, CleanupView, PhaseView, RunView, Transcript, read_transcript
from .._status import PhaseKind, PhaseStatus
from ._requests import AttemptRecord, RunRecord

#: how much of an attempt's prompt its record in history keeps (the host's journal keeps more)
PROMPT_IN_HISTORY = 20_000


def outcome_record(outcome: PhaseOutcome, *, host: str = "", message_log: str = "", prompt: str = "") -> AttemptRecord:
    """A phase outcome as history keeps it: small, no message bodies, no live objects; the attempt's query
    facts (its cleanup, a redacted stderr tail of at most 2,000 characters) for the run page."""
    query = outcome.query
    failure = None if query is None else query.failure
    return AttemptRecord(
        name=outcome.name, status=outcome.status.value, attempts=outcome.attempts,
        cost_usd=outcome.cost_usd, cost_lower_bound=outcome.cost_lower_bound, duration_s=outcome.duration_s,
        result_text=None if outcome.result_text is None else redact(outcome.result_text)[:RESULT_KEPT],
        kind=None if outcome.kind is None else outcome.kind.value, message=outcome.message,
        session_id=outcome.session_id, num_turns=outcome.num_turns,
        checks=[c.to_dict() for c in outcome.checks],
        retryable=failure is not None and failure.retryable,
        side_effects=failure is not None and failure.side_effects,
        host=host, message_log=message_log, prompt=redact(prompt)[:PROMPT_IN_HISTORY],
        query_ok=query is not None and query.ok,
        query_id=None if query is None else query.query_id,
        message_count=None if query is None else query.message_count,
        stderr_tail="" if failure is None else redact(failure.stderr_tail)[-STDERR_KEPT:],
        cleanup=None if query is None else query.cleanup.to_dict(),
    )


def outcome_from_record(record: dict[str, Any]) -> PhaseOutcome:
    status = PhaseStatus(record["status"])
    cost = record.get("cost_usd")
    return PhaseOutcome(
        name=record["name"], status=status, attempts=int(record.get("attempts") or 0),
        cost_usd=None if cost is None else float(cost), duration_s=float(record.get("duration_s") or 0.0),
        kind=parse_kind(record.get("kind"), status), message=str(record.get("message") or ""),
        session_id=record.get("session_id"), num_turns=record.get("num_turns"), from_journal=True,
        cost_lower_bound=bool(record.get("cost_lower_bound")), result_text=record.get("result_text"),
        checks=tuple(CheckResult.from_dict(c) for c in record.get("checks") or ()),
    )


def run_view_from_record(record: RunRecord, *, state: str, started: float, ended: float | None,
                         source: str) -> RunView:
    """The run page's view of a workflow's ``status`` record: each phase's attempts as the workflow timed
    them (``history``), transcripts read from the worker's message log where it is on this host."""
    order = record.order or list(record.phases)
    plan = {p["name"]: p for p in record.plan.get("phases", [])}
    here = socket.gethostname()
    phases = []
    for name in order:
        phase = record.phases[name]
        attempts = []
        for entry in phase.get("history") or []:
            log = entry.get("message_log") or ""
            transcript = (read_transcript(Path(log)) if log and entry.get("host") == here else
                          Transcript(note=f"message log on host {entry.get('host') or '?'}: {log or '-'}"))
            attempts.append(AttemptView(
                number=int(entry["number"]), started=float(entry["started"]),
                ended=None if entry.get("ended") is None else float(entry["ended"]),
                ok=None if entry.get("ended") is None else bool(entry.get("query_ok")), kind=entry.get("kind"),
                message="" if entry.get("query_ok") else str(entry.get("message") or ""),
                cost_usd=entry.get("cost_usd"), num_turns=entry.get("num_turns"), session_id=entry.get("session_id"),
                query_id=entry.get("query_id"), message_count=entry.get("message_count"),
                stderr_tail=str(entry.get("stderr_tail") or ""), cleanup=CleanupView.of(entry.get("cleanup")),
                prompt=str(entry.get("prompt") or ""), checks=tuple(entry.get("checks") or ()),
                transcript=transcript))
        spec = plan.get(name, {})
        phases.append(PhaseView(
            name=name, status=str(phase["status"]), kind=phase.get("kind"),
            message=redact(str(phase.get("message") or "")),
            cost_usd=phase.get("cost_usd"), num_turns=phase.get("num_turns"), duration_s=phase.get("duration_s"),
            cost_lower_bound=bool(phase.get("cost_lower_bound")), reserved_usd=phase.get("reserved_usd"),
            depends_on=tuple(spec.get("depends_on", ())), description=str(spec.get("description", "")),
            checks=tuple(phase.get("checks") or ()), attempts=tuple(attempts)))
    return RunView(run_id=record.run_id, pipeline=record.name, status=state, note="",
                   started=started, ended=ended, made=time.time(), phases=tuple(phases), source=source)


def report_from_record(record: RunRecord) -> RunReport:
    """The workflow's result (or its status) as the same ``RunReport`` the local orchestrator returns."""
    # in pipeline order (the payload converter writes JSON objects with sorted keys)
    order = record.order or list(record.phases)
    phases = {name: outcome_from_record(record.phases[name]) for name in order}
    return RunReport(run_id=record.run_id, phases=phases, cost_usd=float(record.cost_usd or 0.0),
                     cost_lower_bound=any(o.cost_lower_bound for o in phases.values()),
                     duration_s=float(record.duration_s or 0.0), budget_exhausted=record.budget_exhausted)


def should_retry(retry: dict[str, Any] | None, record: dict[str, Any], attempt: int) -> bool:
    """The local phase's retry rule (``_execute.run_phase``'s ``again``) on a phase record: a failed check
    only when the phase learns from feedback; a failed query as ``RetryPolicy.should_retry`` decides."""
    if retry is None or attempt >= int(retry["attempts"]) or record["status"] == PhaseStatus.SUCCEEDED.value:
        return False
    kind = record.get("kind")
    if kind == PhaseKind.VALIDATION_FAILED.value:
        return bool(retry.get("feedback"))
    if kind in (None, FailureKind.CANCELLED.value):
        return False
    if record.get("side_effects") and not retry.get("after_side_effects", False):
        return False
    kinds = retry.get("kinds")
    return kind in kinds if kinds is not None else bool(record.get("retryable"))


def attempt_feedback(retry: dict[str, Any] | None, record: dict[str, Any], attempt: int) -> str:
    """What the next attempt is told of this one, when the phase learns (see ``_feedback``); else nothing."""
    if retry is None or not retry.get("feedback"):
        return ""
    return told_after(attempt, query_ok=bool(record.get("query_ok")), kind=record.get("kind"),
                      message=str(record.get("message") or ""), stderr_tail=str(record.get("stderr_tail") or ""),
                      checks=record.get("checks") or ())


def backoff_s(retry: dict[str, Any], attempt: int, random01: float) -> float:
    """``RetryPolicy``'s wait (tenacity's exponential wait, capped, plus a uniform jitter), with the
    workflow's random."""
    if not retry.get("wait", True):
        return 0.0
    exponential = float(retry["initial_wait_s"]) * 2 ** (attempt - 1)
    base = float(retry["max_wait_s"]) if not math.isfinite(exponential) else exponential
    return min(base, float(retry["max_wait_s"])) + random01 * float(retry["jitter_s"])
