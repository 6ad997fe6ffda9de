"""``ResourceTracker``: everything the wrapper opened, and whether it is still open.

Pass one tracker to many queries (``open_query(..., tracker=t)``) and ``t.verify()`` afterwards lists
what is still open: live CLI processes and unclosed streams or HTTP clients. Processes are checked with
psutil at verify time, so a process that died on its own is not reported.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class OpenResource:
    kind: str
    name: str
    ident: int


class ResourceTracker:
    """Thread-safe registry of processes and closeable objects the wrapper opened."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: dict[int, str] = {}
        self._objects: dict[int, tuple[str, str]] = {}
        self.opened = 0

    def add_process(self, pid: int, name: str) -> None:
        with self._lock:
            self._processes[pid] = name
            self.opened += 1

    def discard_process(self, pid: int) -> None:
        with self._lock:
            self._processes.pop(pid, None)

    def add(self, obj: object, kind: str, name: str) -> None:
        with self._lock:
            self._objects[id(obj)] = (kind, name)
            self.opened += 1

    def discard(self, obj: object) -> None:
        with self._lock:
            self._objects.pop(id(obj), None)

    def verify(self) -> list[OpenResource]:
        """What is still open; empty when everything the wrapper opened has been closed or has ended."""
        with self._lock:
            processes = dict(self._processes)
            objects = dict(self._objects)
        still: list[OpenResource] = []
        for pid, name in processes.items():
            try:
                proc = psutil.Process(pid)
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    still.append(OpenResource("process", name, pid))
            except psutil.Error:
                pass
        still.extend(OpenResource(kind, name, ident) for ident, (kind, name) in objects.items())
        return still
