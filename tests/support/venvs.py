"""Fresh virtual environments holding vk-node or vk-hive installed as users install them (a plain
``pip install ./packages/<name>``, not editable), for the packaging and mixed-version e2e tests.

- :func:`fresh_venv_with` builds one from this checkout or from any extracted tree, optionally
  under pip constraints (a lock file).
- :func:`fresh_venvs` builds the vk-hive one and the vk-node one side by side.
- :func:`extract_release` writes the ``packages`` and ``constraints`` trees of a commit of this
  repository (a previous release) to a directory.

Every command runs without the suite's own environment leaking in (:func:`clean_env`) and fails
with its exit status and the tails of its output (:func:`run`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = [
    "INSTALL_TIMEOUT_S",
    "ROOT",
    "clean_env",
    "extract_release",
    "fresh_venv_with",
    "fresh_venvs",
    "run",
]

ROOT = Path(__file__).resolve().parents[2]
"""The repository (or worktree) these tests belong to."""

INSTALL_TIMEOUT_S = 420
"""How long one ``pip install`` may take (a cold cache downloads every dependency)."""


def clean_env() -> dict[str, str]:
    """The caller's environment minus whatever would let the dev install leak into the venv."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"):
        env.pop(name, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def run(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in ``cwd`` with :func:`clean_env`; fail unless it exits 0."""
    result = subprocess.run(
        args, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


def fresh_venv_with(
    where: Path, package: str, *, source: Path = ROOT, constraints: Path | None = None
) -> Path:
    """Create a venv in ``where`` and ``pip install ./packages/<package>`` into it from the tree
    ``source`` (default: this checkout), under ``constraints`` when given (else the newest
    versions the registry serves); return its ``bin`` directory."""
    venv = where / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", str(venv)], cwd=where)
    bin_dir = venv / "bin"
    pinned = ["-c", str(constraints)] if constraints is not None else []
    install = [str(bin_dir / "python"), "-m", "pip", "install", "--no-compile", *pinned]
    run(
        [*install, f"./packages/{package}"],
        cwd=source,
        timeout=INSTALL_TIMEOUT_S,
    )
    return bin_dir


def fresh_venvs(
    where: Path, *, source: Path = ROOT, constraints: Path | None = None
) -> dict[str, Path]:
    """``{"hive": bin dir, "node": bin dir}``: :func:`fresh_venv_with` for both packages, in
    ``where/hive`` and ``where/node``, built at the same time (pip's cache is safe to share)."""

    def build(package: str) -> Path:
        home = where / package
        home.mkdir(parents=True)
        return fresh_venv_with(home, package, source=source, constraints=constraints)

    with ThreadPoolExecutor(max_workers=2) as pool:
        built = {package: pool.submit(build, package) for package in ("hive", "node")}
        return {package: future.result() for package, future in built.items()}


def extract_release(commit: str, dest: Path) -> Path:
    """Write the ``packages`` and ``constraints`` trees of ``commit`` (of the repository at
    :data:`ROOT`) into ``dest`` and return ``dest``: a tree ``fresh_venv_with(source=dest,
    constraints=dest / "constraints/locked.txt")`` installs that release from."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, (
        f"commit {commit} is not in the history of the clone at {ROOT} ({found.stderr.strip()}); "
        "a shallow clone lacks it: fetch the full history (git fetch --unshallow) and run again"
    )
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "release.tar"
    run(
        ["git", "-C", str(ROOT), "archive", "-o", str(archive), commit, "packages", "constraints"],
        cwd=dest,
    )
    run(["tar", "-x", "-f", str(archive), "-C", str(dest)], cwd=dest)
    archive.unlink()
    return dest
