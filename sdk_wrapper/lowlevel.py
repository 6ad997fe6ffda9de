"""Plumbing for code built on the wrapper (the orchestrator), kept out of the top-level API: stable, public,
but not what a caller of ``run_query`` needs.

- ``agent_backend()`` / ``code_backend()``: each SDK's backend (its options class, its errors, how its
  command line is built); ``agent_backend()`` raises ImportError without the ``agent`` extra.
- ``backend_for(options)``: the backend an options object belongs to, or None.
- ``post_json(webhook, body, log=...)``: a bounded, redacted POST to a ``ResultWebhook`` (approval gates use it).
- ``Caps`` (a memory and process-count cap for ``run_contained``), ``cap_support()`` (how each cap can be
  enforced on this host, for ``doctor``), ``check_caps`` (``CapsError`` unless they can).
"""

from __future__ import annotations

from ._backend import Backend, agent_backend, backend_for, code_backend
from ._caps import Caps, CapsError
from ._caps import support as _support
from ._cgroup import host_cgroup
from ._options import check_caps
from ._webhook import post_json


def cap_support() -> dict[str, str]:
    """How each cap (``memory``, ``pids``) can be enforced on this host: where, or why not."""
    host = host_cgroup().host
    return _support(None if host is None else host.path)


__all__ = ["Backend", "Caps", "CapsError", "agent_backend", "backend_for", "cap_support", "check_caps", "code_backend",
           "post_json"]
