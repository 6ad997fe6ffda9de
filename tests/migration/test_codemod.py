"""The import codemod on real-looking V3 files: forms, aliases, ladders, comments, --check, bad files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from migration import migrate, rewrite_source

LADDER = '''"""Phase orchestrator (V3)."""
import anyio  # event loop per phase

# Prefer the fixed wrapper; fall back as V3 did.
try:
    from .claude_code_sdk_fixed_v3 import query_v3, ClaudeCodeOptions, Message, get_v3_wrapper  # relative
except ImportError:
    try:
        from claude_code_sdk_fixed_v3 import (  # absolute
            query_v3,
            ClaudeCodeOptions as Options,  # alias kept
            Message,
            get_v3_wrapper,
        )
    except ImportError:
        from .claude_code_sdk_fixed_v2 import query, ClaudeCodeOptions, Message
        from claude_code_sdk import query, ClaudeCodeOptions, Message
'''


def test_ladder_keeps_formatting_and_comments() -> None:
    new, notes = rewrite_source(LADDER)
    expected = LADDER.replace("from .claude_code_sdk_fixed_v3 import", "from sdk_wrapper.v3 import").replace(
        "from claude_code_sdk_fixed_v3 import (", "from sdk_wrapper.v3 import (")
    assert new == expected  # byte for byte: only the module names changed
    assert notes == ["left `from .claude_code_sdk_fixed_v2 import query` untouched: that name is not V3's "
                     "query_v3; review by hand"]


def test_other_forms() -> None:
    src = ("import claude_code_sdk_fixed_v3\nimport claude_code_sdk_fixed_v4 as v4, os\n"
           "from ..pkg.claude_code_sdk_fixed_v3 import query_v3 as q\nfrom claude_code_sdk_fixed_v2 import *\n"
           "from claude_code_sdk_fixed_v3_extra import x\n")
    new, _ = rewrite_source(src)
    assert new == ("import sdk_wrapper.v3 as claude_code_sdk_fixed_v3\nimport sdk_wrapper.v3 as v4, os\n"
                   "from sdk_wrapper.v3 import query_v3 as q\nfrom sdk_wrapper.v3 import *\n"
                   "from claude_code_sdk_fixed_v3_extra import x\n")


def test_unchanged_file_is_untouched() -> None:
    src = "from claude_code_sdk import query  # raw SDK\n"
    assert rewrite_source(src) == (src, [])


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator._cli", "migrate", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_check_diff_write_and_unparseable(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    target = tmp_path / "src" / "phase_orchestrator.py"
    target.write_text(LADDER)
    broken = tmp_path / "src" / "broken.py"
    broken.write_text("def oops(:\n    from claude_code_sdk_fixed_v3 import query_v3\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "skipped.py").write_text("import claude_code_sdk_fixed_v3\n")
    check = _cli("src", "--check", cwd=tmp_path)
    assert check.returncode == 1
    assert "-    from .claude_code_sdk_fixed_v3 import" in check.stdout
    assert "+    from sdk_wrapper.v3 import" in check.stdout
    assert "broken.py: could not parse, left untouched" in check.stderr
    assert target.read_text() == LADDER  # --check writes nothing
    assert _cli(".", "--write", cwd=tmp_path).returncode == 0
    assert "from sdk_wrapper.v3 import query_v3" in target.read_text()
    assert broken.read_text().startswith("def oops(:")  # untouched
    assert (tmp_path / ".venv" / "skipped.py").read_text() == "import claude_code_sdk_fixed_v3\n"
    assert _cli("src", "--check", cwd=tmp_path).returncode == 0  # nothing left to change
    assert [r.changed for r in migrate([target], write=False)] == [False]
