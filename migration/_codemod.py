"""The import codemod: ``claude_code_sdk_fixed_v3`` (and its v2/v4 siblings) -> ``sdk_wrapper.v3``, and back.

Works on the syntax tree (libcst), so formatting and comments stay as they were; only the statements that
import V3 change, each keeping its original in a trailing ``# claude-scope-migrate: <original>`` comment,
(as a JSON string) which ``--revert`` puts back exactly. Rewritten:

    from .claude_code_sdk_fixed_v3 import query_v3, ClaudeCodeOptions  ->  from sdk_wrapper.v3 import ...
    from .claude_code_sdk_fixed_v4 import query_v4_fixed as query_v3     ->  from sdk_wrapper.v3 import (same)
    import claude_code_sdk_fixed_v3                  ->  import sdk_wrapper.v3 as claude_code_sdk_fixed_v3
    from . import claude_code_sdk_fixed_v3 as m      ->  from sdk_wrapper import v3 as m
    importlib.import_module("src.claude_code_sdk_fixed_v3")  ->  importlib.import_module("sdk_wrapper.v3")

Never written: an import the drop-in cannot satisfy. A statement naming something ``sdk_wrapper.v3`` does not
offer (v2's own ``query``, a helper of the project's V3 module) is left as it is, with a note; so is one
that mixes V3 modules with other names. Every V3 reference left after the rewrite is reported, and
``--check`` fails while any is left. The module the original imports pointed to (``src.claude_code_sdk_fixed_v3``
for a relative import inside package ``src``) is returned in ``legacy_modules``, for legacy mode.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

import sdk_wrapper.v3 as drop_in

from ._record import project_root

TARGET = "sdk_wrapper.v3"
MARK = "# claude-scope-migrate: "
_OLD = re.compile(r"^claude_code_sdk_fixed_v[234]$")
_ANY_OLD = re.compile(r"claude_code_sdk_fixed_v[234]")
#: names the drop-in offers with the V3/V4 meaning (the SDK's own names are re-exported too), less v2's
#: ``query``: the drop-in's ``query`` is the raw SDK's, which is not what v2's wrapper did
_OFFERED = {n for n in dir(drop_in) if not n.startswith("_")} - {"query"}
_IMPORTERS = {"import_module", "__import__"}
_SKIP_DIRS = {".venv", "venv", "node_modules", "__pycache__", ".git", "build", "dist"}


@dataclass
class FileResult:
    path: Path
    changed: bool = False
    diff: str = ""
    notes: list[str] = field(default_factory=list)
    error: str = ""
    #: V3 references still in the file after the rewrite ("line N: text")
    left: list[str] = field(default_factory=list)
    #: absolute names of the V3 modules the rewritten imports pointed to
    legacy_modules: list[str] = field(default_factory=list)


def _dotted(node: cst.BaseExpression | None) -> str:
    if node is None:
        return ""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _expr(dotted: str) -> cst.Attribute | cst.Name:
    head, *rest = dotted.split(".")
    node: cst.Attribute | cst.Name = cst.Name(head)
    for part in rest:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node


def _package_of(path: Path | None) -> str:
    """The dotted package a file belongs to: folders with ``__init__.py``; or, for a folder without one
    (a namespace package, as V3's ``src/``), its path below the project root."""
    if path is None:
        return ""
    folder = path.resolve().parent
    if not (folder / "__init__.py").exists():
        root = project_root([folder])
        return ".".join(folder.relative_to(root).parts) if folder.is_relative_to(root) else ""
    parts: list[str] = []
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


class _Rewriter(cst.CSTTransformer):
    def __init__(self, path: Path | None) -> None:
        self.notes: list[str] = []
        self.legacy: list[str] = []
        self.package = _package_of(path)
        self._changed = False

    def _absolute(self, module: str, dots: int) -> str:
        if not dots:
            return module
        base = self.package.split(".") if self.package else []
        base = base[: len(base) - (dots - 1)] if dots > 1 else base
        return ".".join([*base, module] if module else base)

    def _legacy(self, name: str) -> None:
        if name.split(".")[-1].endswith("_v3") and name not in self.legacy:
            self.legacy.append(name)

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._changed = False

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        module = _dotted(updated.module)
        dots = len(updated.relative)
        shown = "." * dots + module
        if module and _OLD.match(module.split(".")[-1]):
            if not isinstance(updated.names, cst.ImportStar):
                missing = [_dotted(a.name) for a in updated.names if _dotted(a.name) not in _OFFERED]
                if missing:
                    self.notes.append(f"left `from {shown} import ...` as it is: sdk_wrapper.v3 has no "
                                      f"{', '.join(missing)} with that meaning; review by hand")
                    return updated
            self._legacy(self._absolute(module, dots))
            self._changed = True
            return updated.with_changes(module=_expr(TARGET), relative=[])
        if isinstance(updated.names, cst.ImportStar):
            return updated
        old = [a for a in updated.names if _OLD.match(_dotted(a.name))]
        if not old:
            return updated
        if len(old) != len(updated.names):
            self.notes.append(f"left `from {shown} import ...` as it is: it mixes a V3 module with other names; "
                              "split it, then run the codemod again")
            return updated
        alias = old[0]
        if len(old) > 1:
            self.notes.append(f"left `from {shown} import ...` as it is: it imports several V3 modules")
            return updated
        self._legacy(self._absolute(f"{module}.{_dotted(alias.name)}" if module else _dotted(alias.name), dots))
        self._changed = True
        bound = alias.asname.name if alias.asname else cst.Name(_dotted(alias.name))
        return updated.with_changes(module=cst.Name("sdk_wrapper"), relative=[],
                                    names=[cst.ImportAlias(name=cst.Name("v3"), asname=cst.AsName(name=bound))])

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
        names = []
        for alias in updated.names:
            module = _dotted(alias.name)
            if _OLD.match(module.split(".")[-1]):
                bound = alias.asname.name if alias.asname else cst.Name(module.split(".")[-1])
                if not alias.asname and "." in module:
                    self.notes.append(f"`import {module}` rewritten: code that spells the dotted path must use "
                                      f"the name {module.split('.')[-1]}")
                self._legacy(module)
                self._changed = True
                names.append(alias.with_changes(name=_expr(TARGET), asname=cst.AsName(name=bound)))
            else:
                names.append(alias)
        return updated.with_changes(names=names)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        func = _dotted(updated.func).split(".")[-1]
        if func not in _IMPORTERS or not updated.args:
            return updated
        first = updated.args[0].value
        if not isinstance(first, cst.SimpleString):
            return updated
        name = first.evaluated_value
        if not isinstance(name, str) or not _OLD.match(name.split(".")[-1]):
            return updated
        package = next((a.value for a in updated.args[1:] if a.keyword is None or a.keyword.value == "package"),
                       None)
        dots = len(name) - len(name.lstrip("."))
        if dots and isinstance(package, cst.SimpleString) and isinstance(package.evaluated_value, str):
            saved, self.package = self.package, package.evaluated_value
            self._legacy(self._absolute(name.lstrip("."), dots))
            self.package = saved
        else:
            self._legacy(self._absolute(name.lstrip("."), dots))
        self._changed = True
        return updated.with_changes(args=[cst.Arg(cst.SimpleString(f'"{TARGET}"'))])

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine,
                                  updated: cst.SimpleStatementLine) -> cst.SimpleStatementLine:
        if not self._changed:
            return updated
        self._changed = False
        code = cst.Module(body=[]).code_for_node(
            original.with_changes(leading_lines=[], trailing_whitespace=cst.TrailingWhitespace()))
        comment = original.trailing_whitespace.comment
        # JSON keeps a multi-line original (with its own comments) exact on one comment line.
        text = (comment.value + "  " if comment is not None else "") + MARK + json.dumps(code.strip())
        return updated.with_changes(trailing_whitespace=cst.TrailingWhitespace(
            whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(text)))


class _Reverter(cst.CSTTransformer):
    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine,
                                  updated: cst.SimpleStatementLine) -> cst.SimpleStatementLine:
        comment = updated.trailing_whitespace.comment
        if comment is None or MARK not in comment.value:
            return updated
        before, _, code = comment.value.partition(MARK)
        restored = cst.parse_statement(json.loads(code) + "\n")
        assert isinstance(restored, cst.SimpleStatementLine)
        kept = before.rstrip()
        whitespace = cst.TrailingWhitespace(whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(kept)) \
            if kept else cst.TrailingWhitespace()
        return restored.with_changes(leading_lines=updated.leading_lines, trailing_whitespace=whitespace)


def _left(code: str) -> list[str]:
    found = []
    for number, line in enumerate(code.splitlines(), 1):
        if _ANY_OLD.search(line.split(MARK, 1)[0]):
            found.append(f"line {number}: {line.strip()[:120]}")
    return found


def rewrite_source(source: str, path: Path | None = None) -> tuple[str, list[str]]:
    """The rewritten source and notes; raises ``libcst.ParserSyntaxError`` when it does not parse."""
    new, notes, _ = _rewrite(source, path)
    return new, notes


def _rewrite(source: str, path: Path | None) -> tuple[str, list[str], list[str]]:
    rewriter = _Rewriter(path)
    new = cst.parse_module(source).visit(rewriter).code
    return new, rewriter.notes, rewriter.legacy


def revert_source(source: str) -> str:
    """The source with every statement the codemod rewrote put back as it was."""
    return cst.parse_module(source).visit(_Reverter()).code


def rewrite_file(path: Path, *, write: bool, revert: bool = False) -> FileResult:
    result = FileResult(path)
    try:
        source = path.read_text(encoding="utf-8")
        if revert:
            new = revert_source(source)
        else:
            new, result.notes, result.legacy_modules = _rewrite(source, path)
    except (cst.ParserSyntaxError, UnicodeDecodeError) as exc:
        result.error = f"could not parse, left untouched: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        return result
    if not revert:
        result.left = _left(new)
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


def migrate(paths: list[Path], *, write: bool, revert: bool = False) -> list[FileResult]:
    """Rewrite (``write``) or only diff every Python file under ``paths``; ``revert`` undoes a rewrite."""
    return [rewrite_file(p, write=write, revert=revert) for p in python_files(paths)]
