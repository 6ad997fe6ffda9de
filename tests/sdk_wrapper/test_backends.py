"""The SDK backends: each names every private name of its SDK it uses, and the installed SDK still has them.

When a new SDK release moves a private name, ``test_private_uses_exist`` fails and names it; when the
installed version is not the one a backend was checked against, ``test_checked_version`` fails and says
which module to re-check. The layout rule of the package (imports at module level, none in functions) is
checked here too, because a function-level import is how the old adapter cycle was held together.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest
from claude_agent_sdk import ClaudeAgentOptions
from claude_code_sdk import ClaudeCodeOptions

import sdk_wrapper
from sdk_wrapper._backends import Backend, agent_backend, all_backends, backend_for, code_backend

BACKENDS = [code_backend(), agent_backend()]


def _missing(use: str) -> str | None:
    """None when ``module:attr.path`` resolves (an attribute, or an instance attribute the class's
    constructor assigns); otherwise what is missing."""
    module_name, _, path = use.partition(":")
    try:
        found: object = importlib.import_module(module_name)
    except ImportError:
        return f"module {module_name}"
    for part in path.split("."):
        if hasattr(found, part):
            found = getattr(found, part)
            continue
        if isinstance(found, type):
            source = inspect.getsource(found.__init__)  # type: ignore[misc]
            if re.search(rf"self\.{re.escape(part)}\b[^=\n]*=", source):
                return None  # assigned in __init__: exists on every instance
        return f"{use} (no {part!r})"
    return None


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_private_uses_exist(backend: Backend) -> None:
    missing = [m for m in map(_missing, backend.private_uses()) if m is not None]
    assert not missing, f"{backend.name} {backend.installed_version()} no longer has: {missing}"


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_checked_version(backend: Backend) -> None:
    installed = backend.installed_version()
    assert installed == backend.checked_version, (
        f"{backend.name} {installed} is installed, but {type(backend).__module__} was checked against "
        f"{backend.checked_version}: re-check its private_uses and its behaviour, then update checked_version")


def test_private_uses_cover_every_private_name_in_the_module() -> None:
    """Every ``_name`` a backend module reaches into its SDK with is listed (a use not listed is unchecked)."""
    for backend in BACKENDS:
        source = Path(inspect.getfile(type(backend))).read_text()
        package = backend.name.replace("-", "_")
        imported = set(re.findall(rf"from ({package}[\w.]*) import (\w+)", source))
        listed = set(backend.private_uses())
        for module, name in imported:
            if "._" in f".{module}" or name.startswith("_"):
                assert any(use.startswith(f"{module}:{name}") for use in listed), f"{module}:{name} not listed"
        code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("from ", '"')))
        for name in set(re.findall(r"(?<!self)\.(_[a-z]\w*)\b", code)):
            assert any(re.search(rf"[.:]{name}\b", use) for use in listed), f"{backend.name}: .{name} not listed"


def test_the_options_pick_the_backend() -> None:
    assert backend_for(ClaudeCodeOptions()) is code_backend()
    assert backend_for(ClaudeAgentOptions()) is agent_backend()
    assert backend_for(object()) is None and backend_for({"cwd": "."}) is None
    assert set(all_backends()) == set(BACKENDS)


def test_no_imports_inside_functions() -> None:
    """Imports run one way, at the top of each module; the backends are loaded by name (as anyio does)."""
    root = Path(sdk_wrapper.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found += [f"{path.relative_to(root)}:{inner.lineno}" for inner in ast.walk(node)
                          if isinstance(inner, ast.Import | ast.ImportFrom)]
    assert not found
