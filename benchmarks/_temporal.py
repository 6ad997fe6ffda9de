"""A Temporal dev server and one worker in this process, for the benchmarks that measure on Temporal (the
``temporal`` extra: imported only by them)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from sdk_wrapper.testing import install_standin


@dataclass(frozen=True)
class Bench:
    """The server's address, a client, a runner for ``queue`` and the worker's workspace (a temporary one)."""

    address: str
    client: Any
    runner: Any
    workspace: Path


@asynccontextmanager
async def dev_worker(queue: str, **worker: Any) -> AsyncIterator[Bench]:
    """A dev server, and a worker for ``queue`` (``worker``: ``run_worker``'s keywords) running the stand-in CLI
    in a temporary workspace, until the block is left."""
    from temporalio.client import Client

    from orchestrator import temporal

    with tempfile.TemporaryDirectory() as tmp, temporal.DevServer() as server:
        workspace = Path(tmp)
        cli = install_standin(workspace / "bin")
        client = await Client.connect(server.address)
        stop, ready = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: temporal.run_worker(client, queue, workspace=workspace, cli_path=str(cli),
                                                      stop=stop, ready=ready, **worker))
            await ready.wait()
            try:
                yield Bench(server.address, client, temporal.TemporalRunner(client, queue), workspace)
            finally:
                stop.set()
