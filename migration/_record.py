"""Recording where V3's imports pointed, so ``CLAUDE_SCOPE_MODE=legacy`` can load that module again.

``claude-scope migrate --write`` writes ``legacy_module = "<dotted name>"`` under ``[tool.claude-scope]`` in
the project's ``pyproject.toml`` (the nearest one above the migrated paths), or, in a project without one,
in ``.claude-scope/migration.toml`` beside them (a new ``pyproject.toml`` would change how pip builds the
project). A value already recorded is kept: the first migration knows the original best.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

HEADER = "[tool.claude-scope]"


def project_root(paths: list[Path]) -> Path:
    """The folder the project runs from: the nearest with a project marker above the paths; without one,
    the current directory when the paths are in it or one level below (``migrate src`` run from the
    project, where a run of the project looks for the record too), else the folder holding the top
    package."""
    start = paths[0].resolve()
    start = start if start.is_dir() else start.parent
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists() \
                or (folder / "requirements.txt").exists():
            return folder
    here = Path.cwd().resolve()
    if here in (start, start.parent):
        return here
    while (start / "__init__.py").exists():
        start = start.parent
    return start


def record_legacy(paths: list[Path], module: str) -> Path | None:
    """Record ``module`` (see module doc); return the file written, or None when one was already recorded."""
    root = project_root(paths)
    target = root / "pyproject.toml"
    if not target.exists():
        target = root / ".claude-scope" / "migration.toml"
        target.parent.mkdir(parents=True, exist_ok=True)
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    try:
        table = tomllib.loads(text).get("tool", {}).get("claude-scope", {})
    except tomllib.TOMLDecodeError:
        return None  # not ours to repair; legacy mode will say that nothing is recorded
    if table.get("legacy_module"):
        return None
    line = f'legacy_module = "{module}"  # where V3 was imported from; read by CLAUDE_SCOPE_MODE=legacy\n'
    if HEADER in text:
        head, _, tail = text.partition(HEADER + "\n")
        text = f"{head}{HEADER}\n{line}{tail}"
    else:
        text = f"{text}{'' if not text or text.endswith(chr(10)) else chr(10)}\n{HEADER}\n{line}"
    target.write_text(text, encoding="utf-8")
    return target
