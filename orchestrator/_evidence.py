"""One check's result (``CheckResult``): what a phase's evidence is made of, in the journal, in workflow
history and on the run page. Standard library only, so that reading a run (``status``, ``report``, a
Temporal record) does not import what running checks needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    evidence: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "evidence": self.evidence, "details": self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """A result as ``to_dict`` wrote it (a journal row, a Temporal record)."""
        return cls(str(data.get("name", "")), bool(data.get("passed")), str(data.get("evidence", "")),
                   dict(data.get("details") or {}))
