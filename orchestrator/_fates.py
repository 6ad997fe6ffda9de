"""What became of each variant of a race, in words: the race's evidence on both engines (the local race
judges ``Tried`` objects, the Temporal workflow the variants' records; both say it the same way).

Standard library only: the workflow's sandbox imports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: a cancelled loser: its CLI never reported a cost
CANCELLED = "cancelled: another variant won (its cost is unknown)"


def fate(*, won: bool, ran: bool, passed: bool, query_ok: bool, kind: str | None, message: str,
         checks: Iterable[Mapping[str, Any]]) -> str:
    """One variant's fate: won, cancelled, passed too (after the winner), or failed with its evidence."""
    if won:
        return "won"
    if not ran:
        return CANCELLED
    if passed:
        return "passed too, after the winner"
    if not query_ok and kind is not None:
        return f"failed: {kind}: {message}"
    failed = [c for c in checks if not c.get("passed")]
    return "failed: " + ("; ".join(f"{c.get('name')}: {c.get('evidence')}" for c in failed) or "error result")


def won_words(winner: str, fates: Mapping[str, str]) -> str:
    """The race check's evidence when a variant won."""
    return f"variant {winner!r} won; " + "; ".join(f"{n}: {f}" for n, f in fates.items() if n != winner)


def lost_words(fates: Mapping[str, str]) -> str:
    """The race check's evidence when every variant failed."""
    return f"all {len(fates)} variants failed: " + "; ".join(f"{n}: {f}" for n, f in fates.items())
