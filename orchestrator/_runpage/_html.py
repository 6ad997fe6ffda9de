"""A run's page: one self-contained HTML file (inline CSS and SVG, no script, no network), readable from a
``file://`` URL, for a finished, failed, running or interrupted run.

It draws a ``RunView`` (``_view``): a timeline of attempts on a time axis (one row per phase, so phases
that ran in parallel are bars side by side in time), a phase table, then per phase its failure, check
evidence, each attempt's CLI-tree cleanup, stderr tail and collapsible transcript. Every text is escaped
here; secrets were redacted when the view was built.
"""

from __future__ import annotations

import math
import os
import time
from html import escape
from pathlib import Path
from typing import Any

from .._cost import format_cost
from .._feedback import HEADER
from .._private import open_append, private_dir
from ._view import AttemptView, CleanupView, Item, PhaseView, RunView, Transcript

_LABEL_W, _PLOT_X, _PLOT_W, _ROW_H, _TOP = 150, 160, 820, 26, 34
_NOT_OK = ("failed", "timed_out", "cancelled")
#: a body longer than this is folded into its own <details>
_FOLD_CHARS = 600

_CSS = """
:root { --ok: #2e7d32; --bad: #c62828; --timeout: #d84315; --cancelled: #b58900; --running: #1565c0;
        --skipped: #8d8d8d; --pending: #b0b0b0; --lost: #6a1b9a; --ink: #1d1d1f; --muted: #666; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0;
       background: #f6f7f9; }
main { max-width: 1100px; margin: 0 auto; padding: 20px 24px 60px; }
h1 { font-size: 22px; margin: 0 0 6px; } h2 { font-size: 17px; margin: 28px 0 10px; }
h3 { font-size: 16px; margin: 0 0 6px; display: flex; gap: 10px; align-items: center; }
.meta, .muted { color: var(--muted); } .note { background: #fff3cd; border: 1px solid #f0d98c; padding: 8px 12px;
       border-radius: 6px; }
.card { background: #fff; border: 1px solid #e1e4e8; border-radius: 8px; padding: 14px 16px; margin: 12px 0; }
.pill { display: inline-block; padding: 1px 9px; border-radius: 10px; color: #fff; font-size: 12px;
        font-weight: 600; text-transform: uppercase; letter-spacing: .03em; }
.s-succeeded, .s-ok { background: var(--ok); } .s-failed { background: var(--bad); }
.s-timed_out { background: var(--timeout); } .s-cancelled { background: var(--cancelled); }
.s-running { background: var(--running); } .s-skipped { background: var(--skipped); }
.s-pending { background: var(--pending); } .s-interrupted, .s-crashed, .s-lost { background: var(--lost); }
.s-waiting_approval, .s-waiting { background: #8250df; }
svg .bar.s-succeeded, svg .bar.s-ok { fill: var(--ok); } svg .bar.s-failed { fill: var(--bad); }
svg .bar.s-timed_out { fill: var(--timeout); } svg .bar.s-cancelled { fill: var(--cancelled); }
svg .bar.s-running { fill: var(--running); } svg .bar.s-lost { fill: var(--lost); }
svg .bar.retried { opacity: .55; }
svg text { font: 12px system-ui, sans-serif; fill: var(--ink); } svg .axis { fill: var(--muted); font-size: 11px; }
svg .grid { stroke: #e6e6e6; } svg .rowline { stroke: #f0f0f0; } svg .skip { fill: var(--skipped); font-style: italic; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; } td.num, th.num { text-align: right; }
.failure { border-left: 4px solid var(--bad); padding: 6px 10px; background: #fdecea; margin: 8px 0; }
.checks li.pass::marker { content: "\\2713  "; color: var(--ok); }
.checks li.fail::marker { content: "\\2717  "; color: var(--bad); }
.attempt { border-top: 1px solid #eee; padding-top: 8px; margin-top: 10px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; font-size: 13px; }
.facts dt { color: var(--muted); } .facts dd { margin: 0; }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f8fa; padding: 8px 10px; border-radius: 6px;
      margin: 4px 0; font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, monospace; max-height: 420px;
      overflow: auto; }
details > summary { cursor: pointer; color: #0b57d0; margin: 6px 0; }
.item { margin: 6px 0 6px 4px; padding-left: 10px; border-left: 3px solid #ddd; }
.item .who { font-size: 12px; font-weight: 600; color: var(--muted); }
.k-tool_use { border-color: #7e57c2; } .k-tool_result { border-color: #26a69a; } .k-result { border-color: var(--ok); }
.k-thinking { border-color: #bdbdbd; } .item.error { border-color: var(--bad); }
.cut { font-size: 12px; color: var(--muted); }
"""


def _cost(view: RunView | PhaseView | AttemptView) -> str:
    """A phase's or run's cost as the sum of its attempts' (``>=`` when one was never reported); an ended
    attempt that never reported its cost shows ``?``, never 0."""
    if isinstance(view, AttemptView):
        return format_cost(view.cost_usd, view.ended is not None and view.cost_usd is None)
    return format_cost(view.cost_usd, view.cost_lower_bound)


def _fmt_time(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _pill(status: str) -> str:
    return f'<span class="pill s-{escape(status)}">{escape(status.replace("_", " "))}</span>'


def _anchor(index: int) -> str:
    return f"phase-{index}"


def _attempt_status(phase: PhaseView, attempt: AttemptView, last: bool, run_live: bool) -> str:
    """The bar's status: an open attempt is running (or lost, if the run is no longer running); the
    phase's last attempt shows how the phase ended (a failed check fails an attempt whose query was ok)."""
    if attempt.ended is None:
        return "running" if run_live else "lost"
    if last and phase.status not in ("running", "pending"):
        return phase.status
    return "ok" if attempt.ok else ("timed_out" if attempt.kind in ("timeout", "stalled") else
                                    "cancelled" if attempt.kind == "cancelled" else "failed")


def _ticks(span: float) -> list[float]:
    """Round tick steps (1, 2, 5 x 10^n seconds), about 6 of them."""
    raw = max(span / 6, 1e-3)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(int(span / step) + 1)]


def timeline(view: RunView) -> str:
    t0 = view.started
    span = max(view.axis_end - t0, 1e-3)
    height = _TOP + _ROW_H * len(view.phases) + 10
    live = view.status == "running"

    def x(ts: float) -> float:
        return _PLOT_X + (ts - t0) / span * _PLOT_W

    parts = [f'<svg id="timeline-svg" viewBox="0 0 {_PLOT_X + _PLOT_W + 20} {height}" width="100%" role="img" '
             f'aria-label="timeline of phases and attempts">']
    for tick in _ticks(span):
        tx = x(t0 + tick)
        parts.append(f'<line class="grid" x1="{tx:.1f}" y1="{_TOP - 8}" x2="{tx:.1f}" y2="{height - 6}"/>'
                     f'<text class="axis" x="{tx:.1f}" y="{_TOP - 14}" text-anchor="middle">{_fmt_s(tick)}</text>')
    for i, phase in enumerate(view.phases):
        y = _TOP + i * _ROW_H
        parts.append(f'<line class="rowline" x1="0" y1="{y + _ROW_H}" x2="{_PLOT_X + _PLOT_W}" y2="{y + _ROW_H}"/>'
                     f'<a href="#{_anchor(i)}"><text class="label" x="6" y="{y + 17}">'
                     f'{escape(_short(phase.name, 20))}</text></a>')
        if not phase.attempts:
            why = phase.status if not phase.message else f"{phase.status}: {phase.message}"
            parts.append(f'<text class="skip" x="{_PLOT_X + 4}" y="{y + 17}">{escape(_short(why, 110))}</text>')
        for n, attempt in enumerate(phase.attempts):
            last = n == len(phase.attempts) - 1
            status = _attempt_status(phase, attempt, last, live)
            x0 = x(attempt.started)
            width = max(x(attempt.ended or view.made) - x0, 3.0)
            tip = (f"{phase.name}, attempt {attempt.number}: {status}"
                   f"{f' ({attempt.kind})' if attempt.kind else ''}, "
                   f"{_fmt_s((attempt.ended or view.made) - attempt.started)}")
            parts.append(f'<rect class="bar s-{status}{"" if last else " retried"}" data-phase="{escape(phase.name)}" '
                         f'data-attempt="{attempt.number}" x="{x0:.1f}" y="{y + 5}" width="{width:.1f}" '
                         f'height="{_ROW_H - 10}" rx="3"><title>{escape(tip)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _phase_table(view: RunView) -> str:
    rows = []
    for i, p in enumerate(view.phases):
        rows.append(
            f'<tr data-phase="{escape(p.name)}"><td><a href="#{_anchor(i)}">{escape(p.name)}</a></td>'
            f"<td>{_pill(p.status)}</td><td>{escape(p.kind or '')}</td><td class=num>{len(p.attempts)}</td>"
            f"<td class=num>{_fmt_s(p.duration_s) if p.attempts else '-'}</td>"
            f"<td class=num>{_cost(p)}</td>"
            f"<td class=num>{'-' if p.num_turns is None else p.num_turns}</td></tr>")
    return ("<table id=phase-table><thead><tr><th>phase</th><th>status</th><th>kind</th><th class=num>attempts</th>"
            "<th class=num>time</th><th class=num>cost (USD)</th><th class=num>turns</th></tr></thead><tbody>"
            + "".join(rows)
            + f"</tbody><tfoot><tr><th>total</th><th></th><th></th><th></th><th></th>"
              f"<th class=num>{_cost(view)}</th><th class=num>{view.num_turns}</th></tr></tfoot></table>")


def _cleanup(cleanup: CleanupView | None) -> str:
    if cleanup is None:
        return "not recorded"
    pids, left = cleanup.pids_ended, cleanup.leftover_pids
    parts = [f"exit code {'-' if cleanup.exit_code is None else cleanup.exit_code}",
             f"{len(pids)} process{'es' if len(pids) != 1 else ''} ended ({', '.join(map(str, pids))})" if pids
             else "no process had to be ended",
             "SIGKILL needed" if cleanup.sigkill_needed else "no SIGKILL needed",
             ("signals: " + ", ".join(f"{sig} to {target}" for target, sig in cleanup.signals_sent))
             if cleanup.signals_sent else "no signal sent",
             f"containment {cleanup.containment or '?'}",
             "LEFT RUNNING: " + ", ".join(map(str, left)) if left else
             "verified: nothing left" if cleanup.verified else "nothing known left (not proved)"]
    return escape("; ".join(parts))


def _item(item: Item) -> str:
    cut = (f'<div class="cut">cut: {len(item.body):,} of {item.size:,} characters shown</div>' if item.cut else "")
    body = f"<pre>{escape(item.body)}</pre>{cut}"
    if len(item.body) > _FOLD_CHARS:
        first = item.body.strip().splitlines()[0] if item.body.strip() else ""
        body = f"<details><summary>{escape(_short(first, 90))} ({item.size:,} characters)</summary>{body}</details>"
    return (f'<div class="item k-{escape(item.kind)}{" error" if item.is_error else ""}">'
            f'<div class="who">{escape(item.title)}</div>{body}</div>')


def _transcript(transcript: Transcript) -> str:
    if not transcript.count:
        return f'<p class="muted">transcript: {escape(transcript.note or "no messages")}</p>'
    skipped = (f'<p class="cut">\u2026 {transcript.skipped:,} items not shown \u2026</p>' if transcript.skipped else "")
    return (f'<details class="transcript"><summary>transcript: {transcript.count:,} items</summary>'
            + "".join(_item(i) for i in transcript.head) + skipped + "".join(_item(i) for i in transcript.tail)
            + (f'<p class="cut">{escape(transcript.note)}</p>' if transcript.note else "") + "</details>")


def _attempt(a: AttemptView, run_live: bool) -> str:
    failed_checks = [c for c in a.checks if not c.get("passed")]
    state = ("running" if run_live else "never ended (the run was interrupted)") if a.ended is None else \
        (f"failed (validation_failed: {len(failed_checks)} check(s) failed; the CLI's result was ok)"
         if a.ok and failed_checks else "ok" if a.ok else f"failed ({a.kind or 'error result'})")
    facts = [("attempt", f"{a.number}: {state}"), ("started", _fmt_time(a.started)),
             ("took", _fmt_s((a.ended - a.started) if a.ended is not None else None)),
             ("cost (USD)", _cost(a)), ("turns", "-" if a.num_turns is None else str(a.num_turns)),
             ("messages", "-" if a.message_count is None else f"{a.message_count:,}"),
             ("session", a.session_id or "-"), ("query id", a.query_id or "-")]
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    dl += f"<dt>CLI tree</dt><dd class=cleanup>{_cleanup(a.cleanup)}</dd>"
    failure = f'<div class="failure">{escape(a.message)}</div>' if a.message else ""
    stderr = (f"<details><summary>stderr tail ({len(a.stderr_tail):,} characters)</summary>"
              f"<pre>{escape(a.stderr_tail)}</pre></details>" if a.stderr_tail else "")
    prompt = (f'<details class="prompt"><summary>prompt ({len(a.prompt):,} characters'
              f'{", with feedback" if HEADER in a.prompt else ""})</summary><pre>{escape(a.prompt)}</pre></details>'
              if a.prompt else "")
    return (f'<div class="attempt" data-attempt="{a.number}"><dl class="facts">{dl}</dl>{failure}{prompt}'
            f"{_checks(a.checks)}{stderr}{_transcript(a.transcript)}</div>")


def _checks(checks: tuple[dict[str, Any], ...]) -> str:
    if not checks:
        return ""
    return "<ul class=checks>" + "".join(
        f'<li class="{"pass" if c.get("passed") else "fail"}"><b>{escape(str(c.get("name", "")))}</b>: '
        f'{escape(str(c.get("evidence", "")))}{_check_cleanup(c)}</li>' for c in checks) + "</ul>"


def _check_cleanup(check: dict[str, Any]) -> str:
    """A command check's tree, as its evidence recorded it: what was ended, how contained, verified or not."""
    cleanup = CleanupView.of((check.get("details") or {}).get("cleanup"))
    if cleanup is None:
        return ""
    left = f", <b>left: {list(cleanup.leftover_pids)}</b>" if cleanup.leftover_pids else ""
    return (f' <span class="muted">(its tree: ended {list(cleanup.pids_ended) or "nothing"}, '
            f'{escape(cleanup.containment or "?")}{", verified" if cleanup.verified else ""}{left})</span>')


def _phase(i: int, p: PhaseView, run_live: bool) -> str:
    head = f'<h3>{escape(p.name)} {_pill(p.status)}</h3>'
    desc = f'<p class="muted">{escape(p.description)}</p>' if p.description else ""
    deps = f'<p class="muted">after: {escape(", ".join(p.depends_on))}</p>' if p.depends_on else ""
    if p.reserved_usd is not None:
        deps += f'<p class="muted reserved">may spend up to {p.reserved_usd:.4f} USD (reserved when it started)</p>'
    failure = ""
    if p.status not in ("succeeded", "running", "pending") and p.message:
        failure = f'<div class="failure"><b>{escape(p.kind or p.status)}</b>: {escape(p.message)}</div>'
    checks = _checks(p.checks)
    attempts = "".join(_attempt(a, run_live) for a in p.attempts)
    return (f'<section class="card phase" id="{_anchor(i)}" data-phase="{escape(p.name)}" data-status="{p.status}">'
            f"{head}{desc}{deps}{failure}{checks}{attempts}</section>")


def write_run_page(view: RunView, path: str | Path) -> Path:
    """Write the page of ``view`` to ``path`` whole (a temporary file renamed over it: a browser that
    reloads it never sees half a page); return the path."""
    path = Path(path)
    if not path.parent.exists():
        private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open_append(tmp) as fh:  # private: the page holds transcripts
        fh.truncate(0)
        fh.write(render_run_page(view))
    tmp.replace(path)
    return path


def open_run_page(view: RunView, out: str | Path, open_it: bool) -> Path:
    """Write the page (``write_run_page``) and open it in the default browser if asked; its path."""
    path = write_run_page(view, out)
    if open_it:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())
    return path


def render_run_page(view: RunView) -> str:
    """The page of ``view``: a complete HTML document."""
    live = view.status == "running"
    took = (view.ended or view.made) - view.started
    note = ""
    if live:
        note = f"Still running when this page was made ({_fmt_time(view.made)}); make it again to see more."
    elif view.status in ("interrupted", "crashed"):
        note = f"This run did not finish: {view.note or view.status}."
    elif view.note:
        note = view.note
    failed = [(i, p) for i, p in enumerate(view.phases) if p.status in _NOT_OK]
    summary = ""
    if failed:
        summary = '<div class="failure" id="what-failed"><b>did not succeed:</b><ul>' + "".join(
            f'<li><a href="#{_anchor(i)}">{escape(p.name)}</a> {_pill(p.status)} '
            f"{escape(p.kind or '')}: {escape(_short(p.message, 200))}</li>" for i, p in failed) + "</ul></div>"
    meta = (f"pipeline <b>{escape(view.pipeline or '-')}</b> \u00b7 started {_fmt_time(view.started)} \u00b7 "
            f"{'running for' if live else 'took'} {_fmt_s(took)} \u00b7 cost {_cost(view)} USD \u00b7 "
            f"{view.num_turns} turns \u00b7 from {escape(view.source)}")
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>run {escape(view.run_id)}: {escape(view.status)}</title><style>{_CSS}</style></head><body><main>"
        f'<header><h1>run {escape(view.run_id)} <span id="run-status">{_pill(view.status)}</span></h1>'
        f'<p class="meta">{meta}</p>{f"<p class=note>{escape(note)}</p>" if note else ""}{summary}</header>'
        f'<h2>Timeline</h2><div class="card">{timeline(view)}</div>'
        f"<h2>Phases</h2>{_phase_table(view)}"
        + "".join(_phase(i, p, live) for i, p in enumerate(view.phases))
        + f'<p class="muted">made by claude-scope at {_fmt_time(view.made)}</p></main></body></html>\n'
    )
