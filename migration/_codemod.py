"""The import codemod: ``claude_code_sdk_fixed_v3`` (and its v2/v4 siblings) -> ``sdk_wrapper.v3``.

Works on the syntax tree (libcst), so formatting and comments stay exactly as they were; only the module
of each matching import changes. Relative and absolute forms are both rewritten:

    from .claude_code_sdk_fixed_v3 import query_v3, ClaudeCodeOptions  ->  from sdk_wrapper.v3 import ...
    from src.claude_code_sdk_fixed_v3 import query_v3 as q            ->  from sdk_wrapper.v3 import query_v3 as q
    import claude_code_sdk_fixed_v3      ->  import sdk_wrapper.v3 as claude_code_sdk_fixed_v3

An imported name the drop-in does not offer with the same meaning (v2's ``query``, which is not the raw
SDK's) is left untouched and reported for review. A file that does not parse is left untouched and
reported.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

TARGET = "sdk_wrapper.v3"
_OLD = re.compile(r"^claude_code_sdk_fixed_v[234]$")
#: names the drop-in offers with V3's meaning, beyond the SDK's own (which it re-exports)
_DROP_IN_NAMES = {"query_v3", "get_v3_wrapper", "V3QueryWrapper"}
_NOT_THE_SAME = {"query"}  # v2's own query wrapper; sdk_wrapper.v3.query would be the raw SDK's
_SKIP_DIRS = {".venv", "venv", "node_modules", "__pycache__", ".git", "build", "dist"}


@dataclass
class FileResult:
    path: Path
    changed: bool = False
    diff: str = ""
    notes: list[str] = field(default_factory=list)
    error: str = ""


def _dotted(node: cst.BaseExpression | None) -> str:
    if node is None:
        return ""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _target_expr() -> cst.Attribute:
    return cst.Attribute(value=cst.Name("sdk_wrapper"), attr=cst.Name("v3"))


class _Rewriter(cst.CSTTransformer):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        module = _dotted(updated.module)
        if not module or not _OLD.match(module.split(".")[-1]):
            return updated
        if not isinstance(updated.names, cst.ImportStar):
            kept = [a for a in updated.names if _dotted(a.name) in _NOT_THE_SAME]
            if kept:
                dots = "." * len(updated.relative)
                self.notes.append(f"left `from {dots}{module} import {', '.join(_dotted(a.name) for a in kept)}` "
                                  "untouched: that name is not V3's query_v3; review by hand")
                return updated
        return updated.with_changes(module=_target_expr(), relative=[])

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
        names = []
        for alias in updated.names:
            module = _dotted(alias.name)
            if _OLD.match(module.split(".")[-1]):
                bound = alias.asname.name if alias.asname else cst.Name(module.split(".")[-1])
                if not alias.asname and "." in module:
                    self.notes.append(f"`import {module}` rewritten: code that spells the dotted path must use "
                                      f"the name {module.split('.')[-1]}")
                names.append(alias.with_changes(name=_target_expr(), asname=cst.AsName(name=bound)))
            else:
                names.append(alias)
        return updated.with_changes(names=names)


def rewrite_source(source: str) -> tuple[str, list[str]]:
    """The rewritten source and notes; raises ``libcst.ParserSyntaxError`` when it does not parse."""
    module = cst.parse_module(source)
    rewriter = _Rewriter()
    return module.visit(rewriter).code, rewriter.notes


def rewrite_file(path: Path, *, write: bool) -> FileResult:
    result = FileResult(path)
    try:
        source = path.read_text(encoding="utf-8")
        new, result.notes = rewrite_source(source)
    except (cst.ParserSyntaxError, UnicodeDecodeError) as exc:
        result.error = f"could not parse, left untouched: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        return result
    if new != source:
        result.changed = True
        result.diff = "".join(difflib.unified_diff(source.splitlines(True), new.splitlines(True),
                                                   f"a/{path}", f"b/{path}"))
        if write:
            path.write_text(new, encoding="utf-8")
    return result


def python_files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.py") if not _SKIP_DIRS.intersection(p.parts))
        elif path.suffix == ".py":
            found.append(path)
    return found


def migrate(paths: list[Path], *, write: bool) -> list[FileResult]:
    """Rewrite (``write``) or only diff every Python file under ``paths``."""
    return [rewrite_file(p, write=write) for p in python_files(paths)]
