"""A run's page: what the journal (or a Temporal workflow) recorded of a run, as a view (``_view``: plain
data, the transcripts read from the message logs) and as one self-contained HTML file (``_html``)."""

from __future__ import annotations

from ._html import open_run_page, render_run_page, timeline, write_run_page
from ._view import (
    BODY_CHARS,
    AttemptView,
    CleanupView,
    Item,
    PhaseView,
    RunView,
    Transcript,
    cut,
    items_of,
    read_transcript,
    run_view,
)

__all__ = ["BODY_CHARS", "AttemptView", "CleanupView", "Item", "PhaseView", "RunView", "Transcript", "cut",
           "items_of", "open_run_page", "read_transcript", "render_run_page", "run_view", "timeline",
           "write_run_page"]
