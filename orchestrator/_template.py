"""Prompts that hand evidence on: a pipeline file's prompt may include an earlier phase's result text and a
file of the project, rendered by Jinja2's sandboxed environment with strict undefined names.

    prompt = '''Write the plan from this research:
    {{ phases.research.result }}
    Keep to the outline in {{ file("milestone_1/outline.md") }}.'''

Names: ``phases.NAME.result`` (the CLI's result text), ``.status``, ``.cost_usd``, ``.num_turns`` and
``.session_id`` of a phase this one depends on, directly or not; ``file(PATH)``, a file of the project
(relative to it, never outside it). Each is cut to ``MAX_HANDED_ON`` characters. Anything else (a misspelt
name, a phase that is not among its dependencies, another attribute, ``phases`` used whole) is a
``PipelineError`` naming the phase when the pipeline is loaded, not a surprise mid-run. A file that is
missing when the phase starts fails the phase with that reason.

A literal ``{{`` is written ``{{ "{{" }}``, or a passage is wrapped in ``{% raw %}...{% endraw %}``. A prompt
with none of ``{{``, ``{%``, ``{#`` is used as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from sdk_wrapper import ClaudeScopeError

from ._model import PipelineError

if TYPE_CHECKING:
    from ._context import RunContext
    from ._model import PhaseOutcome

#: the most a handed-on value (a result text, a file) puts into a prompt, in characters
MAX_HANDED_ON = 20_000
#: what a prompt may read of a phase it depends on
ATTRIBUTES = frozenset({"result", "status", "cost_usd", "num_turns", "session_id"})
_DELIMITERS = ("{{", "{%", "{#")


class PromptRenderError(ClaudeScopeError, RuntimeError):
    """A prompt that could not be rendered when its phase started (a file it includes is missing)."""


def is_template(text: str) -> bool:
    return any(d in text for d in _DELIMITERS)


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_HANDED_ON else text[:MAX_HANDED_ON] + f"\n[... cut at {MAX_HANDED_ON:,} characters]"


@dataclass(frozen=True)
class HandedOn:
    """What a prompt sees of an earlier phase (the sandbox allows nothing else)."""

    result: str
    status: str
    cost_usd: float | None
    num_turns: int | None
    session_id: str | None

    @classmethod
    def of(cls, outcome: PhaseOutcome) -> HandedOn:
        return cls(_cut(outcome.result_text or ""), outcome.status.value, outcome.cost_usd, outcome.num_turns,
                   outcome.session_id)


class TemplatePrompt:
    """A prompt template, checked when it is made; called with the run's context to render it."""

    def __init__(self, source: str, where: str) -> None:
        self.source = source
        self.__name__ = "template"
        env = _environment()
        try:
            tree = env.parse(source)
        except TemplateSyntaxError as exc:
            raise PipelineError(f"{where}: prompt is not a valid template (line {exc.lineno}): {exc.message}") \
                from None
        #: the phases it reads (each must be among the phase's dependencies, direct or not)
        self.phases_referenced = _references(tree, where)
        self._template = env.from_string(source)

    def __call__(self, ctx: RunContext) -> str:
        return self.render(ctx.outcomes, ctx.project_dir)

    def render(self, outcomes: Mapping[str, PhaseOutcome], project_dir: Path) -> str:
        phases = {name: HandedOn.of(outcomes[name]) for name in self.phases_referenced if name in outcomes}
        root = project_dir.resolve()

        def file(path: str) -> str:
            target = (root / str(path)).resolve()
            if not target.is_relative_to(root):
                raise PromptRenderError(f"file({path!r}) is outside the project ({root})")
            try:
                return _cut(target.read_text(encoding="utf-8", errors="replace"))
            except OSError as exc:
                raise PromptRenderError(f"file({path!r}) cannot be read: {exc.strerror}") from None

        return self._template.render(phases=phases, file=file)


def _references(tree: nodes.Template, where: str) -> frozenset[str]:
    """The phases a template reads, each as ``phases.NAME.ATTRIBUTE`` (or ``phases["NAME"]...``); any other
    use of a name is an error, raised now."""
    unknown = meta.find_undeclared_variables(tree) - {"phases", "file"}
    if unknown:
        raise PipelineError(f"{where}: prompt uses unknown name(s) {sorted(unknown)}: a prompt may read "
                            "phases.NAME.ATTRIBUTE and file(PATH)")
    accesses: dict[int, str] = {}  # id of a `phases.NAME` node -> NAME
    lookups = [(node, *_lookup(node)) for node in tree.find_all((nodes.Getattr, nodes.Getitem))]
    for node, inner, key in lookups:
        if isinstance(inner, nodes.Name) and inner.name == "phases":
            if not isinstance(key, str):
                raise PipelineError(f"{where}: prompt reads phases[...] with a computed name; name the phase")
            accesses[id(node)] = key
    read: set[int] = set()
    for _, inner, key in lookups:
        if id(inner) in accesses:
            if key not in ATTRIBUTES:
                raise PipelineError(f"{where}: prompt reads phases.{accesses[id(inner)]}.{key}: a phase has "
                                    f"{', '.join(sorted(ATTRIBUTES))}")
            read.add(id(inner))
    uses = sum(1 for n in tree.find_all(nodes.Name) if n.name == "phases")
    if len(read) != len(accesses) or uses != len(accesses):
        raise PipelineError(f"{where}: prompt uses phases without naming what it reads: write "
                            "phases.NAME.result (or .status, .cost_usd, .num_turns, .session_id)")
    return frozenset(accesses.values())


def _lookup(node: nodes.Node) -> tuple[nodes.Node, object]:
    """(what is looked into, the key): ``x.key`` or ``x["key"]`` (a computed key is not a string)."""
    if isinstance(node, nodes.Getattr):
        return node.node, node.attr
    assert isinstance(node, nodes.Getitem)
    return node.node, node.arg.value if isinstance(node.arg, nodes.Const) else None
