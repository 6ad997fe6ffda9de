"""The run page: built from a real run's journal and message logs (stand-in CLI), drawn by headless
Chromium (Debian's package, driven by Playwright), and checked for what a person sees: phase names, the
failed phase marked failed in red, the timeline's bars where the attempts ran, transcripts that open.

Without Chromium or Playwright the browser tests are skipped with the reason (``scripts/test`` installs
Chromium with apt where it can). Set ``CLAUDE_SCOPE_SCREENSHOT=FILE`` to keep the screenshot (the README's).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator import Journal, Pipeline
from orchestrator._runpage import render_run_page, write_run_page
from orchestrator._runpage._view import (
    HEAD_CHARS,
    HEAD_ITEMS,
    TAIL_CHARS,
    TAIL_ITEMS,
    AttemptView,
    PhaseView,
    RunView,
    read_transcript,
    run_view,
)
from sdk_wrapper import RetryPolicy
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import TWO_PHASES, phase_live, until, wait_for

from .test_engine import orchestrator_in, phase, write

SECRET = "sk-ant-api03-" + "Q" * 40
LONG = 10_000


def _pipeline(p: Path) -> Pipeline:
    slow = {"delay_s": 0.15, "steps": [{"text": f"part {i}"} for i in range(4)]}
    bash = {"steps": [{"tool": {"name": "Bash", "input": {"command": f"python3 -c \"print('y' * {LONG})\""}}}]}
    broken = {"steps": [{"tool": {"name": "Write", "input": {"file_path": "x.html",
                                                             "content": "<script>alert(1)</script>"}}},
                        {"stderr": f"auth failed with {SECRET}"}, {"exit": 3}]}
    return Pipeline([
        phase("root", write("notes/plan.md", "the plan"), p),
        phase("left", slow, p, depends_on=("root",)), phase("right", slow, p, depends_on=("root",)),
        phase("api", "overloaded", p, depends_on=("left",), retry=RetryPolicy(attempts=2, wait=False)),
        phase("long", bash, p, depends_on=("right",)),
        phase("broken", broken, p, depends_on=("long",)),
        phase("after", "ok", p, depends_on=("broken",)),
    ], max_parallel=2, name="page-test")


def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """``anyio.run`` in a thread of its own: Playwright's sync API holds an event loop in the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, fn, *args).result()


@pytest.fixture
def finished_run(tmp_path: Path, standin_cli: Path, leak_guard: LeakGuard) -> Iterator[Journal]:
    with orchestrator_in(tmp_path, standin_cli) as orch:
        in_thread(orch.run, _pipeline(orch.project_dir), "page-run")
        yield orch.journal


# -- the view and the HTML ---------------------------------------------------------------------------------
def test_view_of_a_finished_run(finished_run: Journal) -> None:
    view = run_view(finished_run, "page-run")
    phases = {p.name: p for p in view.phases}
    assert [p.name for p in view.phases] == ["root", "left", "right", "api", "long", "broken", "after"]
    assert view.status == "failed" and view.finished and view.pipeline == "page-test"
    assert phases["broken"].status == "failed" and phases["broken"].kind == "process_exit"
    assert [a.ok for a in phases["api"].attempts] == [False, False] and phases["after"].attempts == ()
    (broken,) = phases["broken"].attempts
    assert broken.cleanup is not None and broken.cleanup.exit_code == 3 and not broken.cleanup.leftover_pids
    assert "auth failed" in broken.stderr_tail and SECRET not in broken.stderr_tail
    left, right = phases["left"].attempts[0], phases["right"].attempts[0]
    assert left.started < (right.ended or 0) and right.started < (left.ended or 0)  # they ran side by side
    (long,) = phases["long"].attempts
    result = next(i for i in long.transcript.head if i.kind == "tool_result")
    assert result.cut and result.size == LONG + 1 and len(result.body) < result.size
    assert [i.kind for i in phases["root"].attempts[0].transcript.head] == [
        "system", "tool_use", "tool_result", "result"]


def test_page_escapes_and_redacts(finished_run: Journal) -> None:
    page = render_run_page(run_view(finished_run, "page-run"))
    assert SECRET not in page and "[REDACTED]" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page  # nothing fetched at view time


def test_transcript_of_a_huge_log_keeps_head_and_tail(tmp_path: Path) -> None:
    log = tmp_path / "p.1.jsonl"
    with log.open("w") as fh:
        for i in range(5_000):
            fh.write(json.dumps({"type": "AssistantMessage", "content": [{"text": f"message {i}"}]}) + "\n")
        fh.write('{"type": "AssistantMess')  # a kill -9 mid-line
    transcript = read_transcript(log)
    assert len(transcript.head) == HEAD_ITEMS and len(transcript.tail) == TAIL_ITEMS
    assert transcript.count == 5_001 and transcript.skipped == 5_001 - HEAD_ITEMS - TAIL_ITEMS
    assert transcript.head[0].body == "message 0" and transcript.tail[-2].body == "message 4999"
    assert transcript.tail[-1].is_error and "not JSON" in transcript.tail[-1].title
    assert read_transcript(tmp_path / "absent.jsonl").note == "no message log on this host"


def test_a_transcript_of_long_outputs_keeps_to_its_budget(tmp_path: Path) -> None:
    log = tmp_path / "p.1.jsonl"
    with log.open("w") as fh:
        for i in range(400):
            fh.write(json.dumps({"type": "UserMessage", "content": [
                {"tool_use_id": f"t{i}", "content": f"{i} " + "z" * 3000, "is_error": False}]}) + "\n")
    transcript = read_transcript(log)
    shown = [len(i.body) for i in transcript.head], [len(i.body) for i in transcript.tail]
    assert sum(shown[0]) == HEAD_CHARS and sum(shown[1]) == TAIL_CHARS
    assert shown[0][0] == 3002 and shown[0][-1] == 0 and shown[1][0] == 3004 and shown[1][-1] == 0
    assert all(i.size >= 3002 for i in (*transcript.head, *transcript.tail))  # each still says its size
    page = render_run_page(RunView("r", "p", "failed", "", 0.0, 1.0, 1.0, (PhaseView(
        "p", "failed", attempts=(AttemptView(1, 0.0, 1.0, False, transcript=transcript),)),)))
    assert "cut: 0 of 3,004 characters shown" in page and len(page) < 2 * (HEAD_CHARS + TAIL_CHARS)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator._cli", *args], capture_output=True, text=True,
                          timeout=60)


def test_report_command_writes_the_latest_run(finished_run: Journal, tmp_path: Path) -> None:
    done = _cli("--journal", str(finished_run.path), "report")
    out = finished_run.path.parent / "reports" / "page-run.html"
    assert done.returncode == 0 and done.stdout.strip() == f"run page: {out}"
    assert "run page-run" in out.read_text()
    done = _cli("--journal", str(finished_run.path), "report", "nope", "--out", str(tmp_path / "x.html"))
    assert done.returncode == 2 and "no run 'nope'" in done.stderr and not (tmp_path / "x.html").exists()


def test_interrupted_run_after_kill_9(leak_guard: LeakGuard, tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(TWO_PHASES.format(second="hang"))
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator._cli", "run", "p.toml", "--simulate",
                             "--run-id", "killed"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db = tmp_path / ".claude-scope" / "runs.db"

    wait_for(phase_live(db, "second"), 30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Journal(db) as journal:
        view = run_view(journal, "killed")
    first, second = view.phases
    assert view.status == "interrupted" and not view.finished and f"pid {proc.pid}" in view.note
    assert first.status == "succeeded" and second.attempts[0].ended is None
    page = render_run_page(view)
    assert 'class="bar s-lost"' in page and "never ended (the run was interrupted)" in page
    wait_for(lambda: not leak_guard.live_recorded(), 10)  # the host guard ends the orphaned CLI


# -- in a real browser -------------------------------------------------------------------------------------
@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium for one test; ask for it after ``leak_guard`` so that it is closed (its processes gone)
    before the guard counts processes."""
    chromium = os.environ.get("CLAUDE_SCOPE_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        pytest.skip("no Chromium here (Debian's `chromium` package; scripts/test installs it with apt where it can)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        pytest.skip(f"Playwright is not installed ({exc}); it comes with the test extra")
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        except Error as exc:
            pytest.skip(f"Chromium at {chromium} does not start headless: {str(exc).splitlines()[0]}")
        yield browser
        browser.close()


def _open(browser: Any, page_file: Path) -> Any:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(page_file.resolve().as_uri())
    return page


def _fill(page: Any, selector: str) -> str:
    return str(page.eval_on_selector(selector, "e => getComputedStyle(e).fill"))


def test_a_person_sees_the_failed_run(finished_run: Journal, tmp_path: Path, browser: Any) -> None:
    page_file = write_run_page(run_view(finished_run, "page-run"), tmp_path / "page-run.html")
    page = _open(browser, page_file)
    assert page.title() == "run page-run: failed"
    assert page.locator("#run-status").inner_text().strip().lower() == "failed"
    labels = page.locator("svg text.label")
    assert labels.all_text_contents() == [
        "root", "left", "right", "api", "long", "broken", "after"]
    assert all(labels.nth(i).is_visible() for i in range(labels.count()))

    # the failed phase: a red bar, not covered by anything, its row in the table and the summary say failed
    bar = page.locator('rect.bar[data-phase="broken"]')
    box = bar.bounding_box()
    assert box is not None and box["width"] >= 3 and box["height"] > 5
    assert _fill(page, 'rect.bar[data-phase="broken"]') == "rgb(198, 40, 40)"
    assert _fill(page, 'rect.bar[data-phase="root"]') == "rgb(46, 125, 50)"
    on_top = page.evaluate("([x, y]) => document.elementFromPoint(x, y).dataset.phase",
                           [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
    assert on_top == "broken"
    assert page.locator('#phase-table tr[data-phase="broken"]').inner_text().lower().split()[:2] == [
        "broken", "failed"]
    assert "broken" in page.locator("#what-failed").inner_text()
    assert page.locator("svg text.skip").text_content() == "skipped: dependency 'broken' failed"

    # the timeline: parallel phases side by side in time, on their own rows; a retry as two bars
    left, right = (page.locator(f'rect.bar[data-phase="{n}"]').bounding_box() for n in ("left", "right"))
    assert left is not None and right is not None
    assert left["x"] < right["x"] + right["width"] and right["x"] < left["x"] + left["width"]
    assert left["y"] != right["y"]
    assert page.locator('rect.bar[data-phase="api"]').count() == 2
    assert page.locator('rect.bar.retried[data-phase="api"]').count() == 1

    # transcripts are folded: the tool call is not on screen until its phase's transcript is opened
    section = page.locator('section[data-phase="root"]')
    tool = section.locator(".k-tool_use")
    assert not tool.is_visible()
    section.locator("details.transcript > summary").click()
    assert tool.is_visible() and "notes/plan.md" in tool.inner_text()

    # the long output is cut, with its size; the secret in stderr is not on the page
    long = page.locator('section[data-phase="long"]')
    long.locator("details.transcript > summary").click()
    long.locator(".k-tool_result details > summary").click()
    assert f"cut: 4,000 of {LONG + 1:,} characters shown" in long.locator(".k-tool_result .cut").inner_text()
    text = page.locator("body").inner_text()
    assert SECRET not in text and "[REDACTED]" in text
    assert "verified: nothing left" in text or "nothing known left (not proved)" in text  # as containment allows

    shot = tmp_path / "run-page.png"
    page.evaluate("window.scrollTo(0, 0)")  # the header, the timeline and the phase table
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
    keep = os.environ.get("CLAUDE_SCOPE_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
    page.close()


def test_a_person_sees_a_run_still_running(leak_guard: LeakGuard, tmp_path: Path, standin_cli: Path,
                                           browser: Any) -> None:
    async def main() -> Path:
        with orchestrator_in(tmp_path, standin_cli) as orch:
            project = orch.project_dir
            pipeline = Pipeline([phase("first", "ok", project), phase("waits", "hang", project)])
            async with anyio.create_task_group() as tg:
                tg.start_soon(orch.run, pipeline, "live")
                await until(lambda: any(p.name == "waits" for p in orch.journal.live_processes()), 30)
                with Journal(orch.journal.path) as reader:  # another connection, as a second process would
                    out = write_run_page(run_view(reader, "live"), tmp_path / "live.html")
                tg.cancel_scope.cancel()
            return out

    page = _open(browser, in_thread(main))
    assert page.locator("#run-status").inner_text().strip().lower() == "running"
    assert "Still running when this page was made" in page.locator(".note").inner_text()
    assert _fill(page, 'rect.bar[data-phase="waits"]') == "rgb(21, 101, 192)"
    assert page.locator('section[data-phase="waits"]').get_attribute("data-status") == "running"
    page.close()

