"""Packages that import each public name the first time it is used (PEP 562), so that importing one of
them costs nothing: the command line's reading commands and the Temporal client then load only what they
use (``--help``, ``status`` and ``report`` import no SDK). The names stay visible to type checkers through
``if TYPE_CHECKING:`` imports in each package."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence


def lazy_names(package: str, where: Mapping[str, str | tuple[str, str]], exported: Sequence[str]
               ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``where[name]`` is the module (relative to the
    package, or absolute) that defines ``name``, or (that module, the name there). A value found is kept in
    the package, so each name is looked up once."""

    def get(name: str) -> object:
        found = where.get(name)
        if found is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = (found, name) if isinstance(found, str) else found
        value = getattr(importlib.import_module(module, package), attribute)
        setattr(sys.modules[package], name, value)
        return value

    def names() -> list[str]:
        return sorted(exported)

    return get, names
