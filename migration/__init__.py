"""Moving V3 code to claude-scope: the import codemod (``claude-scope migrate``), the masked-failures report
(``claude-scope masked``), and the guide in ``MIGRATION.md``. The drop-in itself is ``sdk_wrapper.v3``."""

from __future__ import annotations

from sdk_wrapper._shadow import read_masked, v3_string_category, v3_would_mask

from ._codemod import FileResult, migrate, python_files, rewrite_file, rewrite_source

__all__ = [
    "FileResult",
    "migrate",
    "python_files",
    "read_masked",
    "rewrite_file",
    "rewrite_source",
    "v3_string_category",
    "v3_would_mask",
]
