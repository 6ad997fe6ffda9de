"""Plumbing for code built on the wrapper (the orchestrator), kept out of the top-level API: stable, public,
but not what a caller of ``run_query`` needs.

- ``agent_backend()`` / ``code_backend()``: each SDK's backend (its options class, its errors, how its
  command line is built); ``agent_backend()`` raises ImportError without the ``agent`` extra.
- ``backend_for(options)``: the backend an options object belongs to, or None.
- ``post_json(webhook, body, log=...)``: a bounded, redacted POST to a ``ResultWebhook`` (approval gates use it).
- ``Caps`` (a memory and process-count cap for ``run_contained``), ``cap_support()`` (how each cap can be
  enforced on this host, for ``doctor``), ``check_caps`` (``CapsError`` unless they can).
- ``lazy_names(package, where, exported)``: a package's ``__getattr__`` / ``__dir__`` that import each
  public name when first used (ours use it; so may a package built on the wrapper).
- ``read_masked(journal_path)``: what shadow mode recorded the real V3 would have hidden (``claude-scope
  masked``; also ``sdk_wrapper.v3.read_masked``, which imports the SDK).

Each name is imported when first used, so a command that needs one (``masked``) pays for no other.
"""

from __future__ import annotations

import typing

from ._lazy import lazy_names

if typing.TYPE_CHECKING:
    from ._backends import Backend, agent_backend, backend_for, code_backend
    from ._containment._caps import Caps, CapsError, cap_support
    from ._masked import read_masked
    from ._options import check_caps
    from ._webhook import post_json

_BACKENDS, _CAPS = "sdk_wrapper._backends", "sdk_wrapper._containment._caps"
_WHERE = {"Backend": _BACKENDS, "agent_backend": _BACKENDS, "backend_for": _BACKENDS, "code_backend": _BACKENDS,
          "Caps": _CAPS, "CapsError": _CAPS, "cap_support": _CAPS, "check_caps": "sdk_wrapper._options",
          "read_masked": "sdk_wrapper._masked", "post_json": "sdk_wrapper._webhook"}

__all__ = ["Backend", "Caps", "CapsError", "agent_backend", "backend_for", "cap_support", "check_caps", "code_backend",
           "lazy_names", "post_json", "read_masked"]

__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
