"""Moving V3 code to claude-scope: the import codemod (``claude-scope migrate``), the masked-failures report
(``claude-scope masked``), and the guide in ``MIGRATION.md``. The drop-in itself is ``sdk_wrapper.v3``."""

from __future__ import annotations

from sdk_wrapper.v3 import StreamFacts, read_masked, v3_verdict

from ._codemod import FileResult, migrate, python_files, revert_source, rewrite_file, rewrite_source
from ._record import record_legacy

__all__ = [
    "FileResult",
    "StreamFacts",
    "migrate",
    "python_files",
    "read_masked",
    "record_legacy",
    "revert_source",
    "rewrite_file",
    "rewrite_source",
    "v3_verdict",
]
