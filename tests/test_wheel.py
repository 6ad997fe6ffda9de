"""The wheel works installed, not only editable: built by ``scripts/wheel`` from a clean copy (a stale module
planted in an ignored ``build/`` must not get in), installed into a new venv, it runs ``claude-scope demo``
and ``doctor``, imports ``sdk_wrapper.testing`` and ships the stand-in's README the code points to."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=600, env=env,
                          check=False)


@pytest.mark.timeout(900)  # a venv and the dependencies (from pip's cache when warm: about 15 s here)
def test_the_wheel_installs_and_runs(tmp_path: Path) -> None:
    if run("git", "rev-parse", "HEAD", cwd=ROOT).returncode != 0:
        pytest.skip("not a git checkout: scripts/wheel copies what git tracks")
    checkout = tmp_path / "checkout"
    assert run("git", "clone", "--quiet", "--no-hardlinks", ROOT, checkout, cwd=tmp_path).returncode == 0
    stale = checkout / "build" / "lib" / "sdk_wrapper" / "_stale_from_an_old_build.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("raise SystemExit('an old build leaked into the wheel')\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    built = run(checkout / "scripts" / "wheel", tmp_path / "dist", cwd=checkout, env=env)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("claude_scope-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sdk_wrapper/standin/README.md" in names and "orchestrator/examples/v3_pipeline.toml" in names
    assert not any("_stale_from_an_old_build" in n for n in names)
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    installed = run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]
    work = tmp_path / "work"
    work.mkdir()
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    demo = run(venv / "bin" / "claude-scope", "demo", cwd=work, env=clean)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "implement      succeeded         2" in demo.stdout and "e2e            failed" in demo.stdout
    doctor = run(venv / "bin" / "claude-scope", "doctor", cwd=work, env=clean)
    assert doctor.returncode == 0 and "containment" in doctor.stdout.lower(), doctor.stdout + doctor.stderr
    probe = ("import pathlib, sdk_wrapper, sdk_wrapper.testing, sdk_wrapper.standin as s; "
             "assert 'site-packages' in sdk_wrapper.__file__, sdk_wrapper.__file__; "
             "print((pathlib.Path(s.__file__).parent / 'README.md').read_text()[:40])")
    imported = run(venv / "bin" / "python", "-c", probe, cwd=work, env=clean)
    assert imported.returncode == 0 and imported.stdout.strip(), imported.stderr
