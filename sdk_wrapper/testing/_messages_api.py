"""A scriptable mock of the Anthropic Messages API on 127.0.0.1, for running the real ``claude`` CLI offline.

    with MessagesAPIMock([{"tool_use": {"name": "Bash", "input": {"command": "echo hi"}}},
                          {"text": "done"}]) as api:
        env = api.cli_env(home=tmp_path)          # ANTHROPIC_BASE_URL, a dummy key, no telemetry/retries
        ...run the real CLI with env...
    api.requests                                  # what the CLI asked, without secrets

Endpoints: ``POST /v1/messages`` (``?beta=true`` too): SSE when ``"stream": true`` (message_start,
content_block_start, content_block_delta with text_delta / input_json_delta, content_block_stop,
message_delta with stop_reason and usage, message_stop), JSON otherwise; ``POST /v1/messages/count_tokens``;
anything else is a 404 with an Anthropic-style error body.

Turns (one per agent request, i.e. one carrying ``tools``; other requests, such as the CLI's own small
housekeeping calls, get a short text): ``{"text": "..."}``, ``{"tool_use": {"name", "input"}}``,
``{"error": 429 | 529 | 401 | 500}``, ``{"stall": "partial text"}`` (stops mid-message and holds the
connection), ``{"slow_s": 0.2, "text": "..."}`` (a pause between events). After the script: ``{"text":
"done"}``. Any turn may say its ``usage`` (``{"input_tokens": 2_000_000, "output_tokens": 12}``: what the CLI
prices it at, e.g. to cross a ``--max-budget-usd``). ``accept_key=...`` answers 401 to any other key.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_ERRORS = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    429: "rate_limit_error", 500: "api_error", 529: "overloaded_error",
}
DUMMY_KEY = "sk-ant-api03-offline-dummy-key-0000000000000000"


class MessagesAPIMock:
    """The server; use as a context manager. Thread-based, so it serves while tests block on anything."""

    def __init__(self, turns: list[dict[str, Any]] | None = None, *, model: str = "claude-sonnet-4-5",
                 accept_key: str | None = None) -> None:
        self.turns = list(turns or [])
        self.accept_key = accept_key  # when set, any other key gets a 401
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="messages-api-mock", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> MessagesAPIMock:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()  # releases stalled responses
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def next_turn(self, agent_request: bool) -> dict[str, Any]:
        with self._lock:
            if agent_request and self.turns:
                return self.turns.pop(0)
        return {"text": "done" if agent_request else "ok"}

    def cli_env(self, home: str | Path, *, api_key: str = DUMMY_KEY) -> dict[str, str]:
        """Environment for the real CLI: this server, a dummy key, nothing non-essential, no retries."""
        home = Path(home)
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        return {
            "ANTHROPIC_BASE_URL": self.url, "ANTHROPIC_API_KEY": api_key, "HOME": str(home),
            "CLAUDE_CODE_TMPDIR": str(home / "tmp"), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0", "IS_SANDBOX": "1",
        }

    def agent_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("agent")]


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _handler(api: MessagesAPIMock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # the request log is api.requests, not stderr
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", f"req_{uuid.uuid4().hex[:20]}")
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            kind = _ERRORS.get(status, "api_error")
            self._json(status, {"type": "error", "error": {"type": kind, "message": message}})

        def do_GET(self) -> None:
            api.requests.append({"method": "GET", "path": self.path})
            self._error(404, f"no route for GET {self.path.split('?')[0]}")

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {}
            path = self.path.split("?")[0]
            record = {"method": "POST", "path": path, "model": body.get("model"), "stream": body.get("stream"),
                      "agent": bool(body.get("tools")), "messages": len(body.get("messages", [])),
                      "has_api_key": bool(self.headers.get("x-api-key") or self.headers.get("authorization")),
                      "tool_results": _tool_results(body)}
            api.requests.append(record)
            if api.accept_key is not None and self.headers.get("x-api-key") != api.accept_key:
                self._error(401, "invalid x-api-key")
                return
            if path == "/v1/messages/count_tokens":
                self._json(200, {"input_tokens": 42})
                return
            if path != "/v1/messages":
                self._error(404, f"no route for POST {path}")
                return
            turn = api.next_turn(record["agent"])
            record["turn"] = turn
            if "error" in turn:
                self._error(int(turn["error"]), f"scripted {turn['error']}")
                return
            if body.get("stream"):
                self._stream(turn)
            else:
                self._json(200, _message(api.model, turn))

        def _stream(self, turn: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            pause = float(turn.get("slow_s", 0))
            message = _message(api.model, turn)
            content, message["content"] = message["content"], []
            usage = message["usage"]
            events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": {
                **message, "stop_reason": None, "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}})]
            for index, block in enumerate(content):
                if block["type"] == "text":
                    events += [("content_block_start", {"type": "content_block_start", "index": index,
                                                        "content_block": {"type": "text", "text": ""}}),
                               ("content_block_delta", {"type": "content_block_delta", "index": index,
                                                        "delta": {"type": "text_delta", "text": block["text"]}})]
                else:
                    events += [("content_block_start", {"type": "content_block_start", "index": index,
                                                        "content_block": {**block, "input": {}}}),
                               ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
                                   "type": "input_json_delta", "partial_json": json.dumps(block["input"])}})]
                events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            events += [("message_delta", {"type": "message_delta", "delta": {
                "stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]}}),
                ("message_stop", {"type": "message_stop"})]
            if "stall" in turn:
                events = events[:3]  # message_start, block start, one delta: then nothing, connection held
            try:
                for name, data in events:
                    self.wfile.write(_sse(name, data))
                    self.wfile.flush()
                    if pause:
                        time.sleep(pause)
                if "stall" in turn:
                    api._stop.wait()
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

    return Handler


def _message(model: str, turn: dict[str, Any]) -> dict[str, Any]:
    if "tool_use" in turn:
        spec = turn["tool_use"]
        content: list[dict[str, Any]] = [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}",
                                          "name": spec["name"], "input": spec.get("input", {})}]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": str(turn.get("text") or turn.get("stall") or "done")}]
        stop = "end_turn"
    return {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 12, **turn.get("usage", {})}}


def _tool_results(body: dict[str, Any]) -> list[str]:
    """The tool_result texts in the last user message (what the CLI's tools really returned)."""
    messages = body.get("messages") or []
    if not messages or not isinstance(messages[-1].get("content"), list):
        return []
    out = []
    for block in messages[-1]["content"]:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            content = block.get("content")
            if isinstance(content, list):
                content = "".join(c.get("text", "") for c in content if isinstance(c, dict))
            out.append(str(content))
    return out
