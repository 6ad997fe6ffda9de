"""The paired measurement's arithmetic: rounds in turn, differences taken within a round."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from benchmarks._stats import paired_difference, paired_per_query


@pytest.mark.anyio
async def test_every_runner_runs_once_per_round_in_turn() -> None:
    order: list[str] = []

    def runner(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            order.append(name)
        return run

    found = await paired_per_query({"a": runner("a"), "b": runner("b"), "c": runner("c")}, 4)
    assert order == ["a", "b", "c"] * 4
    assert all(len(found[name]["wall_ms"]) == len(found[name]["cpu_ms"]) == 4 for name in "abc")
    assert all(found[name]["ms_per_query"] >= 0 and found[name]["host_cpu_ms_per_query"] >= 0 for name in "abc")


def test_a_difference_is_taken_within_each_round_not_between_medians() -> None:
    # Per round b - a is 1, 1 and 3: their median is 1; the medians themselves (11 and 14) differ by 3.
    found = {"a": {"wall_ms": [10.0, 50.0, 11.0]}, "b": {"wall_ms": [11.0, 51.0, 14.0]}}
    assert paired_difference(found, "b", "a", "wall_ms") == pytest.approx(1.0)
    with pytest.raises(ValueError):  # rounds that do not pair up are a bug in the caller
        paired_difference({"a": {"cpu_ms": [1.0]}, "b": {"cpu_ms": [1.0, 2.0]}}, "b", "a", "cpu_ms")
