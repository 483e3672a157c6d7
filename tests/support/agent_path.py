"""A PATH for tests that decide which coding-agent CLIs a node finds: only the basic tools a run
needs plus the named fake agents (``tests/fixtures/agents``), so an agent installed on the test
machine cannot change the outcome."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from fixtures.agents.cases import FAKE_AGENT

__all__ = ["isolated_path"]

_TOOLS = ("git", "bash", "touch", "env", "sleep")


def isolated_path(bin_dir: Path, *agents: str) -> str:
    """Fill ``bin_dir`` with git, bash, touch, env, sleep, python3 and fake CLIs named ``agents``
    (e.g. ``claude``); returns it as a PATH value."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in _TOOLS:
        found = shutil.which(tool)
        assert found is not None, f"{tool} is not installed"
        (bin_dir / tool).symlink_to(found)
    (bin_dir / "python3").symlink_to(sys.executable)
    for name in agents:
        (bin_dir / name).symlink_to(FAKE_AGENT)
    return str(bin_dir)
