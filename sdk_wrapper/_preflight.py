"""Preflight: does the API endpoint answer, and is the key accepted? Before spending a phase on it.

One ``httpx.AsyncClient`` per call, closed under a shield whatever happens (httpx's own ``async with``
discipline, plus the shield so a cancellation cannot skip the close). It asks
``POST /v1/messages/count_tokens`` (free, and authenticated like a real request) and classifies by HTTP
status and by httpx's exception types: 401/403 ``auth``, 429 ``rate_limited``, 5xx/529 ``api_error``
(retryable), unreachable ``api_error``, no answer in time ``timeout``. The key never appears in the result.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import anyio
import httpx

from ._logging import get_logger
from ._outcome import FailureKind
from ._redact import redact
from ._tracker import ResourceTracker

DEFAULT_BASE_URL = "https://api.anthropic.com"
_STATUS_KINDS = {401: FailureKind.AUTH, 403: FailureKind.AUTH, 429: FailureKind.RATE_LIMITED}


@dataclass(frozen=True)
class Preflight:
    """``ok`` when the endpoint answered 200 to an authenticated request."""

    ok: bool
    kind: FailureKind | None
    status: int | None
    message: str
    retryable: bool
    latency_s: float


async def preflight(
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str = "claude-sonnet-4-5",
    timeout_s: float = 5.0,
    tracker: ResourceTracker | None = None,
) -> Preflight:
    """Check the endpoint and key. ``base_url``/``api_key`` default to ``ANTHROPIC_BASE_URL`` /
    ``ANTHROPIC_API_KEY`` (read now). Never raises for network or HTTP problems; cancellation propagates
    after the client is closed."""
    base = (base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY", "")
    started = time.monotonic()
    client = httpx.AsyncClient(timeout=timeout_s)
    if tracker is not None:
        tracker.add(client, "httpx.AsyncClient", f"preflight {base}")
    try:
        response = await client.post(
            f"{base}/v1/messages/count_tokens",
            headers={"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"},
            json={"model": model, "messages": [{"role": "user", "content": "ping"}]},
        )
    except httpx.TimeoutException as exc:
        return _result(FailureKind.TIMEOUT, None, f"no answer from {base} within {timeout_s}s ({type(exc).__name__})",
                       True, started)
    except httpx.TransportError as exc:
        return _result(FailureKind.API_ERROR, None, f"{base} unreachable ({type(exc).__name__})", True, started)
    finally:
        with anyio.CancelScope(shield=True):
            await client.aclose()
        if tracker is not None:
            tracker.discard(client)
    status = response.status_code
    if status == 200:
        return Preflight(True, None, status, "endpoint answered and accepted the key", False,
                         time.monotonic() - started)
    kind = _STATUS_KINDS.get(status, FailureKind.API_ERROR)
    retryable = kind is FailureKind.RATE_LIMITED or status >= 500
    return _result(kind, status, f"HTTP {status} from {base}: {redact(response.text)[:300]}", retryable, started)


def _result(kind: FailureKind, status: int | None, message: str, retryable: bool, started: float) -> Preflight:
    get_logger().warning("preflight.failed", kind=kind.value, status=status)
    return Preflight(False, kind, status, message, retryable, time.monotonic() - started)
