"""The dicts V3 code reads, built so that every ``.get(key, default)`` V3 does still works.

V3 code reads results as ``msg_dict.get("total_cost_usd", 0.0)`` then ``cost > 0`` and ``sum(...)``, and
``msg_dict.get("result", "Unknown error")`` for a failed phase's reason. A key that is present with the value
``None`` defeats the default (``None > 0`` is a ``TypeError``; a failed phase's error becomes ``None``). So:

- cost: the CLI's ``total_cost_usd``, else its older ``total_cost`` or ``cost_usd`` (as V3's own patch mapped
  them), as floats under both ``total_cost_usd`` and ``cost_usd``; when the CLI said nothing, both keys are
  left out (the caller's own default applies), never a made-up number;
- an error result without ``result`` text (the CLI's ``error_max_turns`` carries its reason in ``errors``)
  gets the reason from ``errors``, else its subtype, with the CLI's own ``subtype`` and ``is_error`` kept;
- other keys V3 reads with a default (``duration_api_ms``, ``num_turns``, ``usage``) are left out when None.
"""

from __future__ import annotations

import time
from typing import Any

from claude_code_sdk import AssistantMessage, Message, ResultMessage, SystemMessage, UserMessage

from .._classify import cli_cost, error_reason
from .._outcome import Failure, QueryOutcome

_OPTIONAL = ("duration_api_ms", "num_turns", "usage")


def _with_cost(data: dict[str, Any], cost: float | None) -> dict[str, Any]:
    data.pop("total_cost_usd", None)
    data.pop("cost_usd", None)
    if cost is not None:
        data["total_cost_usd"] = data["cost_usd"] = cost
    for key in _OPTIONAL:
        if data.get(key, 0) is None:
            del data[key]
    return data


def result_to_v3(message: ResultMessage, raw: dict[str, Any] | None) -> dict[str, Any]:
    """The CLI's result as V3 yielded it, with the fixes in the module doc."""
    data: dict[str, Any] = {"type": "result", **vars(message)}
    cost = float(message.total_cost_usd) if message.total_cost_usd is not None else cli_cost(raw)
    if data.get("result") is None and (message.is_error or message.subtype != "success"):
        data["result"] = error_reason(raw) or message.subtype
    return _with_cost(data, cost)


def message_to_v3(message: Message, raw_result: dict[str, Any] | None = None) -> dict[str, Any]:
    """One SDK message as V3 yielded it (``message.__dict__``) plus the keys V3 consumers read."""
    if isinstance(message, ResultMessage):
        return result_to_v3(message, raw_result)
    data: dict[str, Any] = dict(vars(message))
    if isinstance(message, SystemMessage):
        data.update(type="system", session_id=message.data.get("session_id"))
    elif isinstance(message, AssistantMessage):
        data["type"] = "assistant"
    elif isinstance(message, UserMessage):
        data["type"] = "user"
    return data


def failure_to_v3(outcome: QueryOutcome, failure: Failure) -> dict[str, Any]:
    """The one final error result for a failure the CLI never reported itself. Never a success."""
    data = {
        "type": "result", "subtype": f"error_{failure.kind.value}", "is_error": True,
        "result": f"{failure.kind.value}: {failure.message}", "failure": failure.to_dict(),
        "session_id": outcome.session_id, "duration_ms": int(outcome.duration_s * 1000), "duration_api_ms": None,
        "num_turns": outcome.num_turns, "usage": None, "timestamp": time.time(),
    }
    return _with_cost(data, outcome.cost_usd)
