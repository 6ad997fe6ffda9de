from __future__ import annotations

import logging

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _quiet_sdk_logger() -> None:
    # The SDK logs "Fatal error in message reader" at ERROR for every failing CLI; the tests assert on
    # outcomes instead. (leak_guard listens to the asyncio logger, not this one.)
    logging.getLogger("claude_code_sdk").setLevel(logging.CRITICAL)
    logging.getLogger("claude_agent_sdk").setLevel(logging.CRITICAL)
