"""Result webhooks against a real loopback HTTP receiver: what is sent, when, and what a bad receiver does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

from sdk_wrapper import FailureKind, QueryLimits, ResourceTracker, ResultWebhook, RetryPolicy, open_query, run_query
from sdk_wrapper.testing.pytest_plugin import LeakGuard
from tests.helpers import options_for

pytestmark = pytest.mark.anyio
SECRET = "sk-ant-api03-" + "s" * 40


class Receiver:
    """A loopback HTTP server that records every POST; ``status`` and ``delay_s`` script its answer."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        self.delay_s = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append({"headers": dict(self.headers), "body": json.loads(body),
                                       "at": time.monotonic()})
                time.sleep(receiver.delay_s)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = False  # server_close() joins handlers: their sockets are closed after it
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


async def test_outcome_is_posted_once_with_headers(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path,
                                                   receiver: Receiver) -> None:
    hook = ResultWebhook(receiver.url, headers={"Authorization": "Bearer hook-token-123456"})
    tracker = ResourceTracker()
    outcome = await run_query("hi", options_for({"session_id": "sess-w"}, tmp_path), cli_path=standin_cli,
                              webhook=hook, tracker=tracker)
    assert outcome.ok and outcome.webhook is not None
    assert (outcome.webhook.delivered, outcome.webhook.status_code, outcome.webhook.error) == (True, 200, None)
    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert post["headers"]["Authorization"] == "Bearer hook-token-123456"
    body = post["body"]
    assert body["ok"] is True and body["query_id"] == outcome.query_id and body["session_id"] == "sess-w"
    assert body["result"] == {"subtype": "success", "is_error": False}  # no answer text unless asked for
    assert body["cost_usd"] == pytest.approx(0.0123) and body["cleanup"]["clean"] is True
    assert "hook-token" not in repr(hook) and tracker.verify() == []


async def test_answer_text_only_when_asked(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path,
                                           receiver: Receiver) -> None:
    hook = ResultWebhook(receiver.url, include_result_text=True)
    await run_query("hi", options_for("ok", tmp_path), cli_path=standin_cli, webhook=hook)
    assert receiver.posts[0]["body"]["result"]["text"] == "Hello from the stand-in"


async def test_failure_is_posted_redacted(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path,
                                          receiver: Receiver) -> None:
    scenario = {"preset": "exit_error", "stderr": f"fatal: ANTHROPIC_API_KEY={SECRET} rejected"}
    outcome = await run_query("hi", options_for(scenario, tmp_path), cli_path=standin_cli,
                              webhook=ResultWebhook(receiver.url))
    body = receiver.posts[0]["body"]
    assert body["ok"] is False and body["failure"]["kind"] == FailureKind.PROCESS_EXIT.value
    assert body["failure"]["exit_code"] == 1 and "rejected" in body["failure"]["stderr_tail"]
    assert SECRET not in json.dumps(body)
    assert outcome.webhook is not None and outcome.webhook.delivered


async def test_one_post_after_all_retries(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path,
                                          receiver: Receiver) -> None:
    outcome = await run_query("hi", options_for("rate_limited", tmp_path), cli_path=standin_cli,
                              retry=RetryPolicy(attempts=2, wait=False),
                              webhook=ResultWebhook(receiver.url))
    assert len(outcome.attempts) == 2
    assert len(receiver.posts) == 1 and receiver.posts[0]["body"]["attempts"] == 2
    assert receiver.posts[0]["body"]["failure"]["kind"] == "rate_limited"


async def test_cancelled_stream_posts_before_the_block_is_left(leak_guard: LeakGuard, standin_cli: Path,
                                                               tmp_path: Path, receiver: Receiver) -> None:
    with anyio.move_on_after(0.5):
        async with open_query("hi", options_for("hang", tmp_path), cli_path=standin_cli,
                              webhook=ResultWebhook(receiver.url)) as stream:
            async for _ in stream:
                pass
    left = time.monotonic()
    assert len(receiver.posts) == 1 and receiver.posts[0]["at"] <= left
    assert receiver.posts[0]["body"]["failure"]["kind"] == "cancelled"
    assert stream.outcome.webhook is not None and stream.outcome.webhook.delivered


async def test_receiver_down_or_slow_or_failing_never_changes_ok(leak_guard: LeakGuard, standin_cli: Path,
                                                                 tmp_path: Path, receiver: Receiver) -> None:
    receiver.status = 500
    outcome = await run_query("hi", options_for("ok", tmp_path), cli_path=standin_cli,
                              webhook=ResultWebhook(receiver.url))
    assert outcome.ok and outcome.webhook is not None
    assert (outcome.webhook.delivered, outcome.webhook.error) == (False, "HTTP 500")

    receiver.status, receiver.delay_s = 200, 1.5
    started = time.monotonic()
    outcome = await run_query("hi", options_for("ok", tmp_path), cli_path=standin_cli,
                              webhook=ResultWebhook(receiver.url, timeout_s=0.3))
    assert outcome.ok and outcome.webhook is not None and not outcome.webhook.delivered
    assert outcome.webhook.error is not None and time.monotonic() - started < 2.5  # bounded by timeout_s

    url = receiver.url
    receiver.close()  # nothing listens there now
    outcome = await run_query("hi", options_for("ok", tmp_path), cli_path=standin_cli, webhook=ResultWebhook(url))
    assert outcome.ok and outcome.webhook is not None and not outcome.webhook.delivered
    assert outcome.webhook.error is not None and outcome.webhook.error.startswith("ConnectError")


async def test_bad_webhooks_are_rejected_at_once() -> None:
    with pytest.raises(ValueError, match="URL"):
        ResultWebhook("ftp://example.invalid/x")
    with pytest.raises(ValueError, match="timeout_s"):
        ResultWebhook("http://127.0.0.1:9/x", timeout_s=0)
    with pytest.raises(TypeError, match="webhook"):
        await run_query("hi", webhook="http://127.0.0.1:9/x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="webhook"):
        open_query("hi", webhook={"url": "x"})  # type: ignore[arg-type]


async def test_no_webhook_means_no_delivery(leak_guard: LeakGuard, standin_cli: Path, tmp_path: Path) -> None:
    outcome = await run_query("hi", options_for("ok", tmp_path), cli_path=standin_cli,
                              limits=QueryLimits(timeout_s=30))
    assert outcome.ok and outcome.webhook is None and outcome.query_id
