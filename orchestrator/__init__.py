"""claude-scope's phase orchestrator: pipelines of Claude Code phases with timeouts, retries, budgets,
evidence checks, bounded parallelism, and a durable journal that resumes a crashed run.

    pipeline = Pipeline([
        Phase("research", "Write milestone_1/research.md", checks=[file_exists("milestone_1/research.md", 100)]),
        Phase("plan", "Write plan.md from the research", checks=[file_exists("plan.md")]),
    ])
    report = await Orchestrator(project_dir=".").run(pipeline)
    report.phases["plan"].status            # PhaseStatus.SUCCEEDED only if the CLI's result and every check are ok
"""

from __future__ import annotations

from ._checks import (
    Check,
    CheckContext,
    CheckResult,
    check,
    command_succeeds,
    file_exists,
    glob_matches,
    grep,
    pytest_passes,
)
from ._engine import Orchestrator
from ._journal import (
    Journal,
    JournalCorruptError,
    JournalError,
    JournalLockedError,
    Owner,
    RunBusyError,
    RunExistsError,
    RunNotFoundError,
)
from ._model import (
    Phase,
    PhaseOutcome,
    Pipeline,
    PipelineError,
    RunContext,
    RunReport,
)
from ._observe import RunObserver
from ._pipeline_file import load_pipeline, parse_pipeline
from ._status import PhaseKind, PhaseStatus

__all__ = [
    "Check",
    "CheckContext",
    "CheckResult",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalLockedError",
    "Orchestrator",
    "Owner",
    "Phase",
    "PhaseKind",
    "PhaseOutcome",
    "PhaseStatus",
    "Pipeline",
    "PipelineError",
    "RunBusyError",
    "RunContext",
    "RunExistsError",
    "RunNotFoundError",
    "RunObserver",
    "RunReport",
    "check",
    "command_succeeds",
    "file_exists",
    "glob_matches",
    "grep",
    "load_pipeline",
    "parse_pipeline",
    "pytest_passes",
]
