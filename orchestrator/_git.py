"""Git, as isolated phases use it: one repository, our own identity, no hooks, no signing, no user config.

Every command runs with an environment of ours: commits carry ``claude-scope`` as author and committer
whatever ``user.name`` says, ``commit.gpgSign``, hooks, fsmonitor and automatic gc are off, and a ``GIT_DIR``
or ``GIT_INDEX_FILE`` the orchestrator inherited (from a hook, say) cannot redirect us. Needs git 2.38 or
later (``merge-tree --write-tree``: a merge computed without touching any checkout).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import anyio

from sdk_wrapper import ClaudeScopeError

from ._model import PipelineError

#: ``merge-tree --write-tree`` (a merge with no checkout) came in git 2.38
GIT_MIN = (2, 38)
IDENTITY = {"GIT_AUTHOR_NAME": "claude-scope", "GIT_AUTHOR_EMAIL": "claude-scope@localhost",
            "GIT_COMMITTER_NAME": "claude-scope", "GIT_COMMITTER_EMAIL": "claude-scope@localhost"}
_CONFIG = ("-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false", "-c", "core.hooksPath=/dev/null",
           "-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "core.fsmonitor=false",
           "-c", "core.autocrlf=false", "-c", "advice.detachedHead=false")
#: inherited variables that would point our commands at another repository, index or object store
_REDIRECTS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR", "GIT_PREFIX",
              "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES")


class GitCommandError(ClaudeScopeError, RuntimeError):
    """A git command of ours failed; the message has the command and git's own words."""


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTS}
    env.update(IDENTITY, GIT_TERMINAL_PROMPT="0", GIT_EDITOR="true", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Repo:
    """A checkout: its top level, its own git directory (where ``index.lock`` lives) and the common one."""

    top: Path
    git_dir: Path
    common_dir: Path

    async def git(self, *args: str, cwd: Path | None = None, stdin: bytes | None = None,
                  env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> tuple[int, str]:
        """Run ``git args`` (in the checkout unless ``cwd``); its exit code and stdout. An exit code not in
        ``ok`` raises ``GitCommandError``."""
        proc = await anyio.run_process(["git", *_CONFIG, *args], cwd=cwd or self.top, input=stdin,
                                       env=git_env(env), check=False)
        if proc.returncode not in ok:
            said = proc.stderr.decode(errors="replace").strip()[-2000:]
            raise GitCommandError(f"git {' '.join(args[:3])} failed (exit {proc.returncode}) in {cwd or self.top}: "
                                  f"{said}")
        return proc.returncode, proc.stdout.decode(errors="surrogateescape")

    async def out(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """A command's stdout, stripped (for the one-line answers: a commit, a tree)."""
        return (await self.git(*args, cwd=cwd, env=env))[1].strip()


async def open_repo(project_dir: Path) -> Repo:
    """The repository ``project_dir`` is in; ``PipelineError`` saying what is missing when isolation cannot
    work there (no git, too old a git, not a repository, no commit yet)."""
    try:
        proc = await anyio.run_process(["git", "version"], check=False, env=git_env())
    except OSError:
        raise PipelineError('isolation = "worktree" needs git on PATH; it is not there') from None
    words = proc.stdout.decode().split()
    numbers = words[2].split(".") if len(words) > 2 else []
    version = tuple(int(n) for n in numbers[:2] if n.isdigit())
    if version < GIT_MIN:
        raise PipelineError(f'isolation = "worktree" needs git {GIT_MIN[0]}.{GIT_MIN[1]} or later, this is '
                            f"{proc.stdout.decode().strip()!r}")
    proc = await anyio.run_process(["git", "rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"],
                                   cwd=project_dir, check=False, env=git_env())
    if proc.returncode != 0:
        raise PipelineError(f'isolation = "worktree" needs a git repository; {project_dir} is not in one '
                            f"(git init, and commit once)")
    top, git_dir, common = proc.stdout.decode().splitlines()[:3]
    repo = Repo(Path(top), Path(git_dir), (Path(top) / common).resolve())
    code, _ = await repo.git("rev-parse", "--verify", "-q", "HEAD^{commit}", ok=(0, 1))
    if code != 0:
        raise PipelineError(f'isolation = "worktree" needs a commit to start from; {top} has none yet')
    return repo


async def repo_at(top: Path) -> Repo | None:
    """The repository a journalled worktree, merge or branch of ours was in, or None when it is gone (the
    directory removed, or no longer a repository): then nothing of ours is left in it to clean."""
    try:
        return await open_repo(top) if await anyio.Path(top).is_dir() else None
    except PipelineError:
        return None
