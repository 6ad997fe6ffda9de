"""The benchmarks' contestants: one row each, saying how it runs one query to its end.

A table rather than string dispatch, so a measurement asks the row what it needs (is it one of the SDKs'
own ``query()`` functions, cancelled from outside? does it take the agent SDK's options?) and a new
contestant is one row. ``v3`` (V3 on claude-code-sdk 0.0.10) is not here: it runs in its own venv
(``bench_v3_sdk``), through ``bench_wrapper._spawn``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claude_code_sdk import ClaudeCodeOptions, ResultMessage, query

from sdk_wrapper import QueryLimits, open_query, run_query
from sdk_wrapper import v3 as v3_dropin
from sdk_wrapper._backends import code_backend
from sdk_wrapper.testing import scenario_env

try:
    import claude_agent_sdk as agent
except ImportError:  # the ``agent`` extra: its contestants are left out of the table
    agent = None  # type: ignore[assignment]

Scenario = str | dict[str, Any]
#: (scenario, work dir, CLI, limits, reported) -> messages seen; ``reported`` gets whether it said "success"
Consume = Callable[[Scenario, Path, Path, QueryLimits | None, list[bool] | None], Awaitable[int]]

AGENT_INSTALLED = agent is not None


def code_options(scenario: Scenario, work: Path) -> ClaudeCodeOptions:
    return ClaudeCodeOptions(cwd=str(work), env=scenario_env(scenario))


def agent_options(scenario: Scenario, work: Path, cli: Path) -> Any:
    """The agent SDK would take the CLI bundled in its wheel; it is pointed at the same stand-in instead."""
    return agent.ClaudeAgentOptions(cwd=str(work), env=scenario_env(scenario), cli_path=str(cli))


def _report(reported: list[bool] | None, success: bool) -> None:
    if reported is not None:
        reported.append(success)


async def _raw(scenario: Scenario, work: Path, cli: Path, limits: QueryLimits | None,
               reported: list[bool] | None) -> int:
    count = 0
    async for message in query(prompt="bench", options=code_options(scenario, work)):
        count += 1
        if isinstance(message, ResultMessage) and not message.is_error:
            _report(reported, True)
    return count


async def _agent_raw(scenario: Scenario, work: Path, cli: Path, limits: QueryLimits | None,
                     reported: list[bool] | None) -> int:
    count = 0
    async for message in agent.query(prompt="bench", options=agent_options(scenario, work, cli)):
        count += 1
        if isinstance(message, agent.ResultMessage) and not message.is_error:
            _report(reported, True)
    return count


def _run(options_for: Callable[[Scenario, Path, Path], Any]) -> Consume:
    async def consume(scenario: Scenario, work: Path, cli: Path, limits: QueryLimits | None,
                      reported: list[bool] | None) -> int:
        outcome = await run_query("bench", options_for(scenario, work, cli), cli_path=cli, limits=limits)
        _report(reported, outcome.ok)
        if not outcome.ok:
            raise RuntimeError(f"benchmark query failed: {outcome.failure}")
        return outcome.message_count

    return consume


def _open(options_for: Callable[[Scenario, Path, Path], Any]) -> Consume:
    async def consume(scenario: Scenario, work: Path, cli: Path, limits: QueryLimits | None,
                      reported: list[bool] | None) -> int:
        count = 0
        async with open_query("bench", options_for(scenario, work, cli), cli_path=cli, limits=limits) as stream:
            async for _ in stream:
                count += 1
        _report(reported, stream.outcome.ok)
        if not stream.outcome.ok:
            raise RuntimeError(f"benchmark query failed: {stream.outcome.failure}")
        return count

    return consume


async def _v3_dropin(scenario: Scenario, work: Path, cli: Path, limits: QueryLimits | None,
                     reported: list[bool] | None) -> int:
    """V3's consumer pattern: async for over query_v3, list trimmed past 500."""
    messages: list[Any] = []
    count, success = 0, False
    if reported is not None:
        reported.append(False)  # a cancelled query has reported nothing
    async for message in v3_dropin.query_v3("bench", code_options(scenario, work), work):
        count += 1
        messages.append(message)
        if len(messages) > 500:
            messages = messages[len(messages) // 2:]
        if isinstance(message, dict) and message.get("subtype") == "success" and not message.get("is_error"):
            success = True
    if reported is not None:
        reported[-1] = success
    return count


async def _limit(scenario: Scenario, work: Path, cli: Path, limits: QueryLimits | None,
                 reported: list[bool] | None) -> int:
    """The practical ceiling: the CLI's stdout read line by line and ``json.loads``-ed, nothing else (no
    task, no message objects, no cleanup). Blocking reads: nothing else runs in a benchmark interpreter."""
    options = code_options(scenario, work)
    argv = code_backend().build_argv("bench", options, str(cli))
    count = 0
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=work,  # noqa: ASYNC220
                          env={**os.environ, **options.env}) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            message = json.loads(line)
            count += 1
            if message.get("type") == "result":
                _report(reported, not message.get("is_error"))
    return count


@dataclass(frozen=True)
class Contestant:
    name: str
    consume: Consume
    #: an SDK's own ``query()`` (or V3's): no scope of ours; a cancel is a scope around the whole call
    unscoped: bool = False
    #: takes claude-agent-sdk options (needs the ``agent`` extra)
    agent: bool = False


CONTESTANTS: dict[str, Contestant] = {c.name: c for c in (
    Contestant("raw", _raw, unscoped=True),
    Contestant("run_query", _run(lambda scenario, work, cli: code_options(scenario, work))),
    Contestant("open_query", _open(lambda scenario, work, cli: code_options(scenario, work))),
    Contestant("v3_dropin", _v3_dropin, unscoped=True),
    Contestant("agent_raw", _agent_raw, unscoped=True, agent=True),
    Contestant("agent_run_query", _run(agent_options), agent=True),
    Contestant("agent_open_query", _open(agent_options), agent=True),
    Contestant("limit", _limit, unscoped=True),
)}
#: measured on the throughput and per-query rows only (it has no cancellation or cleanup to measure)
THROUGHPUT_ONLY = {"limit"}


def available() -> tuple[str, ...]:
    """The contestants of ``bench_wrapper``'s own table, in its column order (agent ones with the extra)."""
    agent_names = ["agent_raw", "agent_run_query", "agent_open_query"] if AGENT_INSTALLED else []
    return tuple(["raw", "run_query", "open_query", *agent_names])


async def consume(name: str, scenario: Scenario, work: Path, cli: Path, limits: QueryLimits | None = None,
                  reported: list[bool] | None = None) -> int:
    """Run one query of contestant ``name`` to its end; return the messages it saw."""
    return await CONTESTANTS[name].consume(scenario, work, cli, limits, reported)
