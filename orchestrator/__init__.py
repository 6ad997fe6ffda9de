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

import typing

from sdk_wrapper.lowlevel import lazy_names as _lazy_names

if typing.TYPE_CHECKING:  # the same names for type checkers; at run time each is imported when first used
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
    from ._context import RunContext
    from ._engine import Orchestrator
    from ._journal import (
        Journal,
        JournalCorruptError,
        JournalError,
        JournalFullError,
        JournalLockedError,
        RunBusyError,
        RunExistsError,
        RunNotFoundError,
    )
    from ._model import (
        Phase,
        PhaseOutcome,
        Pipeline,
        PipelineError,
        RunReport,
        Variant,
    )
    from ._observe import RunObserver
    from ._owner import Owner
    from ._pipeline_file import load_pipeline, parse_pipeline
    from ._status import PhaseKind, PhaseStatus

#: where each public name lives: importing the package imports none of them (nor an SDK), so the command
#: line's --help and start-up stay fast; ``orchestrator.X`` imports X's module the first time it is used
_WHERE = {
    "Check": "._checks",
    "CheckContext": "._checks",
    "CheckResult": "._checks",
    "Journal": "._journal",
    "JournalCorruptError": "._journal",
    "JournalError": "._journal",
    "JournalFullError": "._journal",
    "JournalLockedError": "._journal",
    "Orchestrator": "._engine",
    "Owner": "._owner",
    "Phase": "._model",
    "PhaseKind": "._status",
    "PhaseOutcome": "._model",
    "PhaseStatus": "._status",
    "Pipeline": "._model",
    "PipelineError": "._model",
    "RunBusyError": "._journal",
    "RunContext": "._context",
    "RunExistsError": "._journal",
    "RunNotFoundError": "._journal",
    "RunObserver": "._observe",
    "RunReport": "._model",
    "Variant": "._model",
    "check": "._checks",
    "command_succeeds": "._checks",
    "file_exists": "._checks",
    "glob_matches": "._checks",
    "grep": "._checks",
    "load_pipeline": "._pipeline_file",
    "parse_pipeline": "._pipeline_file",
    "pytest_passes": "._checks",
}



__all__ = [
    "Check",
    "CheckContext",
    "CheckResult",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalFullError",
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
    "Variant",
    "check",
    "command_succeeds",
    "file_exists",
    "glob_matches",
    "grep",
    "load_pipeline",
    "parse_pipeline",
    "pytest_passes",
]

__getattr__, __dir__ = _lazy_names(__name__, _WHERE, __all__)
