"""The stand-in ``claude`` executable: a real process speaking the CLI's stream-json protocol.

It runs as a script with the standard library only (``python -I -S``), so it starts in milliseconds and
does not import the package it ships in: spawning it costs what spawning a small CLI costs. It is what the
tests, the demo and users' own offline tests run instead of the real CLI.

Protocol, as ``claude-code-sdk`` drives the real CLI:
- string mode: ``--output-format stream-json --verbose --print -- PROMPT`` with stdin closed;
- streaming mode: ``--input-format stream-json``: it answers the ``initialize`` control request with a
  ``control_response`` and runs the scenario for each ``user`` message, until stdin ends.
- ``--max-budget-usd X``: a result whose cost is over X becomes the real CLI's ``error_max_budget_usd``
  result (``errors: ["Reached maximum budget ($X)"]``, no result text, the cost spent, exit 1).
Every process it starts and its own pid are appended to ``$CLAUDE_STANDIN_PID_FILE`` (``pid role`` lines).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

if not __package__:  # run as a script (python -I -S): the scenario module sits beside this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _scenario import (  # type: ignore[import-not-found,no-redef,unused-ignore]
        PID_FILE_ENV,
        SCENARIO_ENV,
        Scenario,
        ScenarioError,
        load_scenario,
    )
else:
    from ._scenario import PID_FILE_ENV, SCENARIO_ENV, Scenario, ScenarioError, load_scenario

VERSION = "2.1.197"
_VALUE_FLAGS = {
    "--output-format", "--input-format", "--system-prompt", "--append-system-prompt", "--allowedTools",
    "--max-turns", "--disallowedTools", "--model", "--permission-prompt-tool", "--permission-mode",
    "--resume", "--settings", "--add-dir", "--mcp-config", "--fallback-model", "--session-id", "--max-budget-usd",
}


class Output:
    """Writes whole lines to fd 1 without Python's buffering, so a hang after message N is after N lines."""

    def __init__(self) -> None:
        self.fd = sys.stdout.fileno()

    def raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def line(self, obj: dict[str, Any]) -> None:
        self.raw(json.dumps(obj, separators=(",", ":")).encode() + b"\n")


class Run:
    """One scenario run: the counters the result line reports."""

    def __init__(self, scenario: Scenario, out: Output, cwd: str, permission_mode: str | None,
                 max_budget_usd: str | None = None) -> None:
        self.s = scenario
        self.max_budget_usd = max_budget_usd
        #: the result was over --max-budget-usd: the CLI exits 1, as the real one does
        self.over_budget = False
        self.out = out
        self.cwd = cwd
        self.permission_mode = permission_mode or "default"
        self.session_id = scenario.session_id or str(uuid.uuid4())
        self.started = time.monotonic()
        self.turns = 1
        self.last_text = ""
        self.first_message = True

    def _pause(self) -> None:
        if self.s.delay_s and not self.first_message:
            time.sleep(self.s.delay_s)
        self.first_message = False

    def emit(self, obj: dict[str, Any]) -> None:
        self._pause()
        self.out.line(obj)

    def init(self) -> None:
        self.emit({
            "type": "system", "subtype": "init", "cwd": self.cwd, "session_id": self.session_id,
            "tools": ["Bash", "Read", "Write", "Edit", "Glob", "Grep", "WebSearch"], "mcp_servers": [],
            "model": self.s.model, "permissionMode": self.permission_mode, "apiKeySource": "none",
            "claude_code_version": VERSION, "output_style": "default", "uuid": str(uuid.uuid4()),
        })

    def assistant(self, blocks: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "type": "assistant",
            "message": {
                "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
                "model": self.s.model, "content": blocks, "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 5},
            },
            "parent_tool_use_id": None, "session_id": self.session_id, "uuid": str(uuid.uuid4()),
        }

    def text(self, text: str) -> None:
        self.last_text = text
        self.emit(self.assistant([{"type": "text", "text": text}]))

    def tool(self, spec: dict[str, Any]) -> None:
        tool_id = f"toolu_{uuid.uuid4().hex[:24]}"
        tool_input = spec.get("input", {})
        self.emit(self.assistant([{"type": "tool_use", "id": tool_id, "name": spec["name"], "input": tool_input}]))
        output, is_error = self._run_tool(spec["name"], tool_input)
        output = spec.get("output", output)
        is_error = spec.get("is_error", is_error)
        self.turns += 1
        self.emit({
            "type": "user",
            "message": {"role": "user", "content": [
                {"tool_use_id": tool_id, "type": "tool_result", "content": output, "is_error": is_error},
            ]},
            "parent_tool_use_id": None, "session_id": self.session_id, "uuid": str(uuid.uuid4()),
        })

    def _run_tool(self, name: str, tool_input: dict[str, Any]) -> tuple[str, bool]:
        # Real side effects, so evidence checks downstream have something true to check.
        if name == "Write":
            path = os.path.join(self.cwd, str(tool_input.get("file_path", "out.txt")))
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(str(tool_input.get("content", "")))
            return f"File created successfully at: {path}", False
        if name == "Bash":
            proc = subprocess.Popen(
                str(tool_input.get("command", "true")), shell=True, cwd=self.cwd,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
            record_pid(proc.pid, "bash")
            stdout, _ = proc.communicate()
            return stdout.decode(errors="replace"), proc.returncode != 0
        return f"{name} done", False

    def spawn(self, spec: dict[str, Any]) -> None:
        if spec.get("escape", False):
            self.escape(float(spec.get("seconds", 3600)))
            return
        hold = bool(spec.get("hold_stdout", False))
        proc = subprocess.Popen(
            ["sleep", str(spec.get("seconds", 3600))],
            stdin=subprocess.DEVNULL,
            stdout=None if hold else subprocess.DEVNULL,
            stderr=None if hold else subprocess.DEVNULL,
            start_new_session=bool(spec.get("new_session", False)),
        )
        record_pid(proc.pid, "grandchild")

    def escape(self, seconds: float) -> None:
        """A descendant that sheds every mark: double fork, ``setsid``, ``execve`` with an empty environment.

        Only a cgroup still holds it; the pid file (read by leak_guard) is written before the exec."""
        pid_file = os.environ.get(PID_FILE_ENV)
        child = os.fork()
        if child == 0:
            try:
                os.setsid()
                if os.fork() == 0:
                    if pid_file:
                        os.environ[PID_FILE_ENV] = pid_file
                        record_pid(os.getpid(), "escaped")
                    devnull = os.open(os.devnull, os.O_RDWR)  # as a daemon does: no pipe of the CLI held
                    for fd in (0, 1, 2):
                        os.dup2(devnull, fd)
                    os.execve("/bin/sleep", ["sleep", str(seconds)], {})
            finally:
                os._exit(0)
        os.waitpid(child, 0)

    def burst(self, spec: dict[str, Any]) -> None:
        count, size = int(spec["count"]), int(spec.get("text_bytes", 200))
        pad = "x" * max(0, size)
        head = json.dumps(self.assistant([{"type": "text", "text": "@@"}]), separators=(",", ":"))
        before, after = head.split("@@")
        chunk: list[str] = []
        for i in range(count):
            chunk.append(f"{before}{i} {pad}{after}\n")
            if len(chunk) == 2000:
                self.out.raw("".join(chunk).encode())
                chunk.clear()
        if chunk:
            self.out.raw("".join(chunk).encode())
        self.last_text = f"burst of {count}"

    def step(self, step: dict[str, Any]) -> None:
        kind, value = next(iter(step.items()))
        if kind == "text":
            self.text(value)
        elif kind == "thinking":
            self.emit(self.assistant([{"type": "thinking", "thinking": value, "signature": "sig-standin"}]))
        elif kind == "tool":
            self.tool(value)
        elif kind == "sleep":
            time.sleep(value)
        elif kind == "hang":
            hang()
        elif kind == "raw":
            self._pause()
            self.out.raw(value.encode("utf-8", "surrogateescape") + b"\n")  # "\udcff" is the byte 0xff
        elif kind == "malformed_json":
            self._pause()
            self.out.raw(b'{"type":"assistant","message":{"content":[{"type":"text","text":"trunc\n')
        elif kind == "long_line_bytes":
            self.text("L" * value)
        elif kind == "spaces":
            self.text("start" + " " * value + "end")
        elif kind == "spawn":
            self.spawn(value)
        elif kind == "stderr":
            sys.stderr.write(value + "\n")
            sys.stderr.flush()
        elif kind == "burst":
            self.burst(value)
        elif kind == "exit":
            os._exit(value)

    def result(self) -> None:
        if self.s.result is None:
            return
        elapsed_ms = int((time.monotonic() - self.started) * 1000)
        line: dict[str, Any] = {
            "type": "result", "subtype": "success", "is_error": False, "duration_ms": elapsed_ms,
            "duration_api_ms": max(0, elapsed_ms - 1), "num_turns": self.turns, "result": self.last_text,
            "session_id": self.session_id, "total_cost_usd": 0.0123,
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "output_tokens": 5, "service_tier": "standard"},
            "permission_denials": [], "uuid": str(uuid.uuid4()),
        }
        line.update(self.s.result)
        for key in self.s.omit_result_keys:
            line.pop(key, None)
        cost = line.get("total_cost_usd")
        if self.max_budget_usd is not None and isinstance(cost, int | float) and cost > float(self.max_budget_usd):
            line.update(subtype="error_max_budget_usd", is_error=True,
                        errors=[f"Reached maximum budget (${self.max_budget_usd})"])
            line.pop("result", None)
            self.over_budget = True
        self.emit(line)

    def play(self) -> None:
        for step in self.s.steps:
            self.step(step)
        self.result()


def hang() -> None:
    while True:
        time.sleep(3600)


def record_pid(pid: int, role: str) -> None:
    path = os.environ.get(PID_FILE_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{pid} {role}\n".encode())
    finally:
        os.close(fd)


def parse_args(argv: list[str]) -> dict[str, Any]:
    """Accept every flag the SDK builds; unknown ``--flags`` (extra_args) are tolerated as the CLI does."""
    args: dict[str, Any] = {"prompt": None, "print": False}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args["prompt"] = " ".join(argv[i + 1:])
            break
        if arg in ("--print", "-p"):
            args["print"] = True
        elif arg in ("--version", "-v"):
            args["version"] = True
        elif arg in _VALUE_FLAGS and i + 1 < len(argv):
            args[arg.lstrip("-")] = argv[i + 1]
            i += 1
        elif not arg.startswith("-") and args["print"] and args["prompt"] is None:
            args["prompt"] = arg
        i += 1
    return args


def streaming(scenario: Scenario, out: Output, args: dict[str, Any]) -> int:
    for raw in sys.stdin.buffer:
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError:
            sys.stderr.write("claude-standin: invalid JSON on stdin\n")
            return 1
        kind = msg.get("type")
        if kind == "control_request":
            request = msg.get("request", {})
            if request.get("subtype") == "initialize" and not scenario.answer_initialize:
                continue
            out.line({"type": "control_response", "response": {
                "subtype": "success", "request_id": msg.get("request_id"),
                "response": {"commands": [], "output_style": "default"}
                if request.get("subtype") == "initialize" else {},
            }})
        elif kind == "user" and one_turn(scenario.for_prompt(_text_of(msg)), out, args):
            return 1
    return int(scenario.exit_code)


def _text_of(message: dict[str, Any]) -> str:
    """A streamed user message's text (its content: a string, or blocks with text)."""
    content = (message.get("message") or {}).get("content", "")
    if isinstance(content, str):
        return content
    return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))


def one_turn(scenario: Scenario, out: Output, args: dict[str, Any]) -> bool:
    """Play the scenario once; True when its result was over ``--max-budget-usd``."""
    run = Run(scenario, out, os.getcwd(), args.get("permission-mode"), args.get("max-budget-usd"))
    if scenario.init:
        run.init()
    run.play()
    if scenario.stderr:
        sys.stderr.write(scenario.stderr + "\n")
        sys.stderr.flush()
    return run.over_budget


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.get("version"):
        print(f"{VERSION} (Claude Code stand-in)")
        return 0
    try:
        scenario = load_scenario(os.environ.get(SCENARIO_ENV))
    except ScenarioError as exc:
        sys.stderr.write(f"claude-standin: bad scenario: {exc}\n")
        return 2
    if args.get("output-format") != "stream-json":
        sys.stderr.write("claude-standin: only --output-format stream-json is supported\n")
        return 2
    if scenario.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record_pid(os.getpid(), "cli")
    out = Output()
    try:
        if args.get("input-format") == "stream-json":
            return streaming(scenario, out, args)
        if not args["print"] or args["prompt"] is None:
            sys.stderr.write("claude-standin: expected --print -- PROMPT or --input-format stream-json\n")
            return 2
        if one_turn(scenario.for_prompt(args["prompt"]), out, args):
            return 1
    except BrokenPipeError:
        return 1  # the reader went away; as the real CLI, just stop
    return int(scenario.exit_code)


if __name__ == "__main__":
    sys.exit(main())
