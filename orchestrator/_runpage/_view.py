"""What a run did, as plain data for its page: phases, attempts on a time axis, failures, cleanup, and each
attempt's transcript read back from its JSONL.

A view is built from the journal (``run_view``) or, for a run on Temporal, from the workflow's record
(``TemporalRunner.view``); the page (``_runpage``) only draws it. Every text that came from
outside (messages, tool inputs and outputs, stderr) is redacted here, once, and long texts are cut with
their full size kept, so a page of a 1,000,000-message phase stays small.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sdk_wrapper import redact

from .._journal import Journal, RunNotFoundError

#: an attempt's transcript shows its first and last items; the ones between are counted, not shown
HEAD_ITEMS = 200
TAIL_ITEMS = 50
#: a text longer than this is cut; the page says how long it was
BODY_CHARS = 4000
#: characters of bodies an attempt's transcript shows at most, in its head and in its tail: past these, items
#: keep their title and size only (a page of many long attempts stays one that a browser opens quickly)
HEAD_CHARS = 100_000
TAIL_CHARS = 50_000


@dataclass(frozen=True)
class Item:
    """One entry of a transcript: ``kind`` is text, thinking, tool_use, tool_result, system, result or other."""

    kind: str
    title: str
    body: str
    size: int
    is_error: bool = False

    @property
    def cut(self) -> bool:
        return self.size > len(self.body)


@dataclass(frozen=True)
class Transcript:
    head: tuple[Item, ...] = ()
    tail: tuple[Item, ...] = ()
    #: items between head and tail, not shown
    skipped: int = 0
    #: why there is none, or what went wrong reading it ("" when it was read whole)
    note: str = ""

    @property
    def count(self) -> int:
        return len(self.head) + self.skipped + len(self.tail)


@dataclass(frozen=True)
class CleanupView:
    """What ending an attempt's CLI tree took (``CleanupReport.to_dict`` as the journal keeps it)."""

    pids_ended: tuple[int, ...] = ()
    #: (target, signal name), as ``CleanupReport.signals_sent``
    signals_sent: tuple[tuple[int, str], ...] = ()
    sigkill_needed: bool = False
    leftover_pids: tuple[int, ...] = ()
    containment: str | None = None
    verified: bool = False
    exit_code: int | None = None

    @classmethod
    def of(cls, record: dict[str, Any] | None) -> CleanupView | None:
        if record is None:
            return None
        return cls(tuple(record.get("pids_ended") or ()), tuple((int(t), str(s)) for t, s in
                                                               record.get("signals_sent") or ()),
                   bool(record.get("sigkill_needed")), tuple(record.get("leftover_pids") or ()),
                   record.get("containment"), bool(record.get("verified")), record.get("exit_code"))


@dataclass(frozen=True)
class AttemptView:
    number: int
    started: float
    ended: float | None
    ok: bool | None
    kind: str | None = None
    message: str = ""
    cost_usd: float | None = None
    num_turns: int | None = None
    session_id: str | None = None
    query_id: str | None = None
    message_count: int | None = None
    stderr_tail: str = ""
    #: None when not recorded (a journal before it was, an attempt that never ended)
    cleanup: CleanupView | None = None
    transcript: Transcript = field(default_factory=Transcript)
    #: the prompt it was given (a learning retry's carries the feedback), as journalled
    prompt: str = ""
    #: its checks' results (when its query was ok), each a ``CheckResult.to_dict``
    checks: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class PhaseView:
    name: str
    status: str
    kind: str | None = None
    message: str = ""
    cost_usd: float | None = None
    num_turns: int | None = None
    duration_s: float | None = None
    #: an attempt's cost was never reported: cost_usd (the sum of the others') is a lower bound
    cost_lower_bound: bool = False
    #: what it could spend over its attempts (its cap, or its reservation of the run budget); None: no cap
    reserved_usd: float | None = None
    depends_on: tuple[str, ...] = ()
    description: str = ""
    checks: tuple[dict[str, Any], ...] = ()
    attempts: tuple[AttemptView, ...] = ()


@dataclass(frozen=True)
class RunView:
    run_id: str
    pipeline: str
    status: str
    note: str
    started: float
    ended: float | None
    #: when the view was made: the time axis of a running or interrupted run ends here
    made: float
    phases: tuple[PhaseView, ...]
    #: "journal FILE" or "temporal ADDRESS": where the record came from
    source: str = ""

    @property
    def cost_usd(self) -> float:
        return sum(p.cost_usd or 0.0 for p in self.phases)

    @property
    def cost_lower_bound(self) -> bool:
        return any(p.cost_lower_bound for p in self.phases)

    @property
    def num_turns(self) -> int:
        return sum(p.num_turns or 0 for p in self.phases)

    @property
    def finished(self) -> bool:
        return self.ended is not None

    @property
    def axis_end(self) -> float:
        ends = [a.ended or self.made for p in self.phases for a in p.attempts]
        return max([self.ended or self.made, *ends])


def cut(text: str, limit: int = BODY_CHARS) -> tuple[str, int]:
    """(redacted text at most ``limit`` characters, its full size)."""
    clean = redact(text)
    return clean[:limit], len(clean)


def _item(kind: str, title: str, text: str, *, is_error: bool = False) -> Item:
    body, size = cut(text)
    return Item(kind, redact(title)[:200], body, size, is_error)


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # tool result content blocks: [{"type": "text", "text": ...}, ...]
        parts = [b.get("text") if isinstance(b, dict) and isinstance(b.get("text"), str) else json.dumps(b)
                 for b in value]
        return "\n".join(str(p) for p in parts)
    return json.dumps(value, indent=1, default=str)


def _blocks(blocks: Any, role: str) -> Iterator[Item]:
    """Content blocks as the message log stores them (dataclasses as dicts: the block's type is its keys)."""
    if isinstance(blocks, str):
        yield _item("text", role, blocks)
        return
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict):
            continue
        if "tool_use_id" in block:
            yield _item("tool_result", "tool result", _text_of(block.get("content")),
                        is_error=bool(block.get("is_error")))
        elif "name" in block and "input" in block:
            yield _item("tool_use", str(block["name"]), json.dumps(block["input"], indent=1, default=str))
        elif "thinking" in block:
            yield _item("thinking", "thinking", str(block["thinking"]))
        elif "text" in block:
            yield _item("text", role, str(block["text"]))
        else:
            yield _item("other", role, json.dumps(block, default=str))


def items_of(record: dict[str, Any]) -> Iterator[Item]:
    """The transcript items of one logged message."""
    kind = record.get("type")
    if kind == "AssistantMessage":
        yield from _blocks(record.get("content"), "assistant")
    elif kind == "UserMessage":
        yield from _blocks(record.get("content"), "user")
    elif kind == "SystemMessage":
        data = record.get("data") or {}
        summary = {k: data[k] for k in ("model", "cwd", "tools", "permissionMode") if k in data}
        yield _item("system", f"system: {record.get('subtype', '')}", json.dumps(summary, default=str))
    elif kind == "ResultMessage":
        facts = {k: record.get(k) for k in ("subtype", "num_turns", "total_cost_usd", "duration_ms", "is_error")}
        yield _item("result", f"result: {record.get('subtype', '')}",
                    f"{json.dumps(facts)}\n\n{record.get('result') or ''}".rstrip(),
                    is_error=bool(record.get("is_error")))
    else:
        yield _item("other", str(kind or "message"), json.dumps(record, default=str))


def read_transcript(path: Path | None) -> Transcript:
    """An attempt's JSONL message log as items: the first ``HEAD_ITEMS`` and last ``TAIL_ITEMS``, read in
    one pass (memory stays small for any log size). A line that is not JSON (a kill -9 mid-line) is an
    ``other`` item saying so."""
    if path is None or not path.exists():
        return Transcript(note="no message log on this host" if path is not None else "no message log recorded")
    head: list[Item] = []
    tail: deque[Item] = deque(maxlen=TAIL_ITEMS)
    total = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                items: Iterable[Item] = items_of(record) if isinstance(record, dict) else ()
            except json.JSONDecodeError:
                items = (_item("other", f"line {number} is not JSON (cut short?)", line, is_error=True),)
            for item in items:
                total += 1
                if len(head) < HEAD_ITEMS:
                    head.append(item)
                else:
                    tail.append(item)
    return Transcript(_within(head, HEAD_CHARS), _within(tail, TAIL_CHARS), total - len(head) - len(tail))


def _within(items: Iterable[Item], budget: int) -> tuple[Item, ...]:
    """The items with their bodies cut so that together they hold at most ``budget`` characters."""
    out = []
    for item in items:
        body = item.body[:max(budget, 0)]
        budget -= len(body)
        out.append(item if len(body) == len(item.body) else replace(item, body=body))
    return tuple(out)


def run_view(journal: Journal, run_id: str, *, transcripts: bool = True) -> RunView:
    """The view of ``run_id`` from ``journal`` (KeyError if there is no such run). Works while the run is
    running (open attempts end at ``made``) and for a run whose orchestrator died (``interrupted``)."""
    run = next((r for r in journal.runs() if r["run_id"] == run_id), None)
    if run is None:
        raise RunNotFoundError(f"no run {run_id!r} in {journal.path}")
    made = time.time()
    plan = journal.pipeline_of(run_id)
    specs = {p["name"]: p for p in plan.get("phases", [])}
    rows = journal.phases(run_id)
    by_phase: dict[str, list[dict[str, Any]]] = {}
    for attempt in journal.attempts(run_id):
        by_phase.setdefault(attempt["name"], []).append(attempt)
    order = [*specs, *(name for name in rows if name not in specs)]
    phases = []
    for name in order:
        row, spec = rows.get(name, {}), specs.get(name, {})
        attempts = tuple(_attempt_view(a, journal.message_log(run_id, name, a["number"], create=False)
                                       if transcripts else None) for a in by_phase.get(name, []))
        phases.append(PhaseView(
            name=name, status=row.get("status", "pending"), kind=row.get("kind"),
            message=redact(row.get("message") or ""), cost_usd=row.get("cost_usd"), num_turns=row.get("num_turns"),
            duration_s=row.get("duration_s"), cost_lower_bound=bool(row.get("cost_lower_bound")),
            reserved_usd=row.get("reserved_usd"),
            depends_on=tuple(spec.get("depends_on", ())),
            description=spec.get("description", ""), checks=tuple(json.loads(row.get("evidence") or "[]")),
            attempts=attempts))
    return RunView(run_id=run_id, pipeline=plan.get("name", ""), status=run["status"], note=run["note"] or "",
                   started=run["started"], ended=run["ended"], made=made, phases=tuple(phases),
                   source=f"journal {journal.path}")


def _attempt_view(row: dict[str, Any], log: Path | None) -> AttemptView:
    return AttemptView(
        number=row["number"], started=row["started"], ended=row["ended"],
        ok=None if row["ok"] is None else bool(row["ok"]), kind=row["kind"], message=row["message"] or "",
        cost_usd=row["cost_usd"], num_turns=row.get("num_turns"), session_id=row["session_id"],
        query_id=row.get("query_id"), message_count=row.get("message_count"),
        stderr_tail=redact(row.get("stderr_tail") or ""), cleanup=CleanupView.of(row.get("cleanup")),
        prompt=redact(row.get("prompt") or ""), checks=tuple(json.loads(row.get("evidence") or "[]")),
        transcript=read_transcript(log) if log is not None else Transcript(note="transcripts not read"))
