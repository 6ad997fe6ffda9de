"""Our files are private: the journal, message logs and run pages hold prompts, transcripts and tool output.

Directories are made ``0700`` and files ``0600`` whatever the umask (the mode is set, not requested), and an
existing ``.claude-scope`` made wider by an older version is narrowed when a journal opens it. For a journal
shared by a group (several users running pipelines in one checkout), ``CLAUDE_SCOPE_SHARE=group`` makes them
``2770`` (setgid: new files keep the directory's group) and ``0660``. A CLI run as another user
(``options.user``) needs none of these: it reads the project, never our state.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import IO

SHARE_ENV = "CLAUDE_SCOPE_SHARE"
#: the journal's place in a project (``Journal``'s default; kept here, where reading commands find it cheaply)
DEFAULT_JOURNAL = Path(".claude-scope") / "runs.db"


def modes() -> tuple[int, int]:
    """(directory mode, file mode) for our files here."""
    if os.environ.get(SHARE_ENV, "").strip().lower() == "group":
        return 0o2770, 0o660
    return 0o700, 0o600


def private_dir(path: Path) -> Path:
    """``path`` and any parent it had to make, with our directory mode; an existing one of ours narrowed."""
    dir_mode, _ = modes()
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    for made in [*missing, *([path] if not missing else [])]:
        _set_mode(made, dir_mode)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` if missing (empty) with our file mode; narrow it if it is ours and wider."""
    _, file_mode = modes()
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode))
    _set_mode(path, file_mode)
    return path


def open_append(path: Path) -> IO[str]:
    """``path`` opened to append text, created with our file mode."""
    _, file_mode = modes()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, file_mode)
    with contextlib.suppress(OSError):
        os.fchmod(fd, file_mode)
    return os.fdopen(fd, "a", encoding="utf-8")


def _set_mode(path: Path, mode: int) -> None:
    """Set ``mode`` on a path we own (another user's, in a shared journal, is left to them)."""
    with contextlib.suppress(OSError):
        info = path.stat()
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != mode:
            path.chmod(mode)
