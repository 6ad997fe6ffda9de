"""Plumbing for code built on the wrapper (the orchestrator), kept out of the top-level API: stable, public,
but not what a caller of ``run_query`` needs.

- ``agent_backend()`` / ``code_backend()``: each SDK's backend (its options class, its errors, how its
  command line is built); ``agent_backend()`` raises ImportError without the ``agent`` extra.
- ``backend_for(options)``: the backend an options object belongs to, or None.
- ``post_json(webhook, body, log=...)``: a bounded, redacted POST to a ``ResultWebhook`` (approval gates use it).
- ``Caps`` (a memory and process-count cap for ``run_contained``), ``cap_support()`` (how each cap can be
  enforced on this host, for ``doctor``), ``check_caps`` (``CapsError`` unless they can).
- ``read_masked(journal_path)``: what shadow mode recorded the real V3 would have hidden (``claude-scope
  masked``; also ``sdk_wrapper.v3.read_masked``, which imports the SDK).

Each name is imported when first used, so a command that needs one (``masked``) pays for no other.
"""

from __future__ import annotations

import importlib
import typing

from ._containment._caps import support as _support  # standard library only, as is _cgroup
from ._containment._cgroup import host_cgroup

if typing.TYPE_CHECKING:
    from ._backends import Backend, agent_backend, backend_for, code_backend
    from ._containment._caps import Caps, CapsError
    from ._masked import read_masked
    from ._options import check_caps
    from ._webhook import post_json

_WHERE = {"Backend": "._backends", "agent_backend": "._backends", "backend_for": "._backends",
          "code_backend": "._backends", "Caps": "._containment._caps", "CapsError": "._containment._caps",
          "check_caps": "._options", "read_masked": "._masked", "post_json": "._webhook"}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sdk_wrapper.lowlevel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, "sdk_wrapper"), name)
    globals()[name] = value
    return value


def cap_support() -> dict[str, str]:
    """How each cap (``memory``, ``pids``) can be enforced on this host: where, or why not."""
    host = host_cgroup().host
    return _support(None if host is None else host.path)


__all__ = ["Backend", "Caps", "CapsError", "agent_backend", "backend_for", "cap_support", "check_caps", "code_backend",
           "post_json", "read_masked"]
