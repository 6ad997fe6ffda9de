"""Structured events, configured by the application, never by this library.

When the application has configured structlog, our events go through its chain. Otherwise they are
rendered as JSON (secrets redacted) into the stdlib logger ``claude_scope``, which is silent below WARNING
until the application adds a handler: a library must not print. Ids bound with
``structlog.contextvars`` (the orchestrator binds ``run_id`` and ``phase``) appear in every event, and
each query's events carry its ``query_id``. Event names are stable: ``query.start``,
``query.end``, ``cleanup.signal``, ``cleanup.verified``, ``retry.attempt``, ``output.skipped``.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

from ._redact import redact_event

LOGGER_NAME = "claude_scope"


def get_logger(**bound: Any) -> Any:
    """A bound logger; decided at call time, so configuration done after import is honoured."""
    if structlog.is_configured():
        return structlog.get_logger(LOGGER_NAME).bind(**bound)
    return structlog.wrap_logger(
        logging.getLogger(LOGGER_NAME),
        processors=[
            # First: an event the stdlib logger would drop is dropped before it is stamped, redacted and
            # rendered (4-5 events per query, each a JSON render nobody reads at the default WARNING).
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,  # run_id / phase bound by the orchestrator
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            redact_event,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    ).bind(**bound)
