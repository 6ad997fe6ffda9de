"""What a phase or a run spent, stated honestly: the sum of every attempt's cost, and whether it is only a
lower bound (an attempt whose cost the CLI never reported: it crashed, timed out or was cancelled).

No SDK here: the run page and the scheduling rules use it too.
"""

from __future__ import annotations

from collections.abc import Iterable


def sum_costs(costs: Iterable[float | None]) -> tuple[float | None, bool]:
    """Attempts' costs as one figure: (the sum of those reported, or None if none was; whether one was not,
    so the sum is a lower bound). An unreported cost is never taken as 0."""
    costs = list(costs)
    known = [c for c in costs if c is not None]
    return (sum(known) if known else None), len(known) < len(costs)


def format_cost(cost: float | None, lower_bound: bool = False) -> str:
    """``0.5000``, ``>=0.5000`` for a lower bound, ``?`` for a cost no attempt reported, ``-`` for none spent."""
    if cost is None:
        return "?" if lower_bound else "-"
    return f"{'>=' if lower_bound else ''}{cost:.4f}"
