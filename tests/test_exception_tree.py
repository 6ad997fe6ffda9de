"""One exception tree: every exception class the three packages define derives from ``ClaudeScopeError``,
keeping the builtin base it stands for (so ``except ValueError`` still works); the tree drawn at the top of
``sdk_wrapper/_errors.py`` and on ``docs/failures.md`` names every one of them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import migration
import orchestrator
import sdk_wrapper
from orchestrator import Orchestrator, Pipeline, RunExistsError, RunNotFoundError
from sdk_wrapper import ClaudeScopeError, QueryLimits

ROOT = Path(__file__).parents[1]


def our_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in (sdk_wrapper, orchestrator, migration):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.startswith("migration.examples"):
                continue  # V3-style example programs, not the library
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name:
                    found[name] = obj
    return found


def test_every_exception_of_ours_derives_from_the_root_and_is_in_the_tree() -> None:
    found = our_exceptions()
    assert len(found) >= 17, sorted(found)  # the tree's entries, found by walking the modules
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, ClaudeScopeError))
    assert not outside, f"not under ClaudeScopeError: {outside}"
    tree = (ROOT / "sdk_wrapper" / "_errors.py").read_text().split('"""')[1]
    page = (ROOT / "docs" / "failures.md").read_text()
    missing = sorted(name for name in found if name not in tree or name not in page)
    assert not missing, f"not drawn in the tree (sdk_wrapper/_errors.py and docs/failures.md): {missing}"


@pytest.mark.parametrize(("name", "builtin"), [
    ("PipelineError", ValueError), ("UsageError", ValueError), ("ScenarioError", ValueError),
    ("RunExistsError", ValueError), ("RunNotFoundError", KeyError), ("ArgumentTypeError", TypeError),
    ("JournalError", RuntimeError), ("StateError", RuntimeError), ("LegacyModeError", RuntimeError),
])
def test_each_keeps_its_builtin_base(name: str, builtin: type[BaseException]) -> None:
    assert issubclass(our_exceptions()[name], builtin)


@pytest.mark.anyio
async def test_what_callers_used_to_catch_as_builtins(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be a finite positive number") as bad:
        QueryLimits(timeout_s=-1)
    assert isinstance(bad.value, ClaudeScopeError)
    with Orchestrator(tmp_path / "runs.db", project_dir=tmp_path) as orch:
        with pytest.raises(KeyError) as unknown:
            await orch.resume("nope", Pipeline([orchestrator.Phase("a", "x")]))
        assert isinstance(unknown.value, RunNotFoundError) and str(unknown.value).startswith("no run 'nope' in ")
        orch.journal.start_run("taken", {}, ["a"], new=True)
        with pytest.raises(RunExistsError, match="already exists"):
            await orch.run(Pipeline([orchestrator.Phase("a", "x")]), run_id="taken")
