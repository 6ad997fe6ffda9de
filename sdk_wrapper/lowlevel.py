"""Plumbing for code built on the wrapper (the orchestrator), kept out of the top-level API: stable, public,
but not what a caller of ``run_query`` needs.

- ``agent_backend()`` / ``code_backend()``: each SDK's backend (its options class, its errors, how its
  command line is built); ``agent_backend()`` raises ImportError without the ``agent`` extra.
- ``backend_for(options)``: the backend an options object belongs to, or None.
"""

from __future__ import annotations

from ._backend import Backend, agent_backend, backend_for, code_backend

__all__ = ["Backend", "agent_backend", "backend_for", "code_backend"]
