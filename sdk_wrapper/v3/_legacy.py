"""``CLAUDE_SCOPE_MODE=legacy``: run the project's own V3 module again, or say plainly why it cannot run.

Rollbacks happen under pressure, so this mode never guesses and never falls back in silence. The module
to load is, in order: ``CLAUDE_SCOPE_LEGACY_MODULE`` (a dotted name), or ``legacy_module`` under
``[tool.claude-scope]`` in the project's ``pyproject.toml`` (or ``.claude-scope/migration.toml``), which
``claude-scope migrate --write`` records from the import it rewrote (V3's module lives at
``src/claude_code_sdk_fixed_v3.py``: ``src.claude_code_sdk_fixed_v3``). The file that recorded it is
searched from the working directory upward, then from the current directory; its folder goes on
``sys.path`` so the dotted name resolves.

The known conflict: V3's module patches ``claude_code_sdk._internal.client.InternalClient._parse_message``,
which exists only in claude-code-sdk 0.0.10; claude-scope runs on 0.0.25, where importing V3's module
raises ``AttributeError``. One environment cannot hold both, so on our SDK legacy mode fails at its first
query with ``LegacyModeError`` naming the way back (``claude-scope migrate --revert`` and
``pip install claude-code-sdk==0.0.10``), before any CLI starts.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import tomllib
from pathlib import Path
from types import ModuleType

from .._errors import ClaudeScopeError

LEGACY_ENV = "CLAUDE_SCOPE_LEGACY_MODULE"
RECORD_FILES = ("pyproject.toml", str(Path(".claude-scope") / "migration.toml"))
_lock = threading.Lock()
_loaded: dict[str, ModuleType] = {}


class LegacyModeError(ClaudeScopeError, RuntimeError):
    """Legacy mode was asked for but the V3 module cannot run here; the message says what to do."""


def recorded_module(start: Path) -> tuple[str, Path] | None:
    """The ``legacy_module`` recorded by the codemod, with the folder of the file that records it."""
    for base in (start.resolve(), Path.cwd()):
        for folder in (base, *base.parents):
            for name in RECORD_FILES:
                path = folder / name
                if not path.is_file():
                    continue
                try:
                    table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("claude-scope", {})
                except (OSError, tomllib.TOMLDecodeError):
                    continue
                module = table.get("legacy_module")
                if isinstance(module, str) and module:
                    return module, folder
    return None


_HOW_BACK = ("To roll back: `claude-scope migrate --revert PATH` restores the original imports, then "
             "`pip install claude-code-sdk==0.0.10` (V3's module patches internals that only that version has; "
             "claude-scope needs 0.0.25, so the two cannot share one environment). To keep running, unset "
             "CLAUDE_SCOPE_MODE (the scoped wrapper is the default).")


def load_legacy(working_dir: Path) -> ModuleType:
    """Import the project's V3 module (once per process); ``LegacyModeError`` with the reason otherwise."""
    name, root = os.environ.get(LEGACY_ENV) or None, None
    if name is None:
        found = recorded_module(working_dir)
        if found is None:
            raise LegacyModeError(
                "CLAUDE_SCOPE_MODE=legacy, but no V3 module is recorded: set CLAUDE_SCOPE_LEGACY_MODULE to its "
                "dotted name (e.g. src.claude_code_sdk_fixed_v3), or let `claude-scope migrate --write` record it "
                "in [tool.claude-scope] legacy_module.")
        name, root = found
    with _lock:
        if name in _loaded:
            return _loaded[name]
        if root is not None and str(root) not in sys.path:
            sys.path.insert(0, str(root))
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # ImportError, or the AttributeError of V3's patch on our SDK version
            raise LegacyModeError(f"CLAUDE_SCOPE_MODE=legacy: the V3 module {name!r} cannot be loaded here "
                                  f"({type(exc).__name__}: {exc}). {_HOW_BACK}") from exc
        if not callable(getattr(module, "query_v3", None)):
            raise LegacyModeError(f"CLAUDE_SCOPE_MODE=legacy: {name!r} has no query_v3. {_HOW_BACK}")
        _loaded[name] = module
        return module
