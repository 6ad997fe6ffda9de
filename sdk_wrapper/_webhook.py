"""Optional result webhooks: the query's outcome POSTed as JSON once its CLI tree is gone.

Why inside the scope rather than left to the caller: a pipeline that is killed right after a query would
otherwise lose the notification, and a fire-and-forget task would outlive its scope (the class of bug this
package exists to remove). So the delivery runs in the query's own task, after cleanup and before
``__aexit__`` returns, bounded by ``timeout_s`` and shielded, with one ``httpx.AsyncClient`` that is closed
under a shield whatever happens. Delivery never changes ``outcome.ok``: its own result is
``outcome.webhook`` (``WebhookDelivery``), and a failure is logged with its type.

The payload is a summary, redacted like every log line: ids, ok, the failure (kind, message, stderr tail),
cost, turns, duration, and the cleanup report. The CLI's answer text is left out unless
``include_result_text`` is set, because a webhook often crosses a trust boundary the answer should not.
Webhook headers (a bearer token, say) are sent, never logged or stored in the outcome.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import httpx

from ._errors import UsageError
from ._outcome import QueryOutcome, WebhookDelivery
from ._redact import redact, redact_data
from ._tracker import ResourceTracker


@dataclass(frozen=True)
class ResultWebhook:
    """Where to POST each query's outcome. ``headers`` stay out of reprs, logs and outcomes."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 5.0
    include_result_text: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise UsageError(f"ResultWebhook.url must be an http(s) URL, got {self.url!r}")
        if not self.timeout_s > 0:
            raise UsageError(f"ResultWebhook.timeout_s must be > 0, got {self.timeout_s!r}")


def payload(outcome: QueryOutcome, include_result_text: bool) -> dict[str, Any]:
    result = outcome.result
    body: dict[str, Any] = {
        "type": "claude_scope.query_outcome",
        "query_id": outcome.query_id,
        "attempts": max(1, len(outcome.attempts)),
        "ok": outcome.ok,
        "session_id": outcome.session_id,
        "cost_usd": outcome.cost_usd,
        "num_turns": outcome.num_turns,
        "duration_s": round(outcome.duration_s, 4),
        "message_count": outcome.message_count,
        "result": None if result is None else {
            "subtype": result.subtype, "is_error": result.is_error,
            **({"text": result.result} if include_result_text else {}),
        },
        "failure": None if outcome.failure is None else outcome.failure.to_dict(),
        "cleanup": {"clean": outcome.cleanup.clean, "pids_ended": list(outcome.cleanup.pids_ended),
                    "leftover_pids": list(outcome.cleanup.leftover_pids),
                    "sigkill_needed": outcome.cleanup.sigkill_needed},
    }
    redacted: dict[str, Any] = redact_data(body)
    return redacted


async def deliver(
    webhook: ResultWebhook, outcome: QueryOutcome, *, log: Any, tracker: ResourceTracker | None
) -> QueryOutcome:
    """POST the outcome and return it with ``webhook`` set. Shielded and bounded by ``timeout_s``: it runs
    on the way out of a query, cancelled or not, and never raises for HTTP problems."""
    with anyio.CancelScope(shield=True):
        delivery = await _post(webhook, outcome, log, tracker)
    return replace(outcome, webhook=delivery)


async def _post(webhook: ResultWebhook, outcome: QueryOutcome, log: Any,
                tracker: ResourceTracker | None) -> WebhookDelivery:
    return await post_json(webhook, payload(outcome, webhook.include_result_text), log=log, tracker=tracker,
                           what=f"webhook for query {outcome.query_id}")


async def post_json(webhook: ResultWebhook, body: dict[str, Any], *, log: Any,
                    tracker: ResourceTracker | None = None, what: str = "webhook") -> WebhookDelivery:
    """POST ``body`` (redacted) to ``webhook``, bounded by its ``timeout_s``, one client closed whatever
    happens; never raises for HTTP problems (the delivery says what happened). The caller shields it."""
    started = time.monotonic()
    client = httpx.AsyncClient(timeout=webhook.timeout_s)
    if tracker is not None:
        tracker.add(client, "httpx.AsyncClient", what)
    status: int | None = None
    error: str | None = None
    try:
        with anyio.move_on_after(webhook.timeout_s) as scope:
            response = await client.post(webhook.url, json=redact_data(body), headers=dict(webhook.headers))
            status = response.status_code
        if scope.cancelled_caught:
            error = f"no answer within timeout_s={webhook.timeout_s}"
        elif status is not None and not 200 <= status < 300:
            error = f"HTTP {status}"
    except httpx.HTTPError as exc:  # by type: timeouts, refused connections, protocol errors
        error = redact(f"{type(exc).__name__}: {exc}")[:300]
    finally:
        await client.aclose()  # already shielded by deliver()
        if tracker is not None:
            tracker.discard(client)
    delivery = WebhookDelivery(error is None, status, error, time.monotonic() - started)
    if delivery.delivered:
        log.info("webhook.delivered", status=status, seconds=round(delivery.duration_s, 4))
    else:
        log.warning("webhook.failed", status=status, error=error)
    return delivery
