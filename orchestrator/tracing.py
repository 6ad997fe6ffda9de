"""OpenTelemetry traces of runs (the ``otel`` extra: ``pip install 'claude-scope[otel]'``).

    from orchestrator.tracing import Tracing
    Orchestrator(observers=[Tracing()])         # spans go to the global TracerProvider you configured

A run is a span; each phase a child span; each attempt a child of its phase; each query (from the CLI's
spawn to the end of its tree) a child of its attempt. Attributes carry the run id, phase, attempt, query
id, session id, failure kind, cost, turns, the CLI's pid and the pids its cleanup ended; a retry is an event
on the phase, each signal the cleanup sent an event on the query. A phase that did not succeed, and a run
that failed, was interrupted or crashed, has status ERROR with the reason. A skipped phase is a span of no
length, so a trace shows every phase of the pipeline.

``claude-scope run --otel`` sets up a provider from the standard ``OTEL_*`` variables (``configure``).
This module imports OpenTelemetry; nothing else in claude-scope imports it or this module.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode, TracerProvider

from sdk_wrapper import QueryOutcome, SpawnedCLI

from ._model import PhaseOutcome, Pipeline, RunReport
from ._observe import RunObserver
from ._status import PhaseStatus

__all__ = ["Tracing", "configure"]

_P = "claude_scope."


class Tracing(RunObserver):
    """Spans for every run the orchestrator it observes runs. ``tracer_provider``: default, the global one."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("claude-scope", tracer_provider=tracer_provider)
        self._runs: dict[str, Span] = {}
        self._phases: dict[tuple[str, str], Span] = {}
        self._attempts: dict[tuple[str, str], Span] = {}
        self._queries: dict[tuple[str, str], Span] = {}

    def _child(self, name: str, parent: Span | None, attributes: dict[str, Any]) -> Span:
        context = trace.set_span_in_context(parent) if parent is not None else None
        return self.tracer.start_span(name, context=context, attributes=attributes)

    def run_started(self, run_id: str, pipeline: Pipeline, kept: tuple[str, ...]) -> None:
        self._runs[run_id] = self.tracer.start_span("claude-scope run", attributes={
            _P + "run_id": run_id, _P + "pipeline": pipeline.name, _P + "phases": len(pipeline.phases),
            _P + "kept_phases": list(kept), _P + "max_parallel": pipeline.max_parallel})

    def phase_started(self, run_id: str, name: str) -> None:
        self._phases[run_id, name] = self._child(f"phase {name}", self._runs.get(run_id),
                                                 {_P + "run_id": run_id, _P + "phase": name})

    def attempt_started(self, run_id: str, name: str, number: int) -> None:
        phase = self._phases.get((run_id, name))
        if phase is not None and number > 1:
            phase.add_event("retry", {_P + "attempt": number})
        self._attempts[run_id, name] = self._child(f"attempt {number}", phase, {
            _P + "run_id": run_id, _P + "phase": name, _P + "attempt": number})

    def spawned(self, run_id: str, name: str, cli: SpawnedCLI) -> None:
        self._queries[run_id, name] = self._child("query", self._attempts.get((run_id, name)), {
            _P + "run_id": run_id, _P + "phase": name, _P + "query_id": cli.query_id, _P + "cli_pid": cli.pid})

    def attempt_ended(self, run_id: str, name: str, number: int, outcome: QueryOutcome) -> None:
        failure, cleanup = outcome.failure, outcome.cleanup
        facts: dict[str, Any] = {_P + "ok": outcome.ok, _P + "message_count": outcome.message_count}
        for key, value in (("query_id", outcome.query_id), ("session_id", outcome.session_id),
                           ("cost_usd", outcome.cost_usd), ("num_turns", outcome.num_turns),
                           ("failure_kind", None if failure is None else failure.kind.value)):
            if value is not None:
                facts[_P + key] = value
        query = self._queries.pop((run_id, name), None)
        if query is not None:
            query.set_attributes({**facts, _P + "pids_ended": list(cleanup.pids_ended),
                                  _P + "sigkill_needed": cleanup.sigkill_needed,
                                  _P + "leftover_pids": list(cleanup.leftover_pids),
                                  _P + "cleanup_verified": cleanup.verified,
                                  _P + "containment": "" if cleanup.containment is None else cleanup.containment.value})
            for target, signal in cleanup.signals_sent:
                query.add_event("cleanup signal", {_P + "target": target, _P + "signal": signal})
            _end(query, outcome.ok, None if failure is None else failure.kind.value)
        attempt = self._attempts.pop((run_id, name), None)
        if attempt is not None:
            attempt.set_attributes(facts)
            _end(attempt, outcome.ok, None if failure is None else failure.kind.value)

    def phase_ended(self, run_id: str, outcome: PhaseOutcome) -> None:
        span = self._phases.pop((run_id, outcome.name), None)
        if span is None:  # skipped (or kept by a resume): a span of no length, so the trace shows every phase
            span = self._child(f"phase {outcome.name}", self._runs.get(run_id),
                               {_P + "run_id": run_id, _P + "phase": outcome.name})
        span.set_attributes({_P + "status": outcome.status.value, _P + "attempts": outcome.attempts,
                             **({_P + "failure_kind": outcome.kind.value} if outcome.kind is not None else {}),
                             **({_P + "cost_usd": outcome.cost_usd} if outcome.cost_usd is not None else {}),
                             _P + "cost_lower_bound": outcome.cost_lower_bound,
                             **({_P + "num_turns": outcome.num_turns} if outcome.num_turns is not None else {})})
        if outcome.status is PhaseStatus.SKIPPED:
            span.set_attribute(_P + "skip_reason", outcome.message)
            span.end()
        else:
            _end(span, outcome.succeeded, outcome.kind.value if outcome.kind is not None else outcome.status.value)

    def run_ended(self, run_id: str, report: RunReport | None, error: str = "") -> None:
        # an interrupted run leaves spans open (a cancelled phase ends in the journal, not here): end them
        why = error or "the run ended before this span did"
        for spans in (self._queries, self._attempts, self._phases):
            for key in [k for k in spans if k[0] == run_id]:
                _end(spans.pop(key), False, why)
        span = self._runs.pop(run_id, None)
        if span is None:
            return
        if report is not None:
            span.set_attributes({_P + "cost_usd": report.cost_usd, _P + "ok": report.ok,
                                 _P + "cost_lower_bound": report.cost_lower_bound,
                                 _P + "budget_exhausted": report.budget_exhausted,
                                 _P + "orphans_ended": list(report.orphans_ended)})
            _end(span, report.ok, "phases did not succeed: " + ", ".join(o.name for o in report.failed))
        else:
            _end(span, False, error)


def _end(span: Span, ok: bool, why: str | None) -> None:
    if not ok:
        span.set_status(Status(StatusCode.ERROR, why or "failed"))
    span.end()


def configure() -> tuple[Tracing, SdkTracerProvider]:
    """For ``claude-scope run --otel``: a TracerProvider (resource ``service.name`` from ``OTEL_SERVICE_NAME``,
    default ``claude-scope``) exporting in batches to OTLP over HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``, default
    ``http://localhost:4318``), or to stderr with ``OTEL_TRACES_EXPORTER=console``; set as the global one.
    Returns the observer and the provider: ``shutdown()`` the provider before exit, to flush."""
    exporter: SpanExporter
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "console":
        exporter = ConsoleSpanExporter(out=sys.stderr)
    else:  # loaded only when chosen: it brings protobuf and requests
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = SdkTracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME",
                                                                                          "claude-scope")}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return Tracing(provider), provider
