"""Running one phase: spec in, outcome out.

``run_phase`` takes a ``Phase`` and where to run it, drives ``sdk_wrapper.open_query`` (with the phase's
retry policy), streams every message to a JSONL file as it arrives (memory stays flat however long the
phase), journals each attempt and the CLI's pid, runs the evidence checks, and returns a ``PhaseOutcome``.
A phase succeeds only if the CLI's own result is ok and every check passes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

import anyio
from claude_code_sdk import ClaudeCodeOptions

from sdk_wrapper import FailureKind, QueryLimits, QueryOutcome, QueryStream, SpawnedCLI, open_query
from sdk_wrapper.lowlevel import Caps

from ._attempt import Tried, conflicted
from ._checks import CheckContext, CheckResult
from ._context import RunContext
from ._cost import PhaseCap, sum_costs
from ._feedback import with_feedback
from ._git import GitCommandError
from ._model import Phase, PhaseOutcome, PipelineError, Variant
from ._observe import RunObserver
from ._private import open_append
from ._race import run_race
from ._status import PhaseKind, PhaseStatus
from ._worktree import Isolation, Worktree

_TIMED_OUT = {FailureKind.TIMEOUT, FailureKind.STALLED}
#: what is kept of a message log whose write failed (a full disk), so that the journal can record the failure
LOG_KEPT_ON_FULL_DISK = 32 * 1024


class MessageLog:
    """Appends each message as one JSON line and flushes it, so a kill -9 loses at most the line in flight."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] = open_append(path)  # private: a transcript (see _private)
        self.count = 0

    def write(self, message: Any) -> None:
        record: dict[str, Any] = {"type": type(message).__name__, **dataclasses.asdict(message)}
        self._fh.write(json.dumps(record, default=str) + "\n")
        self._fh.flush()
        self.count += 1

    def close(self) -> None:
        with contextlib.suppress(OSError):  # its last buffered bytes may not fit on a full disk either
            self._fh.close()

    def cut_for_the_journal(self, keep: int = LOG_KEPT_ON_FULL_DISK) -> str:
        """A write failed (a full disk): cut the log to its first ``keep`` bytes, at a line's end, so that the
        journal on the same disk can still record how the attempt ended; say what was done."""
        self.close()
        try:
            with self.path.open("rb+") as fh:
                head = fh.read(keep)
                cut = head.rfind(b"\n") + 1
                fh.truncate(cut)
        except OSError:
            return ""
        return f"; its log was cut to its first {cut} bytes so that the journal could record this"


class PhaseRecorder(Protocol):
    """Where a phase's progress is recorded: the ``Journal`` locally; on a Temporal worker, a host record
    that keeps only the live CLI and the message log (history has the rest)."""

    def phase_running(self, run_id: str, name: str, attempt: int, prompt: str = "", variant: str = "") -> None: ...

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
    #: run this one variant of a race, as an attempt of its own (a Temporal race: each variant an activity,
    #: the workflow the judge); its cap is the phase's ``max_cost_usd``, not the whole race's
    variant: str = ""
    #: an isolated attempt that passed is not merged here but handed over with its worktree, which stays
    #: (journalled, so a dead owner's is still reaped) until whoever holds it merges or ends it
    hold: Callable[[Worktree], None] | None = None


def phase_options(phase: Phase | Variant, project_dir: Path) -> Any:
    """The phase's (or a variant's) options, either SDK's, with the project directory as cwd unless they name
    one."""
    options: Any = phase.options or ClaudeCodeOptions()
    if options.cwd is None:
        options = replace(options, cwd=str(project_dir))
    return options


async def run_phase(phase: Phase, ctx: RunContext, rt: PhaseRuntime) -> PhaseOutcome:
    """Run ``phase`` to its outcome: each attempt is its query and, when the CLI's result is ok, its checks.
    With a retry policy, a failed query is retried as the policy allows; with ``feedback`` too, so is a
    failed check (even after side effects), and each retry's prompt carries what failed before.
    Cancellation is journalled (a synchronous write), then re-raised."""
    started = time.monotonic()
    try:
        prompt = phase.prompt if isinstance(phase.prompt, str) else phase.prompt(ctx)
        prompts = {v.name: v.prompt if isinstance(v.prompt, str) else v.prompt(ctx) if v.prompt is not None
                   else prompt for v in phase.variants}
    except Exception as exc:  # the caller's code failed for this phase: the phase fails, the run goes on
        return PhaseOutcome(phase.name, PhaseStatus.FAILED, kind=FailureKind.UNEXPECTED,
                            message=f"the prompt callable raised {type(exc).__name__}: {exc}",
                            duration_s=time.monotonic() - started)
    options = phase_options(phase, rt.project_dir)
    limits = QueryLimits(timeout_s=phase.timeout_s, idle_timeout_s=phase.idle_timeout_s,
                         max_repeats=phase.max_repeats, memory_mb=phase.memory_mb, max_pids=phase.max_pids)
    caps = None if phase.memory_mb is None and phase.max_pids is None else Caps(phase.memory_mb, phase.max_pids)
    attempt = rt.first_attempt
    costs = list(rt.earlier_costs)  # every attempt's, so that retries' spend is never dropped
    cap = PhaseCap(rt.cap_usd if rt.cap_usd is not None
                   else phase.max_cost_usd if rt.variant else phase.reservation_usd)
    alone = next((v for v in phase.variants if v.name == rt.variant), None)  # the one variant run here
    if rt.variant and alone is None:
        raise PipelineError(f"phase {phase.name!r} has no variant {rt.variant!r}")
    feedback = rt.feedback  # what the next attempt is told (a resume's or a Temporal retry's first, from outside)
    journal, run_id, observer, name = rt.journal, rt.run_id, rt.observer, phase.name

    def spawned(cli: SpawnedCLI) -> None:
        journal.process_started(run_id, name, cli.pid, cli.create_time, cli.query_id)
        observer.spawned(run_id, name, cli)

    async def attempt_at(number: int, told: str, where: Place, variant: Variant | None, allowed: float | None
                         ) -> Tried:
        """One attempt: its query, then (when the CLI's result is ok) its checks, in ``where``."""
        label = "" if variant is None else variant.name
        journal.phase_running(run_id, name, number, told, label)
        observer.attempt_started(run_id, name, number)
        here = await where.attempt(number, continues=phase.feedback and variant is None, variant=label)
        log = MessageLog(journal.message_log(run_id, name, number))
        chosen = options if variant is None or variant.options is None else phase_options(variant, rt.project_dir)
        stream: QueryStream[Any] = open_query(told, replace(chosen, cwd=str(where.inside(Path(chosen.cwd)))),
                                              limits=replace(limits, max_cost_usd=allowed),
                                              cli_path=rt.cli_path, on_spawn=spawned)
        log_error = ""
        try:
            async with stream:
                async for message in stream:
                    try:
                        log.write(message)
                    except OSError as exc:  # a full disk: end the query rather than run it unrecorded
                        log_error = (f"its message log {log.path} could not be written: "
                                     f"{exc.strerror or exc} (errno {exc.errno}); the query was ended"
                                     + log.cut_for_the_journal())
                        break
                    observer.message(run_id, name, message)
        finally:
            log.close()
            costs.append(stream.outcome.cost_usd if stream.finished else None)
            cap.charge(costs[-1], allowed)
            if stream.finished:
                journal.attempt_ended(run_id, name, number, stream.outcome)
                observer.attempt_ended(run_id, name, number, stream.outcome)
        if log_error:
            return Tried(stream.outcome, log_error=log_error)
        if not stream.outcome.ok:
            return Tried(stream.outcome)
        tried = Tried(stream.outcome, tuple([await check.run(CheckContext(here, ctx, caps)) for check in phase.checks]))
        journal.attempt_checked(run_id, name, number, [c.to_dict() for c in tried.checks])
        return tried

    async def once() -> Tried:
        nonlocal attempt, feedback
        if phase.variants and alone is None:
            first, attempt = attempt + 1, attempt + len(phase.variants)
            tried = await run_race(phase, first, prompts, feedback, place, attempt_at, cap, journal, run_id)
        else:
            attempt += 1
            told = with_feedback(prompt if alone is None else prompts[alone.name], feedback)
            tried = await attempt_at(attempt, told, place, alone, cap.left())
            if tried.passed and place.isolation is not None and rt.hold is not None:
                rt.hold(place.release())
            elif tried.passed and place.isolation is not None:
                tried = Tried(tried.query, (*tried.checks, await place.bring_back(attempt)))
                journal.attempt_checked(run_id, name, attempt, [c.to_dict() for c in tried.checks])
        if phase.feedback and not tried.passed:
            feedback = tried.feedback(attempt)
        return tried

    def again(tried: Tried) -> bool:
        if tried.passed or not cap.has_room() or phase.retry is None or tried.conflicted or tried.log_error:
            return False
        if not tried.query.ok:  # a failed query: the policy decides (after side effects, only if it says so)
            return phase.retry.should_retry(tried.query)
        return phase.feedback  # a failed check: worth another attempt only if the agent is told what failed

    def ended(status: PhaseStatus, kind: FailureKind | PhaseKind, message: str, **more: Any) -> PhaseOutcome:
        """The phase's outcome when it ends other than by its last attempt's result: it costs every attempt."""
        cost, lower_bound = sum_costs(costs)
        return PhaseOutcome(phase.name, status, kind=kind, message=message, attempts=attempt,
                            duration_s=time.monotonic() - started, cost_usd=cost, cost_lower_bound=lower_bound,
                            **more)

    if not cap.has_room():  # a resume of a phase whose earlier attempts spent its max_cost_usd
        return ended(PhaseStatus.FAILED, FailureKind.BUDGET_EXCEEDED,
                     f"max_cost_usd={phase.max_cost_usd} was spent by its earlier attempts")
    try:
        place = await Place.open(phase, rt, Path(options.cwd or rt.project_dir))
    except (PipelineError, GitCommandError) as exc:  # no worktree: the phase fails, costing what it cost before
        return ended(PhaseStatus.FAILED, PhaseKind.ISOLATION_FAILED, str(exc))
    try:
        tried = await (phase.retry.repeat(once, again) if phase.retry is not None else once())
    except GitCommandError as exc:
        return ended(PhaseStatus.FAILED, PhaseKind.ISOLATION_FAILED, str(exc))
    except anyio.get_cancelled_exc_class():
        journal.phase_ended(run_id, ended(PhaseStatus.CANCELLED, FailureKind.CANCELLED, "run cancelled"))
        raise
    finally:
        await place.close_all()
    if tried.log_error:
        return ended(PhaseStatus.FAILED, PhaseKind.MESSAGE_LOG_FAILED, tried.log_error, query=tried.query)
    return _phase_outcome(phase.name, tried.query, tried.checks, attempt, costs, time.monotonic() - started)


class Place:
    """Where a phase's attempts run: the project's checkout (in place), or each in a worktree of its own
    (``isolation = "worktree"``; a learning retry continues in its attempt's worktree). A race's variants
    each have a place of their own (``sibling``), all closed by ``close_all``."""

    def __init__(self, cwd: Path, isolation: Isolation | None = None) -> None:
        self.cwd = cwd
        self.isolation = isolation
        self.current: Worktree | None = None
        self._siblings: list[Place] = []

    @classmethod
    async def open(cls, phase: Phase, rt: PhaseRuntime, cwd: Path) -> Place:
        if phase.isolation != "worktree":
            return cls(cwd)
        return cls(cwd, await Isolation.open(rt.project_dir, rt.journal, rt.run_id, phase.name))

    def sibling(self) -> Place:
        place = Place(self.cwd, self.isolation)
        self._siblings.append(place)
        return place

    def inside(self, path: Path) -> Path:
        """``path`` of the project's checkout as this attempt sees it."""
        if self.isolation is None or self.current is None:
            return path
        return self.isolation.inside(self.current, path)

    async def attempt(self, number: int, *, continues: bool, variant: str = "") -> Path:
        """Get ready for attempt ``number``; where its checks look (the phase's cwd, as it sees it)."""
        if self.isolation is None:
            return self.cwd
        if self.current is not None and not continues:
            await self.close()
        if self.current is None:
            self.current = await self.isolation.start(number, variant)
        here = self.inside(self.cwd)
        await anyio.Path(here).mkdir(parents=True, exist_ok=True)  # a cwd git does not track (empty)
        return here

    def release(self) -> Worktree:
        """The current worktree, no longer this place's to end (``PhaseRuntime.hold``)."""
        assert self.current is not None
        current, self.current = self.current, None
        return current

    async def bring_back(self, number: int) -> CheckResult:
        """An isolated attempt that passed: its merge into the checkout, as one more piece of evidence."""
        assert self.isolation is not None and self.current is not None
        return await self.isolation.bring_back(self.current, number)

    async def close(self) -> None:
        if self.isolation is not None and self.current is not None:
            current, self.current = self.current, None
            await self.isolation.end(current)

    async def close_all(self) -> None:
        for place in [self, *self._siblings]:
            await place.close()


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
                            kind=PhaseKind.MERGE_CONFLICT if conflicted(checks) else PhaseKind.VALIDATION_FAILED,
                            message="; ".join(f"{c.name}: {c.evidence}" for c in failed), **common)
    return PhaseOutcome(name, PhaseStatus.SUCCEEDED, message="ok", **common)
