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


class PhaseCap:
    """What a phase's attempts may still spend together: each attempt is given what is left (so the CLI
    stops itself there) and charged what it cost, or, when its cost is unknown, all it was given."""

    def __init__(self, usd: float | None) -> None:
        self.usd = usd
        self.charged = 0.0

    def left(self) -> float | None:
        return None if self.usd is None else self.usd - self.charged

    def has_room(self) -> bool:
        left = self.left()
        return left is None or left > 1e-9

    def charge(self, cost: float | None, allowed: float | None) -> None:
        self.charged += cost if cost is not None else (allowed or 0.0)
