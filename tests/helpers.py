"""Helpers shared by the tests: options for a stand-in scenario, and one query through either API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from claude_code_sdk import ClaudeCodeOptions

from sdk_wrapper import QueryLimits, QueryOutcome, open_query, run_query
from sdk_wrapper.testing import scenario_env

#: the SDK packages the wrapper drives; tests parametrized over ``sdk`` run once through each.
SDKS = ["code-sdk", "agent-sdk"]


def options_for(scenario: str | dict[str, Any], cwd: Path, **extra: Any) -> ClaudeCodeOptions:
    return ClaudeCodeOptions(cwd=str(cwd), env=scenario_env(scenario), **extra)


def sdk_options(sdk: str, scenario: str | dict[str, Any], cwd: Path, **extra: Any) -> Any:
    """Options of the named SDK (``ClaudeCodeOptions`` or ``ClaudeAgentOptions``) for a stand-in scenario."""
    if sdk == "code-sdk":
        return options_for(scenario, cwd, **extra)
    from claude_agent_sdk import ClaudeAgentOptions

    return ClaudeAgentOptions(cwd=str(cwd), env=scenario_env(scenario), **extra)


async def drive(mode: str, prompt: str, options: Any, cli: Path,
                limits: QueryLimits | None = None) -> QueryOutcome:
    """Run one query through run_query or open_query (consuming every message)."""
    if mode == "run":
        return await run_query(prompt, options, limits=limits, cli_path=cli)
    async with open_query(prompt, options, limits=limits, cli_path=cli) as stream:
        async for _ in stream:
            pass
    return stream.outcome


def cgroups_or_skip() -> None:
    """Skip (the reason shows in pytest's -ra summary) where per-query cgroups are not available here."""
    import pytest

    from sdk_wrapper._containment._cgroup import host_cgroup

    support = host_cgroup()
    if support.host is None:
        pytest.skip(f"cgroup v2 is not writable here: {support.reason}")


#: two sequential phases for pipeline-file tests: the second's scenario is filled in with ``.format(second=...)``
TWO_PHASES = """
[[phases]]
name = "first"
prompt = "one"
scenario = "ok"
[[phases]]
name = "second"
prompt = "two"
scenario = "{second}"
"""


def phase_live(db: Path, name: str) -> Callable[[], bool]:
    """A predicate for ``wait_for``: the journal at ``db`` (once it exists) records a live CLI of phase ``name``."""
    from orchestrator import Journal

    def live() -> bool:
        if not db.exists():
            return False
        with Journal(db) as journal:
            return any(p.name == name for p in journal.live_processes())

    return live


def wait_for(predicate: Callable[[], object], seconds: float, interval: float = 0.02) -> None:
    """Poll ``predicate`` every ``interval`` until it is true; AssertionError after ``seconds``."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


async def until(predicate: Callable[[], object], seconds: float) -> None:
    """``wait_for`` for async tests: polls without blocking the event loop (an in-process worker runs on it)."""
    import anyio

    with anyio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110 - the predicate reads other processes, which set no Event
            await anyio.sleep(0.02)


def make_repo(path: Path) -> Path:
    """A real git repository at ``path`` with one commit (a README) that ignores our state."""
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    path.mkdir(parents=True)
    git("init", "-q", "-b", "main")
    (path / "README.md").write_text("hello\n")
    (path / ".gitignore").write_text(".claude-scope/\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    return path


@contextmanager
def hook_server(posted: list[dict[str, Any]]) -> Iterator[str]:
    """A real HTTP server on loopback that records each POSTed JSON body (with its ``Authorization`` header as
    ``auth``) in ``posted`` and answers 204; yields its URL. Shut down and closed on the way out."""
    import http.server
    import json
    import threading

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            posted.append({**body, "auth": self.headers.get("Authorization", "")})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
