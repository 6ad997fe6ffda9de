"""The import codemod on real-looking V3 files: forms, aliases, ladders, comments, --check, bad files."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from migration import migrate, revert_source, rewrite_source
from sdk_wrapper.v3._legacy import recorded_module

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


def _plain(code: str) -> str:
    """The code without the codemod's record comments."""
    return re.sub(r"  # claude-scope-migrate: .*", "", code)


def test_ladder_keeps_formatting_and_comments_and_reverts_exactly() -> None:
    new, notes = rewrite_source(LADDER)
    expected = LADDER.replace("from .claude_code_sdk_fixed_v3 import", "from sdk_wrapper.v3 import").replace(
        "from claude_code_sdk_fixed_v3 import (", "from sdk_wrapper.v3 import (")
    assert _plain(new) == expected  # byte for byte but the record comments: only the module names changed
    assert new.count("# claude-scope-migrate: ") == 2
    assert notes == ["left `from .claude_code_sdk_fixed_v2 import ...` as it is: sdk_wrapper.v3 has no query "
                     "with that meaning; review by hand"]
    assert revert_source(new) == LADDER  # --revert puts back every original, comments inside it included


def test_other_forms() -> None:
    src = ("import claude_code_sdk_fixed_v3\nimport claude_code_sdk_fixed_v4 as v4, os\n"
           "from ..pkg.claude_code_sdk_fixed_v3 import query_v3 as q\nfrom claude_code_sdk_fixed_v2 import *\n"
           "from claude_code_sdk_fixed_v3_extra import x\n")
    new, _ = rewrite_source(src)
    assert _plain(new) == ("import sdk_wrapper.v3 as claude_code_sdk_fixed_v3\nimport sdk_wrapper.v3 as v4, os\n"
                           "from sdk_wrapper.v3 import query_v3 as q\nfrom sdk_wrapper.v3 import *\n"
                           "from claude_code_sdk_fixed_v3_extra import x\n")
    assert revert_source(new) == src


def test_v4_names_package_imports_and_import_module_are_rewritten() -> None:
    src = ("from .claude_code_sdk_fixed_v4 import query_v4_fixed as query, ClaudeCodeOptions, get_v4_fixed_wrapper\n"
           "from . import claude_code_sdk_fixed_v3 as m\nfrom src import claude_code_sdk_fixed_v3\n"
           "mod = importlib.import_module('claude_code_sdk_fixed_v3')\n"
           "rel = import_module('.claude_code_sdk_fixed_v3', package='src')\n")
    new, notes = rewrite_source(src)
    assert _plain(new) == (
        "from sdk_wrapper.v3 import query_v4_fixed as query, ClaudeCodeOptions, get_v4_fixed_wrapper\n"
        "from sdk_wrapper import v3 as m\nfrom sdk_wrapper import v3 as claude_code_sdk_fixed_v3\n"
        'mod = importlib.import_module("sdk_wrapper.v3")\nrel = import_module("sdk_wrapper.v3")\n')
    assert notes == [] and revert_source(new) == src
    import sdk_wrapper.v3 as drop_in  # every name written above exists in the drop-in

    assert all(hasattr(drop_in, n) for n in ("query_v4_fixed", "get_v4_fixed_wrapper", "ClaudeCodeOptions"))


def test_an_import_that_cannot_work_is_never_written(tmp_path: Path) -> None:
    src = ("from .claude_code_sdk_fixed_v3 import _patched_parse_message\n"
           "from . import claude_code_sdk_fixed_v3, helpers\n")
    new, notes = rewrite_source(src)
    assert new == src  # left as it was
    assert "sdk_wrapper.v3 has no _patched_parse_message" in notes[0] and "mixes a V3 module" in notes[1]
    target = tmp_path / "m.py"
    target.write_text(src)
    (result,) = migrate([target], write=False)
    assert [line.split(":")[0] for line in result.left] == ["line 1", "line 2"]


def test_unchanged_file_is_untouched() -> None:
    src = "from claude_code_sdk import query  # raw SDK\n"
    assert rewrite_source(src) == (src, [])


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator._cli", "migrate", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_check_diff_write_record_and_revert(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "__init__.py").write_text("")
    target = tmp_path / "src" / "phase_orchestrator.py"
    target.write_text(LADDER)
    clean = tmp_path / "src" / "clean.py"
    clean.write_text("from .claude_code_sdk_fixed_v3 import query_v3\n")
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
    write = _cli(".", "--write", cwd=tmp_path)
    assert write.returncode == 0
    assert "from sdk_wrapper.v3 import query_v3" in target.read_text()
    assert broken.read_text().startswith("def oops(:")  # untouched
    assert (tmp_path / ".venv" / "skipped.py").read_text() == "import claude_code_sdk_fixed_v3\n"
    # where the original pointed, for legacy mode (no pyproject.toml here, so beside the project)
    record = (tmp_path / ".claude-scope" / "migration.toml").read_text()
    assert 'legacy_module = "src.claude_code_sdk_fixed_v3"' in record
    again = _cli("src", "--check", cwd=tmp_path)  # the v2 rung is left for review: still a V3 reference
    assert again.returncode == 1 and "V3 reference left: line 16" in again.stderr
    assert _cli("src/clean.py", "--check", cwd=tmp_path).returncode == 0  # nothing left in that one
    assert [r.changed for r in migrate([target], write=False)] == [False]
    assert _cli("src", "--revert", cwd=tmp_path).returncode == 0
    assert target.read_text() == LADDER and clean.read_text() == "from .claude_code_sdk_fixed_v3 import query_v3\n"


def test_the_record_goes_into_an_existing_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "runner.py").write_text("from claude_code_sdk_fixed_v3 import query_v3\n")
    assert _cli("runner.py", "--write", cwd=tmp_path).returncode == 0
    text = (tmp_path / "pyproject.toml").read_text()
    assert text.startswith('[project]\nname = "x"\n') and "[tool.claude-scope]" in text
    assert tomllib.loads(text)["tool"]["claude-scope"]["legacy_module"] == "claude_code_sdk_fixed_v3"


def test_without_a_project_marker_the_record_is_where_the_project_is_run_from(tmp_path: Path) -> None:
    """V3's layout (``src/`` a namespace package) in a folder with no pyproject, .git or requirements:
    ``migrate src`` run from that folder records ``src.claude_code_sdk_fixed_v3`` there, where legacy mode,
    started from the same folder, finds it (it used to go into ``src/``, out of legacy mode's sight)."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "phase_orchestrator.py").write_text(LADDER)
    assert _cli("src", "--write", cwd=tmp_path).returncode == 0
    assert not (tmp_path / "src" / ".claude-scope").exists()
    assert recorded_module(tmp_path) == ("src.claude_code_sdk_fixed_v3", tmp_path.resolve())
