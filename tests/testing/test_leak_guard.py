"""The leak_guard fixture really fails leaking tests (checked by running pytest on such tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LEAKY = '''
import asyncio, os, subprocess

def test_leaks_a_process(leak_guard):
    subprocess.Popen(["sleep", "30"])

def test_leaks_a_descriptor(leak_guard):
    global kept
    kept = os.open(os.devnull, os.O_RDONLY)

def test_task_exception_never_retrieved(leak_guard):
    async def boom():
        raise ValueError("lost")
    async def main():
        asyncio.get_running_loop().create_task(boom())
        await asyncio.sleep(0.01)
    asyncio.run(main())

def test_clean(leak_guard):
    subprocess.run(["true"], check=True)
'''


def test_leak_guard_catches_each_kind_of_leak(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "sdk_wrapper.testing.pytest_plugin", "-q", "-p", "no:cacheprovider",
         "-o", "addopts=", "-W", "ignore", str(tmp_path / "test_leaky.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    out = proc.stdout
    assert "4 passed, 3 errors" in out, out  # teardown errors on the 3 leaky tests; test_clean has none
    assert "ERROR test_leaky.py::test_clean" not in out
    assert "new descendant processes are alive" in out
    assert "open descriptors" in out
    assert "Task exception was never retrieved" in out
