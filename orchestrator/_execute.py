"""Running one phase: spec in, outcome out.

``run_phase`` takes a ``Phase`` and where to run it, drives ``sdk_wrapper.open_query`` (with the phase's
retry policy), streams every message to a JSONL file as it arrives (memory stays flat however long the
phase), journals each attempt and the CLI's pid, runs the evidence checks, and returns a ``PhaseOutcome``.
A phase succeeds only if the CLI's own result is ok and every check passes.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

import anyio
from claude_code_sdk import ClaudeCodeOptions

from sdk_wrapper import FailureKind, QueryLimits, QueryOutcome, QueryStream, SpawnedCLI, open_query, redact

from ._checks import CheckContext, CheckResult
from ._cost import PhaseCap, sum_costs
from ._feedback import told_after, with_feedback
from ._git import GitCommandError
from ._model import Phase, PhaseOutcome, PipelineError, RunContext
from ._observe import RunObserver
from ._status import PhaseKind, PhaseStatus
from ._worktree import Isolation, Worktree

_TIMED_OUT = {FailureKind.TIMEOUT, FailureKind.STALLED}


class MessageLog:
    """Appends each message as one JSON line and flushes it, so a kill -9 loses at most the line in flight."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] = path.open("a", encoding="utf-8")
        self.count = 0

    def write(self, message: Any) -> None:
        record: dict[str, Any] = {"type": type(message).__name__, **dataclasses.asdict(message)}
        self._fh.write(json.dumps(record, default=str) + "\n")
        self._fh.flush()
        self.count += 1

    def close(self) -> None:
        self._fh.close()


class PhaseRecorder(Protocol):
    """Where a phase's progress is recorded: the ``Journal`` locally; on a Temporal worker, a host record
    that keeps only the live CLI and the message log (history has the rest)."""

    def phase_running(self, run_id: str, name: str, attempt: int, prompt: str = "") -> None: ...

    def message_log(self, run_id: str, name: str, attempt: int) -> Path: ...

    def process_started(self, run_id: str, name: str, pid: int, create_time: float, query_id: str) -> None: ...

    def attempt_ended(self, run_id: str, name: str, number: int, outcome: QueryOutcome) -> None: ...

    def attempt_checked(self, run_id: str, name: str, number: int, checks: list[dict[str, Any]]) -> None: ...

    def phase_ended(self, run_id: str, outcome: PhaseOutcome) -> None: ...

    def git_state_added(self, key: str, run_id: str, name: str, kind: str, data: dict[str, Any]) -> None: ...

    def git_state_done(self, key: str) -> None: ...


@dataclass(frozen=True)
class PhaseRuntime:
    """Where and how a phase runs; the same for every phase of a run."""

    run_id: str
    journal: PhaseRecorder
    project_dir: Path
    cli_path: str | None = None
    first_attempt: int = 0
    #: the costs of this phase's attempts before ``first_attempt`` (a resume): the phase's cost is all of them
    earlier_costs: tuple[float | None, ...] = ()
    #: what this phase's attempts here may spend together: the run budget's reservation (``Start.cap_usd``);
    #: None: the phase's own ``max_cost_usd``
    cap_usd: float | None = None
    #: what the first attempt here is told of the one before it (a resume, or a Temporal retry): see ``_feedback``
    feedback: str = ""
    observer: RunObserver = field(default_factory=RunObserver)


def phase_options(phase: Phase, project_dir: Path) -> Any:
    """The phase's options (either SDK's) with the project directory as cwd unless it names one."""
    options: Any = phase.options or ClaudeCodeOptions()
    if options.cwd is None:
        options = replace(options, cwd=str(project_dir))
    return options


@dataclass(frozen=True)
class Tried:
    """One attempt: the query's outcome and, when its result was ok, the checks' results."""

    query: QueryOutcome
    checks: tuple[CheckResult, ...] = ()

    @property
    def passed(self) -> bool:
        return self.query.ok and all(c.passed for c in self.checks)

    @property
    def conflicted(self) -> bool:
        """Its changes could not be merged: another attempt from the same start would conflict the same way."""
        return _conflicted(self.checks)

    def feedback(self, number: int) -> str:
        """What the next attempt is told of this one (``_feedback.told_after``), redacted."""
        failure = self.query.failure
        return redact(told_after(
            number, query_ok=self.query.ok,
            kind=(failure.kind if failure is not None else FailureKind.EXECUTION_ERROR).value,
            message=failure.message if failure is not None else "error result",
            stderr_tail=failure.stderr_tail if failure is not None else "",
            checks=[c.to_dict() for c in self.checks]))


async def run_phase(phase: Phase, ctx: RunContext, rt: PhaseRuntime) -> PhaseOutcome:
    """Run ``phase`` to its outcome: each attempt is its query and, when the CLI's result is ok, its checks.
    With a retry policy, a failed query is retried as the policy allows; with ``feedback`` too, so is a
    failed check (even after side effects), and each retry's prompt carries what failed before.
    Cancellation is journalled (a synchronous write), then re-raised."""
    started = time.monotonic()
    try:
        prompt = phase.prompt if isinstance(phase.prompt, str) else phase.prompt(ctx)
    except Exception as exc:  # the caller's code failed for this phase: the phase fails, the run goes on
        return PhaseOutcome(phase.name, PhaseStatus.FAILED, kind=FailureKind.UNEXPECTED,
                            message=f"the prompt callable raised {type(exc).__name__}: {exc}",
                            duration_s=time.monotonic() - started)
    options = phase_options(phase, rt.project_dir)
    limits = QueryLimits(timeout_s=phase.timeout_s, idle_timeout_s=phase.idle_timeout_s)
    attempt = rt.first_attempt
    costs = list(rt.earlier_costs)  # every attempt's, so that retries' spend is never dropped
    cap = PhaseCap(rt.cap_usd if rt.cap_usd is not None else phase.max_cost_usd)
    feedback = rt.feedback  # what the next attempt is told (a resume's or a Temporal retry's first, from outside)
    journal, run_id, observer, name = rt.journal, rt.run_id, rt.observer, phase.name

    def spawned(cli: SpawnedCLI) -> None:
        journal.process_started(run_id, name, cli.pid, cli.create_time, cli.query_id)
        observer.spawned(run_id, name, cli)

    async def once() -> Tried:
        nonlocal attempt, feedback
        attempt += 1
        told = with_feedback(prompt, feedback)
        journal.phase_running(run_id, name, attempt, told)
        observer.attempt_started(run_id, name, attempt)
        here, checked_in = await place.attempt(attempt, continues=phase.feedback)
        log = MessageLog(journal.message_log(run_id, name, attempt))
        allowed = cap.left()  # the CLI stops itself there (--max-budget-usd)
        stream: QueryStream[Any] = open_query(told, replace(options, cwd=str(here)),
                                              limits=replace(limits, max_cost_usd=allowed),
                                              cli_path=rt.cli_path, on_spawn=spawned)
        try:
            async with stream:
                async for message in stream:
                    log.write(message)
                    observer.message(run_id, name, message)
        finally:
            log.close()
            costs.append(stream.outcome.cost_usd if stream.finished else None)
            cap.charge(costs[-1], allowed)
            if stream.finished:
                journal.attempt_ended(run_id, name, attempt, stream.outcome)
                observer.attempt_ended(run_id, name, attempt, stream.outcome)
        tried = Tried(stream.outcome)
        if stream.outcome.ok:
            checks = [await check.run(CheckContext(checked_in, ctx)) for check in phase.checks]
            if all(c.passed for c in checks):
                checks.extend(await place.bring_back(attempt))
            tried = Tried(stream.outcome, tuple(checks))
            journal.attempt_checked(run_id, name, attempt, [c.to_dict() for c in tried.checks])
        if phase.feedback and not tried.passed:
            feedback = tried.feedback(attempt)
        return tried

    def again(tried: Tried) -> bool:
        if tried.passed or not cap.has_room() or phase.retry is None or tried.conflicted:
            return False
        if not tried.query.ok:  # a failed query: the policy decides (after side effects, only if it says so)
            return phase.retry.should_retry(tried.query)
        return phase.feedback  # a failed check: worth another attempt only if the agent is told what failed

    if not cap.has_room():  # a resume of a phase whose earlier attempts spent its max_cost_usd
        cost, lower_bound = sum_costs(costs)
        return PhaseOutcome(phase.name, PhaseStatus.FAILED, kind=FailureKind.BUDGET_EXCEEDED, attempts=attempt,
                            message=f"max_cost_usd={phase.max_cost_usd} was spent by its earlier attempts",
                            duration_s=time.monotonic() - started, cost_usd=cost, cost_lower_bound=lower_bound)
    try:
        place = await Place.open(phase, rt, Path(options.cwd or rt.project_dir))
    except (PipelineError, GitCommandError) as exc:
        return PhaseOutcome(phase.name, PhaseStatus.FAILED, kind=PhaseKind.ISOLATION_FAILED, attempts=attempt,
                            message=str(exc), duration_s=time.monotonic() - started)
    try:
        tried = await (phase.retry.repeat(once, again) if phase.retry is not None else once())
    except GitCommandError as exc:
        cost, lower_bound = sum_costs(costs)
        return PhaseOutcome(phase.name, PhaseStatus.FAILED, kind=PhaseKind.ISOLATION_FAILED, attempts=attempt,
                            message=str(exc), duration_s=time.monotonic() - started, cost_usd=cost,
                            cost_lower_bound=lower_bound)
    except anyio.get_cancelled_exc_class():
        cost, lower_bound = sum_costs(costs)
        journal.phase_ended(run_id, PhaseOutcome(phase.name, PhaseStatus.CANCELLED, attempts=attempt,
                                                 duration_s=time.monotonic() - started, cost_usd=cost,
                                                 cost_lower_bound=lower_bound,
                                                 kind=FailureKind.CANCELLED, message="run cancelled"))
        raise
    finally:
        await place.close()
    return _phase_outcome(phase.name, tried.query, tried.checks, attempt, costs, time.monotonic() - started)


def _conflicted(checks: tuple[CheckResult, ...] | list[CheckResult]) -> bool:
    return any(c.details.get("merge") == "conflict" and not c.passed for c in checks)


class Place:
    """Where a phase's attempts run: the project's checkout (in place), or each in a worktree of its own
    (``isolation = "worktree"``; a learning retry continues in its attempt's worktree)."""

    def __init__(self, cwd: Path, isolation: Isolation | None = None) -> None:
        self.cwd = cwd
        self.isolation = isolation
        self.current: Worktree | None = None

    @classmethod
    async def open(cls, phase: Phase, rt: PhaseRuntime, cwd: Path) -> Place:
        if phase.isolation != "worktree":
            return cls(cwd)
        return cls(cwd, await Isolation.open(rt.project_dir, rt.journal, rt.run_id, phase.name))

    async def attempt(self, number: int, *, continues: bool) -> tuple[Path, Path]:
        """The attempt's working directory and where its checks look (the same place)."""
        if self.isolation is None:
            return self.cwd, self.cwd
        if self.current is not None and not continues:
            await self.close()
        if self.current is None:
            self.current = await self.isolation.start(number)
        here = self.isolation.inside(self.current, self.cwd)
        here.mkdir(parents=True, exist_ok=True)  # a cwd the checkout has but git does not track (empty)
        return here, here

    async def bring_back(self, number: int) -> list[CheckResult]:
        """An isolated attempt that passed: its merge into the checkout, as one more piece of evidence."""
        if self.isolation is None or self.current is None:
            return []
        return [await self.isolation.bring_back(self.current, number)]

    async def close(self) -> None:
        if self.isolation is not None and self.current is not None:
            current, self.current = self.current, None
            await self.isolation.end(current)


def _phase_outcome(name: str, outcome: QueryOutcome, checks: tuple[CheckResult, ...], attempts: int,
                   costs: list[float | None], duration_s: float) -> PhaseOutcome:
    cost, lower_bound = sum_costs(costs)
    common: dict[str, Any] = {
        "query": outcome, "checks": checks, "attempts": attempts, "cost_usd": cost, "cost_lower_bound": lower_bound,
        "duration_s": duration_s, "session_id": outcome.session_id, "num_turns": outcome.num_turns,
        "result_text": getattr(outcome.result, "result", None),
    }
    failure = outcome.failure
    if failure is not None or not outcome.ok:
        kind = failure.kind if failure is not None else FailureKind.EXECUTION_ERROR
        status = (PhaseStatus.TIMED_OUT if kind in _TIMED_OUT
                  else PhaseStatus.CANCELLED if kind is FailureKind.CANCELLED else PhaseStatus.FAILED)
        return PhaseOutcome(name, status, kind=kind,
                            message=failure.message if failure is not None else "error result", **common)
    failed = [c for c in checks if not c.passed]
    if failed:
        return PhaseOutcome(name, PhaseStatus.FAILED,
                            kind=PhaseKind.MERGE_CONFLICT if _conflicted(checks) else PhaseKind.VALIDATION_FAILED,
                            message="; ".join(f"{c.name}: {c.evidence}" for c in failed), **common)
    return PhaseOutcome(name, PhaseStatus.SUCCEEDED, message="ok", **common)
