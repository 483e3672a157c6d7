"""``vk-node doctor`` as a real process: the tools on a PATH the test controls, and the hive checks
against a real ``vk-hive serve``.

GitHub's ``gh`` cannot be used here (no GitHub), so a small fake ``gh`` script stands in for it:
it answers ``gh --version`` and ``gh auth status`` in gh's format, logged in when ``GH_TOKEN`` is
set, as the real CLI is. The coding agent on PATH is the fake agent CLI of ``tests/fixtures``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from fixtures.agents._fake_agent import FAKE_VERSION
from support.agent_path import isolated_path
from support.cluster import free_port, hive_with_keys
from support.hive_db import hive_template
from support.postgres import PostgresServer

__all__ = ["hive_template"]

_FAKE_GH = f"""#!{sys.executable}
\"\"\"A stand-in for GitHub's gh CLI: --version and auth status (logged in with GH_TOKEN).\"\"\"
import os
import re
import sys

args = sys.argv[1:]
if args == ["--version"]:
    print("gh version 2.99.0 (2026-01-01)")
    print("https://github.com/cli/cli/releases/tag/v2.99.0")
elif args[:2] == ["auth", "status"]:
    if os.environ.get("GH_TOKEN"):
        print("github.com")
        print("  - Logged in to github.com account vk (GH_TOKEN)")
    else:
        print("You are not logged into any GitHub hosts. To log in, run: gh auth login",
              file=sys.stderr)
        sys.exit(1)
else:
    sys.exit(2)
"""


def _bin_dir(path: Path, *, gh: bool, agents: tuple[str, ...] = ()) -> Path:
    """A PATH directory with git and a few basic tools, optionally the fake gh, and fake agent
    CLIs (nothing installed on this machine changes the outcome)."""
    isolated_path(path, *agents)
    if gh:
        (path / "gh").write_text(_FAKE_GH)
        (path / "gh").chmod(0o755)
    return path


def _doctor(
    tmp_path: Path, bin_dir: Path, extra: Mapping[str, str] | None = None, *, as_json: bool = True
) -> tuple[int, Any, str]:
    """Run ``vk-node doctor`` with PATH = ``bin_dir`` only; exit status, output, stderr."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VK_NODE_", "VK_HIVE_")) and k not in ("PATH", "GH_TOKEN")
    }
    env.update({"PATH": str(bin_dir), "VK_NODE_DATA_DIR": str(tmp_path / "data"), **(extra or {})})
    argv = [
        str(Path(sys.executable).parent / "vk-node"),
        "doctor",
        *(["--json"] if as_json else []),
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout) if as_json else done.stdout, done.stderr


def _by_name(checks: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    for check in checks:
        assert set(check) == {"check", "status", "detail", "fix"}
        assert check["status"] in ("ok", "warn", "fail")
        assert (check["fix"] == "") == (check["status"] == "ok"), check
    return {check["check"]: check for check in checks}


def test_tools_on_path_and_exit_status(tmp_path: Path) -> None:
    """git and the fake gh and agent are found with their versions; gh logged out fails, gh
    missing only warns; an enabled agent without its CLI fails; exit 0 only without failures."""
    bin_dir = _bin_dir(tmp_path / "bin", gh=True, agents=("claude",))
    code, checks, err = _doctor(tmp_path, bin_dir, {"GH_TOKEN": "t", "VK_NODE_EXECUTORS": "SCRIPT"})
    assert (code, err) == (0, "")
    found = _by_name(checks)
    assert found["git"]["status"] == "ok"
    assert "git version" in found["git"]["detail"]
    assert found["gh"] == {
        "check": "gh",
        "status": "ok",
        "detail": f"{bin_dir / 'gh'}, gh version 2.99.0 (2026-01-01)",
        "fix": "",
    }
    assert found["gh auth"]["status"] == "ok"
    assert found["executor SCRIPT"]["detail"] == "built in"
    assert found["executor CLAUDE_CODE"]["detail"] == (
        f"{bin_dir / 'claude'}, {FAKE_VERSION} (fake claude)"
    )
    assert found["data dir"]["status"] == "ok"
    assert found["disk space"]["status"] == "ok"
    assert found["hive"]["detail"] == "standalone (VK_HIVE_URL is not set)"

    code, checks, err = _doctor(tmp_path, bin_dir, {"VK_NODE_EXECUTORS": "SCRIPT,CODEX"})
    found = _by_name(checks)
    assert found["gh auth"]["status"] == "fail"
    assert "gh auth login" in found["gh auth"]["fix"]
    assert found["executor CODEX"]["status"] == "fail"
    assert found["executor CODEX"]["detail"] == "codex not found on PATH"
    assert (code, err) == (1, "vk-node: error: 2 checks failed\n")

    bare = _bin_dir(tmp_path / "bare", gh=False)
    code, text, err = _doctor(tmp_path, bare, as_json=False)
    assert (code, err) == (0, "")
    lines = text.splitlines()
    assert lines[1].startswith("warn  gh: gh not found on PATH")
    assert "; fix: install the GitHub CLI" in lines[1]
    assert lines[2].startswith("warn  executors: no executor")
    assert lines[-1] == "4 ok, 2 warnings, 0 failed"


def test_data_dir_not_writable_fails(tmp_path: Path) -> None:
    """A data dir this user cannot write is a failure naming the directory."""
    if os.geteuid() == 0:  # root writes anywhere: make the path impossible instead
        blocker = tmp_path / "file"
        blocker.write_text("")
        data_dir = blocker / "data"
    else:
        data_dir = tmp_path / "locked"
        data_dir.mkdir(mode=0o500)
    bin_dir = _bin_dir(tmp_path / "bin", gh=False)
    code, checks, _ = _doctor(tmp_path, bin_dir, {"VK_NODE_DATA_DIR": str(data_dir)})
    check = _by_name(checks)["data dir"]
    assert check["status"] == "fail"
    assert str(data_dir) in check["detail"]
    assert "VK_NODE_DATA_DIR" in check["fix"]
    assert code == 1


@pytest.fixture(scope="module")
def hive(
    pg_server: PostgresServer, hive_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The URL of a running ``vk-hive serve`` and a fresh node API key of its organization."""
    workdir = tmp_path_factory.mktemp("doctor")
    with hive_with_keys(pg_server, hive_template, workdir, "doctor", prefix="vk_e2e_doctor") as (
        process,
        keys,
    ):
        yield process.url, keys[0].secret


def test_hive_checks(hive: tuple[str, str], tmp_path: Path) -> None:
    """Against a real hive: reachable, a valid key accepted, the clock in step; a wrong key fails
    with a fix; an unreachable URL of the list fails; a skewed clock warns."""
    url, key = hive
    bin_dir = _bin_dir(tmp_path / "bin", gh=False)
    good = {"VK_HIVE_URL": url, "VK_NODE_API_KEY": key}
    code, checks, err = _doctor(tmp_path, bin_dir, good)
    found = _by_name(checks)
    assert found[f"hive {url}"]["status"] == "ok"
    assert found[f"hive {url}"]["detail"].startswith("reachable, version ")
    assert found[f"hive key {url}"]["status"] == "ok"
    assert "not bound to a node yet" in found[f"hive key {url}"]["detail"]
    assert found[f"hive clock {url}"]["status"] == "ok"
    assert (code, err) == (0, "")
    assert key not in json.dumps(checks)

    wrong = {**good, "VK_NODE_API_KEY": key[:-4] + "xxxx"}
    code, checks, _ = _doctor(tmp_path, bin_dir, wrong)
    check = _by_name(checks)[f"hive key {url}"]
    assert check["status"] == "fail"
    assert check["detail"] == "rejected (HTTP 401: invalid API key)"
    assert "VK_NODE_API_KEY" in check["fix"]
    assert code == 1

    dead = f"http://127.0.0.1:{free_port()}"
    listed = {**good, "VK_HIVE_URL": f"{dead},{url}", "VK_NODE_CLOCK_SKEW_S": "-60"}
    code, checks, _ = _doctor(tmp_path, bin_dir, listed)
    found = _by_name(checks)
    assert found[f"hive {dead}"]["status"] == "fail"
    assert found[f"hive {dead}"]["detail"].startswith("unreachable (ConnectError")
    assert "VK_HIVE_URL" in found[f"hive {dead}"]["fix"]
    assert f"hive key {dead}" not in found
    assert found[f"hive {url}"]["status"] == "ok"
    clock = found[f"hive clock {url}"]
    assert clock["status"] == "warn"
    skew = re.fullmatch(r"the hive's clock is ([0-9.]+) s ahead \(more than 5 s\)", clock["detail"])
    assert skew is not None, clock
    assert 58 <= float(skew.group(1)) <= 61  # the Date header has whole seconds
    assert "NTP" in clock["fix"]
    assert code == 1
