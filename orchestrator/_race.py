"""A race (``Phase.variants``): every variant at once, each in a worktree of its own; the first whose CLI
result and checks both pass wins and is merged; the others are cancelled at once.

Cancelling a loser ends its CLI tree (the query's own cleanup, verified) and then removes its worktree and
branch; a variant that fails before the decision has its worktree removed as it fails. Ties (variants that
pass before the decision is acted on) go by declared order. Every variant is an attempt of its own in the
journal, with its own number, cost and processes; a cancelled one's cost was never reported, so the phase's
cost becomes a lower bound and its cap is charged all the variant was given. The decision's evidence (who
won, what became of each other variant, how long their ending took) is one more check result, ``race``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from sdk_wrapper import exception_leaves

from ._attempt import Tried
from ._checks import CheckResult
from ._cost import PhaseCap
from ._fates import fate, lost_words, won_words
from ._feedback import with_feedback
from ._git import GitCommandError

if TYPE_CHECKING:
    from ._execute import Place
    from ._model import Phase, Variant

AttemptAt = Callable[[int, str, "Place", "Variant | None", "float | None"], Awaitable[Tried]]


async def run_race(phase: Phase, first: int, prompts: dict[str, str], feedback: str, place: Place,
                   attempt_at: AttemptAt, cap: PhaseCap, journal: Any, run_id: str) -> Tried:
    """Run ``phase``'s variants as attempts ``first``, ``first + 1``, ...; the race's result as one ``Tried``:
    the winner's (with its merge and the race's evidence), or, when every variant failed, each one's."""
    variants = phase.variants
    places = [place.sibling() for _ in variants]
    left = cap.left()
    each = None if left is None else left / len(variants)  # the run budget reserved every variant's cap
    results: dict[int, Tried] = {}
    ended: dict[int, float] = {}  # when each cancelled loser's query had ended (its tree gone)
    gone: dict[int, float] = {}   # ... and its worktree
    winner: int | None = None
    decided = 0.0

    async def contend(i: int) -> None:
        nonlocal winner, decided
        try:
            results[i] = await attempt_at(first + i, with_feedback(prompts[variants[i].name], feedback), places[i],
                                          variants[i], each)
            if results[i].passed and winner is None:
                await anyio.lowlevel.checkpoint()  # a variant passing at the same moment: declared order decides
                if winner is None:
                    winner, decided = min(j for j, t in results.items() if t.passed), time.monotonic()
                    tg.cancel_scope.cancel()
        finally:
            if i not in results:
                ended[i] = time.monotonic()
            if winner != i:
                await places[i].close()  # shielded
                gone[i] = time.monotonic()

    try:
        async with anyio.create_task_group() as tg:
            for index in range(len(variants)):
                tg.start_soon(contend, index, name=f"variant {variants[index].name}")
    except BaseExceptionGroup as group:  # git failed for a variant (the phase fails): raise it as it is
        leaves = exception_leaves(group)
        git_failed = [e for e in leaves if isinstance(e, GitCommandError)]
        if git_failed and all(isinstance(e, GitCommandError | anyio.get_cancelled_exc_class()) for e in leaves):
            raise git_failed[0] from None
        raise
    fates = {variants[i].name: _fate(results.get(i), i == winner) for i in range(len(variants))}
    if winner is None:
        return _all_failed(variants, results, fates)
    number = first + winner
    merge = await places[winner].bring_back(number)
    losers = [i for i in range(len(variants)) if i != winner]
    timing = {"trees_gone_ms": _after(decided, [ended[i] for i in losers if i in ended]),
              "worktrees_gone_ms": _after(decided, [gone[i] for i in losers if i in gone])}
    race = CheckResult("race", True, won_words(variants[winner].name, fates),
                       {"race": "won", "winner": variants[winner].name, "variants": fates, **timing})
    won = results[winner]
    tried = Tried(won.query, (*won.checks, merge, race))
    journal.attempt_checked(run_id, phase.name, number, [c.to_dict() for c in tried.checks])
    return tried


def _after(start: float, times: list[float]) -> float | None:
    return None if not times else round((max(times) - start) * 1000, 2)


def _fate(tried: Tried | None, won: bool) -> str:
    failure = None if tried is None else tried.query.failure
    return fate(won=won, ran=tried is not None, passed=tried is not None and tried.passed,
                query_ok=tried is not None and tried.query.ok,
                kind=None if failure is None else failure.kind.value,
                message="" if failure is None else failure.message,
                checks=[] if tried is None else [c.to_dict() for c in tried.checks])


def _all_failed(variants: tuple[Variant, ...], results: dict[int, Tried], fates: dict[str, str]) -> Tried:
    """Every variant failed: the race fails with each one's evidence; its query is the first variant's whose
    query failed (what a retry policy judges), else the first's."""
    tried = [results[i] for i in sorted(results)]
    query = next((t.query for t in tried if not t.query.ok), tried[0].query)
    checks = [CheckResult(f"{variants[i].name}:{c.name}", c.passed, c.evidence, c.details)
              for i in sorted(results) for c in results[i].checks]
    checks.append(CheckResult("race", False, lost_words(fates), {"race": "lost", "variants": fates}))
    return Tried(query, tuple(checks))
