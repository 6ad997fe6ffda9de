"""What a callable prompt or check sees of its run: plain data, in a module of its own so that the checks
(``_checks``) and the phase model (``_model``) do not import each other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._model import PhaseOutcome


@dataclass(frozen=True)
class RunContext:
    """What a callable prompt or check sees: the run, the project, and earlier phases' outcomes."""

    run_id: str
    project_dir: Path
    outcomes: Mapping[str, PhaseOutcome]
