"""The wrapper's tests run on both anyio backends, as anyio's own suite does: the scope, the transport
and the SDKs' ``Query`` are anyio code, and a bug that only one event loop shows is still a bug."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


#: claude-agent-sdk 0.2.189's process_query iterates ``query.receive_messages()`` without ``aclosing``; when
#: the stream ends at the result, that inner generator is left to the garbage collector. asyncio finalizes
#: it silently; trio finalizes it too but says so with a ResourceWarning. No caller can reach it to close it.
AGENT_SDK_UNCLOSED = "claude_agent_sdk._internal.query.Query.receive_messages"


@pytest.fixture(autouse=True)
def _agent_sdk_on_trio(request: pytest.FixtureRequest, anyio_backend: str) -> None:
    if anyio_backend == "trio" and "leak_guard" in request.fixturenames:
        guard = request.getfixturevalue("leak_guard")
        guard.tolerate(ResourceWarning, matching=AGENT_SDK_UNCLOSED)
