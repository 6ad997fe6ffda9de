"""Layers you can see: the module pairs that once imported each other no longer do, and the fast commands'
module imports nothing that would import an SDK."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _imported(path: str) -> set[str]:
    """The last part of every module ``path`` imports (at run time or for type checking)."""
    found = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[-1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[-1] for alias in node.names)
    return found


def test_no_two_way_imports() -> None:
    assert "_model" not in _imported("orchestrator/_checks.py")  # RunContext lives in _context
    assert "_cli_commands" not in _imported("orchestrator/temporal/_commands.py")
    assert "_checks" not in _imported("orchestrator/_context.py")


def test_status_and_runs_import_no_sdk() -> None:
    code = ("import sys; import orchestrator._journal_view, orchestrator._cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('claude_code_sdk', 'claude_agent_sdk', "
            "'sdk_wrapper', 'psutil', 'mcp')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
