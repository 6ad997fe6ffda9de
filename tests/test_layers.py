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
    assert "_run" not in _imported("orchestrator/_cli/_temporal.py")  # the Temporal family does not reach back
    assert "_read" not in _imported("orchestrator/_cli/_temporal.py")
    assert "_checks" not in _imported("orchestrator/_context.py")


def test_status_and_runs_import_no_sdk() -> None:
    """Nothing of the wrapper either, but the lazy packages' helper (``sdk_wrapper.lowlevel.lazy_names``)."""
    light = ("sdk_wrapper", "sdk_wrapper._lazy", "sdk_wrapper.lowlevel")
    code = ("import sys; import orchestrator._cli._runs, orchestrator._cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('claude_code_sdk', 'claude_agent_sdk', "
            f"'sdk_wrapper', 'psutil', 'mcp') and m not in {light!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_reading_commands_import_no_sdk(tmp_path: Path) -> None:
    """``report`` and ``masked`` on a journal with a run, and the Temporal reading commands' modules: no SDK,
    no httpx, tenacity or jinja2 (what made them take a second: ``python -m benchmarks.bench_cli``)."""
    (tmp_path / "p.toml").write_text('[[phases]]\nname = "a"\nprompt = "x"\nscenario = "ok"\n')
    subprocess.run([sys.executable, "-m", "orchestrator._cli", "--project-dir", str(tmp_path), "run",
                    str(tmp_path / "p.toml"), "--simulate"], capture_output=True, check=True)
    code = ("import sys; from orchestrator._cli import main; d = sys.argv[1]; "
            "codes = [main(['--project-dir', d, 'report', '--out', d + '/page.html']), main(['--project-dir', d, "
            "'masked'])]; import orchestrator._cli._temporal; "
            "print(codes, sorted({m.split('.')[0] for m in sys.modules} & {'claude_code_sdk', 'claude_agent_sdk', "
            "'mcp', 'httpx', 'tenacity', 'jinja2'}))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[0, 0] []", done.stdout
    assert "<html" in (tmp_path / "page.html").read_text()[:200].lower()
