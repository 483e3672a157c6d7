"""Agent profiles against fake CLIs on PATH: the real agent CLIs and their clouds are not
reachable here, so small scripts (``tests/fixtures/agents``) stand in for them under the real
executable names, record the argv and stdin they receive, and print recorded streams in each
tool's real output format. Commands come from the profiles and run as real subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from fixtures.agents.cases import CASES, FAKE_AGENT, SUMMARY, AgentCase
from vk_node.executor.profiles import (
    CommandSpec,
    NormalizedEntry,
    OutputParser,
    available_executors,
    get_profile,
)
from vk_node.executor.profiles.base import Stream

AGENTS = [case.profile for case in CASES]


def install(bin_dir: Path, executables: list[str]) -> Path:
    """Put fake CLIs named ``executables`` into ``bin_dir``."""
    bin_dir.mkdir(exist_ok=True)
    for name in executables:
        (bin_dir / name).symlink_to(FAKE_AGENT)
    return bin_dir


class Run:
    def __init__(self, parser: OutputParser, entries: list[NormalizedEntry], code: int, seen: Any):
        self.parser, self.entries, self.code, self.seen = parser, entries, code, seen


async def launch(spec: CommandSpec, parser: OutputParser, tmp_path: Path, scenario: str) -> Run:
    """Run ``spec`` with the fake CLIs first on PATH, feeding stdout/stderr lines to ``parser``."""
    log = tmp_path / "seen.json"
    env = {
        **os.environ,
        **spec.env,
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "VK_FAKE_AGENT_LOG": str(log),
        "VK_FAKE_AGENT_SCENARIO": scenario,
    }
    proc = await asyncio.create_subprocess_exec(
        *spec.argv,
        stdin=asyncio.subprocess.PIPE if spec.stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    entries: list[NormalizedEntry] = []

    async def pump(reader: asyncio.StreamReader | None, stream: Stream) -> None:
        assert reader is not None
        while line := await reader.readline():
            entries.extend(parser.feed(stream, line.decode()))

    async def write_stdin() -> None:
        if spec.stdin is not None and proc.stdin is not None:
            proc.stdin.write(spec.stdin.encode())
            await proc.stdin.drain()
            proc.stdin.close()

    await asyncio.gather(write_stdin(), pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr"))
    code = await asyncio.wait_for(proc.wait(), timeout=20)
    return Run(parser, entries, code, json.loads(log.read_text()))


@pytest.mark.asyncio
@pytest.mark.parametrize("case", CASES, ids=AGENTS)
async def test_initial_run(case: AgentCase, tmp_path: Path) -> None:
    """The profile's initial command reaches the fake CLI with the expected argv and stdin, and
    parsing its live output gives the session id, the summary and a success result."""
    install(tmp_path / "bin", [case.executable])
    profile = get_profile(case.profile)
    spec = profile.initial_command("Add a greeting to README.md", variant=None)
    run = await launch(spec, profile.new_parser(), tmp_path, "ok")

    assert run.code == 0
    assert run.seen["cli"] == case.executable
    assert run.seen["argv"] == spec.argv[1:]
    assert run.seen["stdin"] == (spec.stdin or "")
    assert run.parser.session_id == case.session_id
    assert run.parser.summary == SUMMARY
    assert run.parser.result == "success"
    assert any((e.metadata or {}).get("tool") == case.tool for e in run.entries)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", CASES, ids=AGENTS)
async def test_follow_up_run(case: AgentCase, tmp_path: Path) -> None:
    """A follow-up with a session id and a variant reaches the fake CLI carrying that session id,
    and its output parses to a success result."""
    install(tmp_path / "bin", [case.executable])
    profile = get_profile(case.profile)
    spec = profile.follow_up_command("Now say goodbye", case.session_id, variant="some-model")
    run = await launch(spec, profile.new_parser(), tmp_path, "ok")

    assert run.seen["argv"] == spec.argv[1:]
    assert case.session_id in run.seen["argv"]
    assert "Now say goodbye" in run.seen["stdin"] + " ".join(run.seen["argv"])
    assert run.parser.result == "success"


@pytest.mark.asyncio
@pytest.mark.parametrize("case", CASES, ids=AGENTS)
async def test_error_run(case: AgentCase, tmp_path: Path) -> None:
    """A rate-limited run (non-zero exit) yields a ``rate_limited`` error message and an error
    result."""
    install(tmp_path / "bin", [case.executable])
    profile = get_profile(case.profile)
    spec = profile.initial_command("Add a greeting", variant=None)
    run = await launch(spec, profile.new_parser(), tmp_path, "error")

    assert run.code == 1
    assert run.parser.result == "error"
    errors = [e for e in run.entries if e.entry_type == "error_message"]
    assert errors
    assert all((e.metadata or {}).get("error_class") == "rate_limited" for e in errors)


def test_available_executors_follow_path(tmp_path: Path) -> None:
    """Exactly the profiles whose CLI is on the given PATH are available; ``SCRIPT`` only when the
    node enables it."""
    bin_dir = install(tmp_path / "bin", ["claude", "cursor-agent", "qwen"])
    path = str(bin_dir)
    assert available_executors([], path) == ["CLAUDE_CODE", "CURSOR_AGENT", "QWEN_CODE"]
    assert available_executors(["SCRIPT"], path) == [
        "CLAUDE_CODE",
        "CURSOR_AGENT",
        "QWEN_CODE",
        "SCRIPT",
    ]
    assert available_executors(["SCRIPT"], str(tmp_path / "empty")) == ["SCRIPT"]
    assert get_profile("CODEX").is_available(path) is False
    assert get_profile("QWEN_CODE").is_available(path) is True


def test_all_fake_clis_detected(tmp_path: Path) -> None:
    """With every fake CLI on PATH, all eight agent profiles are available."""
    bin_dir = install(tmp_path / "bin", [case.executable for case in CASES])
    assert available_executors([], str(bin_dir)) == sorted(AGENTS)
