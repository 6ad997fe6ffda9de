"""The evidence report: every benchmark, side by side, in one run; writes benchmarks/REPORT.md and charts.

    ./scripts/evidence            # full counts (about 25 minutes on 2 cores)
    ./scripts/evidence --quick    # small counts, same rows
    ./scripts/evidence --render   # rewrite REPORT.md and the charts from benchmarks/out/evidence.json

Contestants on the same stand-in CLI and machine: the raw ``claude_code_sdk.query()``; the V3 pattern (the
test copy of V3's masking wrapper, consumed as V3's runner does); ``claude-agent-sdk`` raw when it is
installed; ours: ``run_query``, ``open_query`` and the V3 drop-in. Each (contestant, measurement) runs in a
fresh interpreter (``benchmarks.bench_wrapper --one``); the side-by-side table runs them all in one, in
turn. Charts need matplotlib (``pip install claude-scope[charts]``); without it the report says so and has
the tables only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._contestants import THROUGHPUT_ONLY
from benchmarks.bench_wrapper import PAIRED_BASE, _spawn, agent_installed, machine, paired_contestants

HERE = Path(__file__).resolve().parent
CONTESTANTS = ["limit", "raw", "v3", "run_query", "open_query", "v3_dropin"]
if agent_installed():
    CONTESTANTS += ["agent_raw", "agent_run_query", "agent_open_query"]
LABELS = {"raw": "raw SDK", "v3": "V3 pattern", "run_query": "run_query", "open_query": "open_query",
          "v3_dropin": "V3 drop-in", "orchestrator": "orchestrator phase", "agent_raw": "raw agent SDK",
          "agent_run_query": "run_query (agent SDK)", "limit": "limit (readline + json.loads)",
          "agent_open_query": "open_query (agent SDK)"}


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else spec.format(value)


#: The raw agent SDK waits 5 s for a hung CLI to exit before it signals it (10 s when SIGTERM is ignored):
#: at full counts its cancel rows alone would take over an hour, so it runs fewer, and its cells say so.
FEWER = {"agent_raw": {"cancel": 20, "cancel_ignored": 5, "cancelled_many": 200}}


def count_for(contestant: str, key: str, n: dict[str, int]) -> int:
    return min(n[key], FEWER.get(contestant, {}).get(key, n[key]))


def run_all(quick: bool) -> dict[str, Any]:
    n = {"burst": 3 if quick else 5, "overhead": 20 if quick else 50, "cancel": 20 if quick else 100,
         "cancel_ignored": 5 if quick else 20, "cancelled_many": 100 if quick else 1000,
         "million": 100_000 if quick else 1_000_000, "orchestrator": 30 if quick else 100,
         "paired": 40 if quick else 150, "paired_burst": 3 if quick else 5}
    results: dict[str, Any] = {"n": n, "data": {}}
    data = results["data"]
    for contestant in CONTESTANTS:
        for measurement, ignore in [("burst", False), ("overhead", False), ("cancel", False), ("cancel", True),
                                    ("cancelled_many", False)]:
            if contestant in THROUGHPUT_ONLY and measurement not in ("burst", "overhead"):
                continue
            key = f"{measurement}{'_ignored' if ignore else ''}"
            started = time.monotonic()
            count = count_for(contestant, key, n)
            data.setdefault(key, {})[contestant] = _spawn(contestant, measurement, count, ignore)
            print(f"{contestant:<12} {key:<16} {time.monotonic() - started:6.1f}s", flush=True)
    # Not V3: on its SDK the first stdout read holding two lines ends the stream with a made-up success.
    for contestant in ["raw", "run_query", "orchestrator"]:
        data.setdefault("million", {})[contestant] = _spawn(contestant, "million", n["million"])
        print(f"{contestant:<12} million", flush=True)
    for mode in ["mp1", "mp8"]:
        data.setdefault("orchestrator", {})[mode] = _spawn(mode, "orchestrator", n["orchestrator"])
    data["paired"] = {"all": _spawn(",".join(paired_contestants()), "paired", n["paired"])}
    data["paired_burst"] = {"all": _spawn(",".join(paired_contestants()), "paired_burst", n["paired_burst"])}
    print("paired", flush=True)
    results["agent_sdk"] = agent_installed()
    return results


def real_cli_table() -> list[str]:
    """The real CLI vs the stand-in (benchmarks.bench_real_cli), when scripts/evidence found the CLI."""
    if not os.environ.get("CLAUDE_SCOPE_REAL_CLI"):
        return ["Real CLI rows: not measured, no real CLI (npm missing or the install failed)."]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_real_cli", "10"], capture_output=True, text=True,
                          timeout=1200, cwd=HERE.parent)
    rows = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    if proc.returncode != 0 or not rows:
        return [f"Real CLI rows: the measurement failed (exit {proc.returncode}): {proc.stderr[-300:]}"]
    return ["Real Claude Code CLI 2.1.197 (offline, loopback Messages API mock) vs the stand-in, through "
            "`open_query`; RSS is the CLI process's peak, to size `max_parallel`:", "", *rows]


def soak() -> str:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--ops", "1000"], capture_output=True,
                          text=True, timeout=1200, cwd=HERE.parent)
    lines = proc.stdout.strip().splitlines()
    return f"exit {proc.returncode}: " + (lines[-2] + "; " + lines[-1] if len(lines) >= 2 else proc.stdout[-300:])


def run_temporal(quick: bool) -> str:
    """``benchmarks.bench_temporal`` in its own interpreter (it needs the temporal extra and starts a dev
    server; it writes out/temporal.json); "" when it ran, else why not."""
    if importlib.util.find_spec("temporalio") is None:
        return "not measured: the temporal extra is not installed (pip install claude-scope[temporal])"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_temporal", *(["--quick"] if quick else [])],
                          capture_output=True, text=True, timeout=1800, cwd=HERE.parent)
    return "" if proc.returncode == 0 else f"the benchmark failed (exit {proc.returncode}): {proc.stderr[-300:]}"


def temporal_table(problem: str) -> list[str]:
    """The table of out/temporal.json (written by bench_temporal, with its own date), or why there is none."""
    path = HERE / "out" / "temporal.json"
    if problem or not path.exists():
        return [f"Temporal: {problem or 'not measured yet (python -m benchmarks.bench_temporal)'}."]
    found = json.loads(path.read_text(encoding="utf-8"))
    r = found["results"]
    o, m, c = r["overhead"], r["many"], r["cancel"]
    return [
        f"Measured {found['generated']}{' (--quick)' if found['quick'] else ''}.",
        "",
        "| measurement | N | Temporal | local orchestrator |",
        "|---|---|---|---|",
        f"| wall time per phase, minimal CLI (ms) | {o['phases']} phases x {o['reps']} | "
        f"{o['temporal_ms_per_phase']:.1f} | {o['local_ms_per_phase']:.1f} |",
        f"| ... Temporal's extra per phase (ms) | | {o['overhead_ms_per_phase']:.1f} | - |",
        f"| {m['pipelines']} pipelines x 3 phases, 2 workers / 2 orchestrators (s) | 1 | {m['temporal_s']:.2f} | "
        f"{m['local_s']:.2f} |",
        f"| cancel -> tree gone p50 / p95 / max (ms) | {c['runs']} | {c['p50_ms']:.0f} / {c['p95_ms']:.0f} / "
        f"{c['max_ms']:.0f} | - |",
        *[f"| worker kill -9 -> phase running again, heartbeat timeout {k['heartbeat_timeout_s']:.0f} s, "
          f"median / max (s) | {k['runs']} | {k['median_s']:.1f} / {k['max_s']:.1f} | - |"
          for k in (r["killed_10s"], r["killed_2s"])],
    ]


def table(results: dict[str, Any]) -> list[str]:
    d, n = results["data"], results["n"]
    head = "| measurement | N | " + " | ".join(LABELS[c] for c in CONTESTANTS) + " |"
    lines = [head, "|" + "---|" * (2 + len(CONTESTANTS))]

    def row(title: str, key: str, field: str, spec: str, count: int) -> None:
        cells = []
        for c in CONTESTANTS:
            value = d.get(key, {}).get(c, {})
            cell = "error: " + value["error"][:40] if "error" in value else fmt(value.get(field), spec)
            if c == "v3" and value.get("fabricated") and field != "fabricated":
                cell += f" ({value['fabricated']} made up)"  # V3 on 0.0.10 reported successes it made up
            fewer = count_for(c, key, n)
            cells.append(cell if fewer == count else f"{cell} (N={fewer:,})")
        lines.append(f"| {title} | {count:,} | " + " | ".join(cells) + " |")

    row("messages/s, 10,000-message burst (median)", "burst", "msgs_per_s", "{:,.0f}", n["burst"])
    row("per-query wall time, minimal CLI (ms, median)", "overhead", "ms_per_query", "{:.2f}", n["overhead"])
    row("... this process's own CPU per query (ms, median; the CLI's not in it)", "overhead",
        "host_cpu_ms_per_query", "{:.2f}", n["overhead"])
    row("cancel -> control back (ms, p50), SIGTERM honoured", "cancel", "p50_ms", "{:.1f}", n["cancel"])
    row("cancel -> control back (ms, p99), SIGTERM honoured", "cancel", "p99_ms", "{:.1f}", n["cancel"])
    row("CLI processes left after those cancels", "cancel", "left_alive", "{}", n["cancel"])
    row("cancel -> control back (ms, p50), SIGTERM ignored", "cancel_ignored", "p50_ms", "{:.1f}",
        n["cancel_ignored"])
    row("cancel -> control back (ms, p99), SIGTERM ignored", "cancel_ignored", "p99_ms", "{:.1f}",
        n["cancel_ignored"])
    row("CLI processes left after those cancels", "cancel_ignored", "left_alive", "{}", n["cancel_ignored"])
    for field, title, spec in [("rss_growth_mb", "RSS growth (MB)", "{:.2f}"), ("fds_growth", "descriptors gained",
                                                                                 "{}"),
                               ("processes_left", "live processes left", "{}"),
                               ("fabricated", "fabricated successes", "{}")]:
        row(f"after N queries cancelled at random points: {title}", "cancelled_many", field, spec,
            n["cancelled_many"])
    return lines


def paired_table(results: dict[str, Any]) -> list[str]:
    """Every contestant in one interpreter, in turn, round after round: the goals of issue #15 are ratios and
    differences, and each is taken within a round, so a slow minute of this shared machine moves both sides."""
    d = results["data"]
    per_query = d.get("paired", {}).get("all")
    burst = d.get("paired_burst", {}).get("all")
    if per_query is None or burst is None:
        return ["Side by side in one interpreter: not measured in this run."]
    problems = [f"{name}: {found['error'][:300]}" for name, found in (("per query", per_query), ("bursts", burst))
                if "error" in found]
    if problems:
        return [f"Side by side in one interpreter: error: {'; '.join(problems)}"]
    lines = [f"Side by side in one interpreter, each contestant once per round, in turn: {burst['runs']} rounds of "
             f"10,000-message bursts, {per_query['runs']} rounds of minimal queries. A ratio or difference is the",
             "median over the rounds of one contestant's figure against its raw SDK's in the same round (ms and us "
             "are this process's CPU unless wall is named).", "",
             "| contestant | burst msgs/s | x its raw SDK | CPU per message (us) | CPU per query (ms) | "
             "wall per query (ms) | CPU per query minus its raw SDK | wall per query minus its raw SDK |",
             "|---|---|---|---|---|---|---|---|"]
    for name, value in per_query["contestants"].items():
        b = burst["contestants"].get(name, {})
        diff = per_query["differences"].get(f"{name} - {PAIRED_BASE[name]}")
        cells = [LABELS[name], fmt(b.get("msgs_per_s"), "{:,.0f}"), fmt(b.get("ratio_to_raw"), "{:.2f}x"),
                 fmt(b.get("host_cpu_us_per_msg"), "{:.1f}"), f"{value['host_cpu_ms_per_query']:.2f}",
                 f"{value['ms_per_query']:.2f}", "-" if diff is None else f"{diff['cpu_ms']:+.2f}",
                 "-" if diff is None else f"{diff['wall_ms']:+.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    for pair, value in per_query["differences"].items():
        if pair.endswith("open_query"):
            a, b_name = pair.split(" - ")
            lines.append(f"| {LABELS[a]} minus {LABELS[b_name]}, per query | | | | {value['cpu_ms']:+.2f} | "
                         f"{value['wall_ms']:+.2f} | | |")
    return lines


def million_table(results: dict[str, Any]) -> list[str]:
    d, n = results["data"], results["n"]
    lines = [f"| one phase streaming {n['million']:,} messages | peak RSS (MB) | growth over the start (MB) | "
             "seconds |", "|---|---|---|---|"]
    for c, value in d.get("million", {}).items():
        label = LABELS.get(c, c)
        if "error" in value:
            lines.append(f"| {label} | error: {value['error'][:60]} | | |")
        else:
            lines.append(f"| {label} | {value['peak_rss_mb']:.1f} | {value['growth_mb']:.1f} | "
                         f"{value['seconds']:.1f} |")
    lines += ["", f"| orchestrator, {n['orchestrator']} minimal phases | extra wall time per phase beyond the query "
              "(ms, median of 3) |", "|---|---|"]
    for mode, value in d.get("orchestrator", {}).items():
        if "error" in value:
            cell = f"error: {value['error'][:60]}"
        else:  # the spread says how much a median of 3 differences of two ~5 s runs can be trusted
            reps = value["repetitions_ms"]
            cell = f"{value['overhead_ms']:.2f} (the 3 repetitions: {', '.join(f'{r:.1f}' for r in reps)})"
        lines.append(f"| max_parallel {mode.removeprefix('mp')} | {cell} |")
    return lines


def charts(results: dict[str, Any]) -> list[str]:
    if importlib.util.find_spec("matplotlib") is None:
        return ["Charts: not drawn, matplotlib is not installed (`pip install claude-scope[charts]`)."]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = results["data"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for c in CONTESTANTS:
        series = d.get("cancelled_many", {}).get(c, {}).get("series")
        if series:
            xs = [s[0] for s in series]
            ax1.plot(xs, [s[1] for s in series], label=LABELS[c])
            ax2.plot(xs, [s[2] for s in series], label=LABELS[c])
    ax1.set(title="RSS growth over cancelled queries", xlabel="queries", ylabel="MB")
    ax2.set(title="Live CLI processes over cancelled queries", xlabel="queries", ylabel="processes")
    ax1.legend()
    ax2.legend()
    fig.tight_layout()
    fig.savefig(HERE / "chart_cancelled_queries.png", dpi=100)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for c in CONTESTANTS:
        samples = d.get("cancel", {}).get(c, {}).get("samples_ms")
        if samples:
            ax.hist(samples, bins=30, alpha=0.5, label=LABELS[c])
    ax.set(title="Cancel -> control back (SIGTERM honoured)", xlabel="ms", ylabel="queries", xscale="log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(HERE / "chart_cancel_latency.png", dpi=100)
    plt.close("all")
    return ["![RSS and live processes over cancelled queries](chart_cancelled_queries.png)", "",
            "![Cancel latency distribution](chart_cancel_latency.png)"]


def write_report(results: dict[str, Any], quick: bool) -> Path:
    d = results["data"]
    lines = [
        "# Evidence: claude-scope vs the raw SDKs and the V3 pattern",
        "",
        f"Generated by `./scripts/evidence{' --quick' if quick else ''}` on {results['generated']}.",
        f"Machine: {machine()}. Every figure comes from this one run, each (contestant, measurement) in a fresh",
        "interpreter, against the same stand-in CLI. Medians unless a percentile is named; N is the number of",
        "queries or runs behind each figure.",
        "",
        *table(results),
        "",
        *paired_table(results),
        "",
        *[f"Note: {note}" for note in results.get("notes", [])],
        *([""] if results.get("notes") else []),
        "Definitions. *Cancel -> control back*: for ours, from leaving the `async with` block to `__aexit__`",
        "returning with the CLI's whole tree ended and verified; for the raw SDK and the V3 pattern, the time the",
        "caller waited after its cancel scope fired, since they do not end the CLI's tree (see the processes left).",
        "*Fabricated successes*: for ours and the raw SDKs, successes reported for queries whose CLI never",
        "prints a result (the `hang` scenario) -- every one is made up; for the V3 pattern, successes carrying",
        "V3's own made-up result text. SIGTERM ignored: `run_query`/`open_query` ran with a terminate",
        "grace of 0.5 s, the V3 drop-in with the default 3 s (V3 code passes no limits), then SIGKILL.",
        "",
        "*The V3 pattern* is our model of V3's wrapper (checked against the real V3 code on every scenario of",
        "`migration/MIGRATION.md`, `tests/migration`) on the SDK V3 ran on, claude-code-sdk 0.0.10, in a",
        "venv of its own (`benchmarks/bench_v3_sdk.py`). 0.0.10 parses stdout reads, not lines, and the stand-in",
        "writes its messages back to back, so two lines often share a read: V3 then reports a success it made up",
        "and the real messages stop (a cell's \"N made up\"; its messages/s counts only what it delivered). The",
        "real CLI separates its messages by the model's latency, so there this happens less often, not never.",
        "Its cancel rows: V3 cancels with a scope around its `async for`; a query that already ended in a made-up",
        "success has nothing left to cancel. Not in the 1,000,000-message table: V3's stream ends at the first",
        "read that holds two lines.",
        "",
        *million_table(results),
        "",
        "claude-agent-sdk: " + ("its raw `query()`, and `run_query` and `open_query` given `ClaudeAgentOptions`, "
                                "are the last three columns, on the same stand-in (`cli_path`), not the CLI its "
                                "wheel bundles"
                                if results["agent_sdk"]
                                else "not installed in this run (pip install claude-scope[agent]); no columns") + ".",
        "",
        *results["real_cli"],
        "",
        f"Soak gate (1,000 operations, 5 s timeouts, forced cancellations, checked every 100): {results['soak']}",
        "",
        "## On Temporal (`benchmarks/bench_temporal.py`)",
        "",
        "Server, workers and client on this one machine; the same stand-in CLI. The local orchestrator runs the",
        "same pipelines (its SQLite journal). Cancel: from the cancel request to the phase's CLI and its",
        "own-session child gone (workers send heartbeats at most every 0.25 s). Worker kill -9: to the phase's CLI",
        "started again by another worker, which waits for the heartbeat timeout to pass.",
        "",
        *temporal_table(results.get("temporal_problem", "")),
        "",
        *charts(results),
        "",
    ]
    errors = {f"{k}/{c}": v["error"] for k, row in d.items() for c, v in row.items() if "error" in v}
    if errors:
        lines += ["## Errors in this run", "", *[f"- {k}: `{v[:300]}`" for k, v in errors.items()], ""]
    path = HERE / "REPORT.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "evidence.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-soak", action="store_true")
    parser.add_argument("--render", action="store_true", help="no measuring: rewrite the report from the JSON")
    args = parser.parse_args()
    if args.render:
        results = json.loads((HERE / "out" / "evidence.json").read_text(encoding="utf-8"))
    else:
        results = run_all(args.quick)
        results["real_cli"] = real_cli_table()
        results["soak"] = "not run (--no-soak)" if args.no_soak else soak()
        results["temporal_problem"] = run_temporal(args.quick)
        results["quick"] = args.quick
        results["generated"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    path = write_report(results, results.get("quick", False))
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
