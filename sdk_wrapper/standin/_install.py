"""Putting the stand-in where an SDK looks for ``claude``, and reading back the pids it recorded."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

import psutil

#: the stand-in's script file (stdlib only, runnable by any Python >= 3.11)
_SCRIPT = Path(__file__).with_name("_standin.py")


def install_standin(directory: str | os.PathLike[str], name: str = "claude") -> Path:
    """Write an executable ``name`` into ``directory`` that runs the stand-in, and return its path.

    Put ``directory`` first on ``PATH`` and ``claude-code-sdk`` (which finds the CLI by PATH) runs it.
    """
    target = Path(directory) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # what we execute lives where no other user can replace it, any umask
        if target.parent.stat().st_uid == os.geteuid():
            target.parent.chmod(0o755)
    # -IS: one shebang argument; isolated mode and no site-packages, so it starts fast.
    text = (f"#!{sys.executable} -IS\n"
            "import runpy\n"
            f"runpy.run_path({str(_SCRIPT)!r}, run_name='__main__')\n")
    with contextlib.suppress(OSError):
        if target.read_text(encoding="utf-8") == text and os.access(target, os.X_OK):
            return target  # already there: another orchestrator on this project may be running it right now
    # Written beside it and renamed over it: a process starting the old file never sees a half-written one.
    temporary = target.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(0o755)
    os.replace(temporary, target)
    return target


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process. A zombie is not: it has ended and only waits to be reaped
    (by its parent, or by an init that may never reap it)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def read_pids(pid_file: str | os.PathLike[str]) -> list[tuple[int, str]]:
    """(pid, role) pairs the stand-in recorded; an absent file means it recorded none."""
    path = Path(pid_file)
    if not path.exists():
        return []
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        pid, _, role = line.partition(" ")
        if pid.isdigit():
            pairs.append((int(pid), role))
    return pairs
