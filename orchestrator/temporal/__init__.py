"""claude-scope on Temporal: the same pipelines, durable across machines (the ``temporal`` extra).

    server = DevServer().start()                                   # or a real cluster's address
    runner = await TemporalRunner.connect(server.address, "my-checkout")
    report = await runner.run(spec_from_file("pipeline.toml"))     # the same RunReport as Orchestrator.run

A pipeline is a workflow (scheduling, budgets, our retry policy, a ``status`` query, cancellation); each
phase attempt is an activity that runs the local orchestrator's phase core on a worker, heartbeating while
the query streams. Workers: ``run_worker`` / ``claude-scope worker``. Importing this package needs
``temporalio``; nothing else in claude-scope imports it.
"""

from __future__ import annotations

import typing

from sdk_wrapper.lowlevel import lazy_names as _lazy_names

if typing.TYPE_CHECKING:  # the same names for type checkers; at run time each is imported when first used
    from .._engine import end_orphans
    from .._journal import RunNotFoundError
    from ._activity import PhaseActivities
    from ._client import TemporalRunner
    from ._server import DevServer, ServerError, temporal_binary
    from ._spec import PipelineSpec, spec_from_data, spec_from_file, spec_from_pipeline
    from ._worker import build_worker, run_worker
    from ._workflow import PipelineWorkflow

#: where each public name lives: ``claude-scope status --address`` needs the client alone, not the worker,
#: the activities or an SDK
_WHERE = {"end_orphans": "orchestrator._engine", "RunNotFoundError": "orchestrator._journal",
          "PhaseActivities": "._activity", "TemporalRunner": "._client", "DevServer": "._server",
          "ServerError": "._server", "temporal_binary": "._server", "PipelineSpec": "._spec",
          "spec_from_data": "._spec", "spec_from_file": "._spec", "spec_from_pipeline": "._spec",
          "build_worker": "._worker", "run_worker": "._worker", "PipelineWorkflow": "._workflow"}



__all__ = [
    "DevServer",
    "PhaseActivities",
    "PipelineSpec",
    "PipelineWorkflow",
    "RunNotFoundError",
    "ServerError",
    "TemporalRunner",
    "build_worker",
    "end_orphans",
    "run_worker",
    "spec_from_data",
    "spec_from_file",
    "spec_from_pipeline",
    "temporal_binary",
]

__getattr__, __dir__ = _lazy_names(__name__, _WHERE, __all__)
