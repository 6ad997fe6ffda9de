"""Approval gates (``approval = "before"`` or ``"after"``): a phase waits, durably, for a person.

The request is journalled (``approvals``) and the phase's status is ``waiting_approval``, so a restart of the
orchestrator finds it still waiting; ``claude-scope approve`` and ``reject`` (from any terminal, any process)
write the decision there, with who decided, when and why, and the waiting orchestrator reads it. A ``before``
gate holds no slot and no reservation; an ``after`` gate (the phase ran, its result and evidence are there
to review) holds no slot and keeps its reservation. Neither counts against the phase's timeout. A rejection
fails the phase as ``rejected`` (its dependents are skipped); ``reject --retry`` on an ``after`` gate runs
it again with the note as its feedback: a person in the retry loop.
"""

from __future__ import annotations

import dataclasses
import getpass
import socket
from collections.abc import Callable
from typing import Any

import anyio

from ._feedback import feedback_block
from ._model import PhaseOutcome
from ._status import PhaseKind, PhaseStatus

#: how often a waiting orchestrator looks for a decision in the journal
POLL_S = 0.25
#: the exit code of ``claude-scope run --no-wait`` (and ``resume --no-wait``) when the run stopped because
#: every phase left waits for a person; resume it once they decided
EXIT_WAITING = 3


def who() -> str:
    """Who decides: the user and host of the process that says so."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def waiting_message(gate: str, run_id: str, name: str) -> str:
    what = "before it starts" if gate == "before" else "of its result and evidence"
    return f"waits for approval {what}: claude-scope approve {run_id} {name} (or reject)"


def waiting_body(run_id: str, name: str, gate: str, address: str = "") -> dict[str, Any]:
    """What the pipeline's ``approval_webhook`` is told when ``name`` starts waiting (both engines; on
    Temporal the approve/reject commands take ``--address``)."""
    suffix = f" --address {address}" if address else ""
    return {"type": "claude_scope.approval_waiting", "run_id": run_id, "phase": name, "gate": gate,
            "message": waiting_message(gate, run_id, name),
            "approve": f"claude-scope approve {run_id} {name}{suffix}",
            "reject": f"claude-scope reject {run_id} {name}{suffix}"}


def waiting_outcome(outcome: PhaseOutcome, run_id: str) -> PhaseOutcome:
    """What the journal shows of a phase waiting at its ``after`` gate: its result and evidence, waiting."""
    return dataclasses.replace(outcome, status=PhaseStatus.WAITING_APPROVAL,
                               message=waiting_message("after", run_id, outcome.name))


def approved(decision: dict[str, Any]) -> bool:
    return decision.get("decision") == "approved"


def said(decision: dict[str, Any]) -> str:
    note = decision.get("note") or ""
    return f"{decision.get('decision')} by {decision.get('who')}" + (f": {note}" if note else "")


def rejected(name: str, decision: dict[str, Any], outcome: PhaseOutcome | None = None) -> PhaseOutcome:
    """The phase failed at its gate: ``rejected``, with who and why."""
    base = outcome or PhaseOutcome(name, PhaseStatus.FAILED)
    return dataclasses.replace(base, status=PhaseStatus.FAILED, kind=PhaseKind.REJECTED, message=said(decision))


def rejection_feedback(attempt: int, decision: dict[str, Any]) -> str:
    """What the rerun after a rejection is told: the person's note, as any retry's feedback."""
    return feedback_block(attempt, PhaseKind.REJECTED.value,
                          f"a person ({decision.get('who')}) rejected its result: {decision.get('note') or ''}")


async def decision(read: Callable[[], dict[str, Any] | None], poll_s: float = POLL_S) -> dict[str, Any]:
    """Wait for the open request's decision (``read`` returns the latest request, from the journal)."""
    while True:
        found = read()
        if found is not None and found.get("decided") is not None:
            return found
        await anyio.sleep(poll_s)
