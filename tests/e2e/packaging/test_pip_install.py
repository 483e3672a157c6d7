"""A plain ``pip install ./packages/<name>`` into a fresh virtual environment gives a working CLI.

vk-shared is not published on an index: vk-node and vk-hive name it by its path in this
repository, so pip must build and install it from ``packages/shared``. Each test builds a new
venv (pip's own cache is shared, so repeated runs only rebuild the three local packages).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
INSTALL_TIMEOUT_S = 420


def _clean_env() -> dict[str, str]:
    """The caller's environment minus whatever would let the dev install leak into the venv."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"):
        env.pop(name, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def _run(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


def _fresh_venv_with(tmp_path: Path, package: str) -> Path:
    """Create a venv in ``tmp_path`` and ``pip install ./packages/<package>`` into it; return
    its ``bin`` directory."""
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(venv)], cwd=tmp_path)
    bin_dir = venv / "bin"
    _run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--no-compile", f"./packages/{package}"],
        cwd=ROOT,
        timeout=INSTALL_TIMEOUT_S,
    )
    return bin_dir


def _version_of(package: str) -> str:
    data = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text("utf-8"))
    return str(data["project"]["version"])


@pytest.mark.timeout(INSTALL_TIMEOUT_S + 120)
@pytest.mark.parametrize(
    ("package", "script", "module", "absent"),
    [("node", "vk-node", "vk_node", "vk_hive"), ("hive", "vk-hive", "vk_hive", "vk_node")],
)
def test_pip_install_into_fresh_venv_gives_working_cli(
    tmp_path: Path, package: str, script: str, module: str, absent: str
) -> None:
    """`pip install ./packages/<pkg>` in a clean venv pulls vk-shared from the repository and
    installs a CLI whose --help and --version work, with nothing else of the workspace."""
    bin_dir = _fresh_venv_with(tmp_path, package)
    work = tmp_path / "elsewhere"
    work.mkdir()

    help_out = _run([str(bin_dir / script), "--help"], cwd=work).stdout
    assert help_out.startswith(f"usage: {script}")
    assert "serve" in help_out
    assert "migrate" in help_out

    version_out = _run([str(bin_dir / script), "--version"], cwd=work).stdout.strip()
    assert version_out == f"{script} {_version_of(package)}"

    probe = (
        f"import importlib.util, json, vk_shared, {module}; "
        f"print(json.dumps({{'shared': vk_shared.__file__, 'pkg': {module}.__file__, "
        f"'absent': importlib.util.find_spec('{absent}') is not None}}))"
    )
    found = _run([str(bin_dir / "python"), "-I", "-c", probe], cwd=work).stdout
    paths = json.loads(found)
    site = (tmp_path / "venv").resolve()
    assert Path(paths["shared"]).resolve().is_relative_to(site), paths
    assert Path(paths["pkg"]).resolve().is_relative_to(site), paths
    assert paths["absent"] is False, f"{absent} must not be installed by {package}"

    _run([str(bin_dir / "python"), "-m", "pip", "check"], cwd=work)
