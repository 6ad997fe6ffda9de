"""OpenTelemetry spans of runs (the otel extra): the span tree and its attributes from real runs on the
stand-in CLI, read back from the SDK's in-memory exporter; the CLI's ``--otel`` exporting over OTLP/HTTP to a
loopback collector; and nothing of OpenTelemetry imported without ``--otel``."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from orchestrator import Pipeline
from orchestrator.tracing import Tracing
from sdk_wrapper import RetryPolicy
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import TWO_PHASES, until

from .test_engine import orchestrator_in, phase, write

pytestmark = pytest.mark.anyio


@pytest.fixture
def spans() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing(provider), exporter
    provider.shutdown()


def _by_name(finished: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for span in finished:
        out.setdefault(span.name, []).append(span)
    return out


def _parent(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


async def test_a_run_is_a_tree_of_spans(leak_guard: LeakGuard, tmp_path: Path, standin_cli: Path,
                                        spans: tuple[Tracing, InMemorySpanExporter]) -> None:
    tracing, exporter = spans
    with orchestrator_in(tmp_path, standin_cli, [tracing]) as orch:
        project = orch.project_dir
        report = await orch.run(Pipeline([
            phase("write", write("a.md", "text"), project),
            phase("api", "overloaded", project, depends_on=("write",), retry=RetryPolicy(attempts=2, wait=False)),
            phase("stuck", "hang_ignore_term", project, depends_on=("write",), timeout_s=0.5),
            phase("after", "ok", project, depends_on=("api",)),
        ], max_parallel=2, name="traced"), run_id="t1")
    assert not report.ok
    found = _by_name(exporter.get_finished_spans())
    (run,) = found["claude-scope run"]
    assert run.attributes is not None and run.attributes["claude_scope.run_id"] == "t1"
    assert run.attributes["claude_scope.pipeline"] == "traced" and run.status.status_code is StatusCode.ERROR
    assert "api" in (run.status.description or "") and "stuck" in (run.status.description or "")
    phases = {name: spans[0] for name, spans in found.items() if name.startswith("phase ")}
    assert all(len(found[name]) == 1 for name in phases)
    assert set(phases) == {"phase write", "phase api", "phase stuck", "phase after"}
    assert all(_parent(span) == _id(run) for span in phases.values())

    ok = phases["phase write"]
    assert ok.status.status_code is StatusCode.UNSET and ok.attributes is not None
    assert ok.attributes["claude_scope.status"] == "succeeded" and ok.attributes["claude_scope.num_turns"] == 2

    api = phases["phase api"]
    assert api.status.status_code is StatusCode.ERROR and api.status.description == "api_error"
    assert [(e.name, dict(e.attributes or {})) for e in api.events] == [("retry", {"claude_scope.attempt": 2})]
    attempts = [s for s in found["attempt 1"] + found["attempt 2"] if _parent(s) == _id(api)]
    assert sorted(s.name for s in attempts) == ["attempt 1", "attempt 2"]
    assert all(s.attributes is not None and s.attributes["claude_scope.failure_kind"] == "api_error"
               for s in attempts)

    queries = {_parent(q): q for q in found["query"]}
    first_query = queries[_id(attempts[0])]
    assert first_query.attributes is not None and first_query.attributes["claude_scope.query_id"]
    assert first_query.attributes["claude_scope.cli_pid"] > 0 and first_query.attributes["claude_scope.session_id"]

    stuck = phases["phase stuck"]
    assert stuck.attributes is not None and stuck.attributes["claude_scope.status"] == "timed_out"
    (stuck_attempt,) = [s for s in found["attempt 1"] if _parent(s) == _id(stuck)]
    stuck_query = queries[_id(stuck_attempt)]
    assert stuck_query.attributes is not None and stuck_query.attributes["claude_scope.failure_kind"] == "timeout"
    assert stuck_query.attributes["claude_scope.leftover_pids"] == ()
    assert stuck_query.attributes["claude_scope.pids_ended"]  # the CLI that ignored SIGTERM was ended
    assert [e.name for e in stuck_query.events] and {e.name for e in stuck_query.events} == {"cleanup signal"}

    after = phases["phase after"]  # skipped: a span of no length, so the trace shows every phase
    assert after.attributes is not None and after.attributes["claude_scope.status"] == "skipped"
    assert after.attributes["claude_scope.skip_reason"] == "dependency 'api' failed"


async def test_an_interrupted_run_ends_its_open_spans(leak_guard: LeakGuard, tmp_path: Path, standin_cli: Path,
                                                      spans: tuple[Tracing, InMemorySpanExporter]) -> None:
    tracing, exporter = spans
    with orchestrator_in(tmp_path, standin_cli, [tracing]) as orch:
        project = orch.project_dir
        async with anyio.create_task_group() as tg:
            tg.start_soon(orch.run, Pipeline([phase("waits", "hang", project)]), "t2")
            await until(lambda: orch.journal.live_processes(), 30)
            tg.cancel_scope.cancel()
    found = _by_name(exporter.get_finished_spans())
    (run,) = found["claude-scope run"]
    assert run.status.status_code is StatusCode.ERROR and "cancelled" in (run.status.description or "")
    for name in ("phase waits", "attempt 1", "query"):
        (span,) = found[name]
        assert span.status.status_code is StatusCode.ERROR and span.end_time is not None


# -- the CLI ---------------------------------------------------------------------------------------------
class _Collector(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """A loopback OTLP/HTTP endpoint that keeps what it is sent."""
    received: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join()


#: what the otel extra brings; the OpenTelemetry *API* is imported by the SDK's own dependency (mcp) anyway
_EXTRA = ("orchestrator.tracing", "opentelemetry.sdk", "opentelemetry.exporter")


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None,
         prelude: str = "") -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh interpreter; it prints, last, which modules of the otel extra it imported."""
    code = (f"{prelude}\nimport sys\nfrom orchestrator._cli import main\nrc = main(sys.argv[1:])\n"
            f"print('imported:', sorted(m for m in sys.modules if m.startswith({_EXTRA!r})))\nsys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_cli_exports_spans_over_otlp_http(leak_guard: LeakGuard, tmp_path: Path,
                                          collector: tuple[str, list[tuple[str, str, bytes]]]) -> None:
    endpoint, received = collector
    (tmp_path / "p.toml").write_text(TWO_PHASES.format(second="exit_error"))
    done = _cli(tmp_path, "run", "p.toml", "--simulate", "--run-id", "otlp", "--otel",
                env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "pipeline-test"})
    assert done.returncode == 1, done.stderr[-2000:]  # the second phase failed, as scripted
    assert received, "nothing reached the collector"
    assert {(path, kind) for path, kind, _ in received} == {("/v1/traces", "application/x-protobuf")}
    names, services = [], set()
    for _, _, body in received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            services |= {a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"}
            names += [s.name for scope in resource_spans.scope_spans for s in scope.spans]
    assert services == {"pipeline-test"}
    assert sorted(names) == sorted(["claude-scope run", "phase first", "phase second", "attempt 1", "attempt 1",
                                    "query", "query"])


def test_nothing_of_opentelemetry_is_imported_without_otel(leak_guard: LeakGuard, tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(TWO_PHASES.format(second="ok"))
    done = _cli(tmp_path, "run", "p.toml", "--simulate")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "imported: []"
    root = Path(__file__).parents[2]
    importers = [str(f.relative_to(root)) for package in ("sdk_wrapper", "orchestrator", "migration")
                 for f in (root / package).rglob("*.py")
                 if re.search(r"^\s*(from|import) opentelemetry", f.read_text(), re.MULTILINE)]
    assert importers == ["orchestrator/tracing.py"]


def test_otel_without_the_extra_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(TWO_PHASES.format(second="ok"))
    done = _cli(tmp_path, "run", "p.toml", "--simulate", "--otel",
                prelude="import sys; sys.modules['opentelemetry.sdk'] = None")  # as if the extra were missing
    assert done.returncode == 2
    assert "--otel needs the otel extra: pip install 'claude-scope[otel]'" in done.stderr
    assert not (tmp_path / ".claude-scope").exists()  # refused before anything was started or journalled
