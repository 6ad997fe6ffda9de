"""Preflight over real HTTP against the loopback Messages API mock: answers, rejections, nobody home."""

from __future__ import annotations

import pytest

from sdk_wrapper import FailureKind, ResourceTracker, preflight
from sdk_wrapper.testing import DUMMY_KEY, MessagesAPIMock
from sdk_wrapper.testing.pytest_plugin import LeakGuard

pytestmark = pytest.mark.anyio


async def test_endpoint_answers_and_key_accepted(leak_guard: LeakGuard) -> None:
    tracker = ResourceTracker()
    with MessagesAPIMock(accept_key=DUMMY_KEY) as api:
        result = await preflight(base_url=api.url, api_key=DUMMY_KEY, tracker=tracker)
    assert result.ok and result.status == 200 and result.kind is None
    assert api.requests[0]["path"] == "/v1/messages/count_tokens" and api.requests[0]["has_api_key"]
    assert tracker.opened == 1 and tracker.verify() == []  # the client was closed


async def test_rejected_key_is_auth_and_never_echoed(leak_guard: LeakGuard) -> None:
    secret = "sk-ant-api03-" + "Z" * 40
    with MessagesAPIMock(accept_key=DUMMY_KEY) as api:
        result = await preflight(base_url=api.url, api_key=secret)
    assert (result.ok, result.kind, result.status, result.retryable) == (False, FailureKind.AUTH, 401, False)
    assert secret not in result.message


async def test_unreachable_endpoint(leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch) -> None:
    api = MessagesAPIMock()
    url = api.url
    api._server.server_close()  # nothing listens there now
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)  # read at call time
    monkeypatch.setenv("ANTHROPIC_API_KEY", DUMMY_KEY)
    result = await preflight(timeout_s=2)
    assert (result.ok, result.kind, result.retryable) == (False, FailureKind.API_ERROR, True)
    assert "unreachable" in result.message and result.latency_s < 2
