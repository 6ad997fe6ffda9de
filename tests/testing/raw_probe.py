"""Run one failure-matrix row against the raw claude-code-sdk, in this fresh interpreter; print findings.

Usage: python raw_probe.py ROW  (with the stand-in first on PATH and CLAUDE_STANDIN_PID_FILE set).
Prints one JSON object on the last stdout line: what the caller saw (messages, exception type, time,
cancellations after the query), and descriptors before/after. The test reads the pid file for processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from typing import Any

import anyio
from claude_code_sdk import AssistantMessage, ClaudeCodeOptions, ResultMessage, TextBlock, query

ROWS: dict[str, str] = {
    "a": "ok", "b1": "slow", "b2": "slow", "b3": "slow", "b4": "hang", "c1": "slow", "c2": "slow", "c3": "hang",
    "c4": "hang_ignore_term", "d1": "slow", "d3": "hang", "d4": "hang", "e1": "hang", "f2": "max_turns",
    "g3": "grandchild_devnull_hang",
    "e2": "hang_ignore_term", "f1": "exit_error", "f3": "malformed_json", "f4": "non_json", "f5": "spaces",
    "f6": "long_line", "g1": "grandchild_stdout", "g2": "grandchild_devnull",
}
found: dict[str, Any] = {"messages": 0, "result": False, "exception": None, "texts": []}


def options(row: str) -> ClaudeCodeOptions:
    scenario = ROWS[row]
    if scenario == "grandchild_devnull_hang":
        scenario = json.dumps({"steps": [{"spawn": {"hold_stdout": False}}, {"text": "spawned"}, {"hang": True}],
                               "result": None})
    return ClaudeCodeOptions(env={"CLAUDE_STANDIN_SCENARIO": scenario})


def note(message: Any) -> None:
    found["messages"] += 1
    if isinstance(message, ResultMessage):
        found["result"] = True
    if isinstance(message, AssistantMessage):
        found["texts"] += [len(b.text) for b in message.content if isinstance(b, TextBlock)]


async def cancellations_after(seconds: float) -> int:
    """How often the caller's task is cancelled at a plain await once the query is over (b1)."""
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            count += 1
            if count > 10_000:
                break
    return count


async def run(row: str) -> None:
    started = time.monotonic()
    try:
        if row in ("b1", "b2", "b4"):
            stream = query(prompt="hi", options=options(row))
            ctx = contextlib.aclosing(stream) if row != "b1" else contextlib.nullcontext(stream)
            async with ctx as messages:
                async for message in messages:
                    note(message)
                    if found["messages"] == 2:
                        break
            # b1 looks for 0.5 s only: its CLI ("slow", about 1.1 s) must still be running when the loop
            # closes, or asyncio closes the pipes of an exited child itself and the leak is a coin toss.
            found["cancelled_after"] = await cancellations_after(0.5 if row == "b1" else 1.0)
        elif row == "b3":
            from claude_code_sdk._internal.client import InternalClient

            async with contextlib.aclosing(InternalClient().process_query("hi", options(row))) as messages:
                async for message in messages:
                    note(message)
                    if found["messages"] == 2:
                        break
            found["cancelled_after"] = await cancellations_after(1.0)
        elif row in ("c1", "e1"):
            async with asyncio.timeout(0.8 if row == "c1" else 2):
                async for message in query(prompt="hi", options=options(row)):
                    note(message)
        elif row == "c4":
            async def victim() -> None:
                async for message in query(prompt="hi", options=options(row)):
                    note(message)
            task = asyncio.get_running_loop().create_task(victim())
            await asyncio.sleep(0.5)
            task.cancel()
            await asyncio.sleep(1.0)
            task.cancel()  # the second cancel
            try:
                await task
            except asyncio.CancelledError:
                found["victim_cancelled"] = True
        elif row == "d1":
            stream = query(prompt="hi", options=options(row))

            async def iterate() -> None:
                note(await stream.__anext__())
                note(await stream.__anext__())

            await asyncio.get_running_loop().create_task(iterate())  # iterated in task A
            await stream.aclose()  # closed in the main task
            found["cancelled_after"] = await cancellations_after(0.5)
        elif row == "g3":
            with anyio.move_on_after(1.0):
                async for message in query(prompt="hi", options=options(row)):
                    note(message)
        elif row in ("c2", "c3"):
            with anyio.fail_after(0.8 if row == "c2" else 2):
                async for message in query(prompt="hi", options=options(row)):
                    note(message)
        elif row == "e2":
            async with asyncio.timeout(1.0):
                async for message in query(prompt="hi", options=options(row)):
                    note(message)
        elif row in ("d3", "d4"):
            # Partly iterated, never closed: asyncio.run's shutdown finalizes it in another task.
            stream = query(prompt="hi", options=options(row))
            note(await stream.__anext__())
            note(await stream.__anext__())
            globals()["kept"] = stream
        elif row == "g1":
            with anyio.move_on_after(3) as scope:
                async for message in query(prompt="hi", options=options(row)):
                    note(message)
            found["iterator_hung_after_result"] = scope.cancelled_caught and found["result"]
        else:
            async for message in query(prompt="hi", options=options(row)):
                note(message)
    except BaseException as exc:  # the point is to see what the raw SDK raises
        found["exception"] = type(exc).__name__
        found["exception_text"] = str(exc)[:300]
    found["seconds"] = round(time.monotonic() - started, 3)


def main() -> None:
    row = sys.argv[1]
    fds_before = len(os.listdir("/proc/self/fd"))
    budget = 6.0 if row == "e2" else 20.0

    async def bounded() -> None:
        try:
            await asyncio.wait_for(run(row), budget)
        except TimeoutError:
            found["probe_gave_up_after"] = budget

    try:
        asyncio.run(bounded())
    except BaseException as exc:
        found["asyncio_run_raised"] = type(exc).__name__
    import gc

    gc.collect()
    found["fds_leaked"] = len(os.listdir("/proc/self/fd")) - fds_before
    sys.stdout.write(json.dumps(found) + "\n")
    sys.stdout.flush()
    if row != "d4":  # d4 is about a normal interpreter exit; the others report before shutdown tidies up
        os._exit(0)


if __name__ == "__main__":
    main()
