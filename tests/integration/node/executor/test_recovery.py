"""Crash recovery at startup: rows left ``running`` by a dead node process are fenced, failed or
resumed exactly once, and a pid that now belongs to someone else is never signalled."""

# Tests look at files and /proc synchronously on purpose (tiny reads, no event-loop load).
# ruff: noqa: ASYNC220, ASYNC251

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from uuid import UUID, uuid4

import pytest

from vk_node.executor import procfs
from vk_node.executor.actions import (
    Action,
    AgentInitial,
    ExecutorProfileId,
    ScriptRequest,
    encode_action,
)
from vk_node.executor.profiles import _REGISTRY, register
from vk_node.executor.profiles.base import CommandSpec, NormalizedEntry
from vk_node.executor.recovery import recover
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import executor_sessions as sessions_repo
from vk_node.store.repositories import webhook_deliveries as deliveries_repo
from vk_node.store.repositories import webhooks as webhooks_repo


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts (each in its own session); all killed at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _start(spawned: list[subprocess.Popen[bytes]], *argv: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, start_new_session=True)
    spawned.append(proc)
    return proc


async def _crashed_row(
    hx: Any,
    attempt_id: str,
    *,
    pid: int | None,
    ticks: int | None,
    action: Action,
    session_id: str | None = None,
) -> UUID:
    """A ``running`` row as a crashed node instance would have left it."""
    process_id = uuid4()
    async with hx.store.transaction() as conn:
        await processes_repo.create(
            conn,
            process_id,
            task_attempt_id=UUID(attempt_id),
            run_reason="codingagent",
            executor_action=encode_action(action),
            server_instance_id="crashed-instance",
        )
        if pid is not None:
            await processes_repo.update_pid_and_start(conn, process_id, pid, ticks)
        if session_id is not None:
            await sessions_repo.create(conn, UUID(attempt_id), process_id, "p")
            await sessions_repo.update_session_id(conn, process_id, session_id)
    return process_id


_SCRIPT = Action(
    typ=AgentInitial(prompt="x", executor_profile_id=ExecutorProfileId(executor="SCRIPT"))
)


async def _idle_attempt(hx: Any, git_repo: Path) -> dict[str, Any]:
    _task, attempt = await hx.run_script(git_repo, "true")
    await hx.wait_idle(attempt["id"])
    return attempt


@pytest.mark.asyncio
async def test_reused_pid_is_never_killed(
    hx: Any, git_repo: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    """A recorded pid that is alive with a different start time belongs to another process: it
    is left running and the row is failed (abandoned), once."""
    attempt = await _idle_attempt(hx, git_repo)
    sleeper = _start(spawned, "sleep", "60")
    stat = procfs.read_stat(sleeper.pid)
    assert stat is not None
    row_id = await _crashed_row(
        hx, attempt["id"], pid=sleeper.pid, ticks=stat.start_ticks + 1000, action=_SCRIPT
    )
    assert await recover(hx.executor) == {"pid_reused": 1}
    assert sleeper.poll() is None
    assert procfs.is_alive(sleeper.pid)
    async with hx.store.read() as conn:
        row = await processes_repo.get(conn, row_id)
    assert (row.status, row.completion_reason, row.resume_state) == ("failed", "eof", "abandoned")
    assert await recover(hx.executor) == {}
    assert procfs.is_alive(sleeper.pid)


@pytest.mark.asyncio
async def test_our_orphan_is_fenced_with_its_children(
    hx: Any, git_repo: Path, spawned: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """A recorded pid alive with the recorded start time is ours: its whole group is killed, the
    row fails with reason eof and the task goes to review."""
    attempt = await _idle_attempt(hx, git_repo)
    child_file = tmp_path / "child"
    leader = _start(spawned, "bash", "-c", f"sleep 60 & echo $! > {child_file}; wait")
    stat = procfs.read_stat(leader.pid)
    assert stat is not None
    row_id = await _crashed_row(
        hx, attempt["id"], pid=leader.pid, ticks=stat.start_ticks, action=_SCRIPT
    )
    while not child_file.exists() or not child_file.read_text().strip():
        time.sleep(0.01)
    child = int(child_file.read_text())
    assert await recover(hx.executor) == {"fenced": 1}
    leader.wait(timeout=5)
    assert not procfs.is_alive(child)
    async with hx.store.read() as conn:
        row = await processes_repo.get(conn, row_id)
    assert (row.status, row.completion_reason) == ("failed", "eof")
    assert row.after_head_commit is not None
    task = await hx.ok("GET", f"/task-attempts/{attempt['id']}")
    assert await hx.task_status(task["task_id"]) == "inreview"
    assert await recover(hx.executor) == {}


@pytest.mark.asyncio
async def test_rows_without_pid_or_with_dead_pid_fail_once(hx: Any, git_repo: Path) -> None:
    """Rows whose process is gone (or never got a pid) are failed; a second pass finds nothing."""
    attempt = await _idle_attempt(hx, git_repo)
    dead = subprocess.Popen(["true"])
    dead.wait()
    script = Action(typ=ScriptRequest(script="true", context="SetupScript"))
    await _crashed_row(hx, attempt["id"], pid=dead.pid, ticks=1, action=script)
    await _crashed_row(hx, attempt["id"], pid=None, ticks=None, action=script)
    assert await recover(hx.executor) == {"already_gone": 2}
    procs = await hx.processes(attempt["id"])
    assert [p.status for p in procs] == ["completed", "failed", "failed"]
    assert await recover(hx.executor) == {}


class _Parser:
    def __init__(self) -> None:
        self._session: str | None = None

    def feed(self, stream: Literal["stdout", "stderr"], line: str) -> list[NormalizedEntry]:
        if line.startswith("session="):
            self._session = line.split("=", 1)[1]
            return [NormalizedEntry(entry_type="system_message", content="session started")]
        return [NormalizedEntry(entry_type="assistant_message", content=line)]

    @property
    def session_id(self) -> str | None:
        return self._session

    @property
    def summary(self) -> str | None:
        return None

    @property
    def result(self) -> Literal["success", "error"] | None:
        return None


class _FakeAgent:
    """A stand-in coding agent: a bash one-liner speaking a tiny line protocol (the real agent
    CLIs are not installed on test machines)."""

    name = "FAKE_AGENT"
    executable: str | None = "bash"
    keeps_context = True

    def is_available(self, path: str | None) -> bool:
        return True

    def initial_command(self, prompt: str, *, variant: str | None) -> CommandSpec:
        return CommandSpec(argv=["bash", "-c", 'echo session=s-1; echo "$0"', prompt])

    def follow_up_command(
        self, prompt: str, session_id: str, *, variant: str | None
    ) -> CommandSpec:
        return CommandSpec(
            argv=["bash", "-c", 'echo "resumed $0: $1"', session_id, prompt],
            env={"FAKE_SESSION": session_id},
        )

    def new_parser(self) -> _Parser:
        return _Parser()


@pytest.fixture
def fake_agent() -> Iterator[None]:
    register(_FakeAgent())
    try:
        yield
    finally:
        _REGISTRY.pop("FAKE_AGENT", None)


@pytest.mark.asyncio
@pytest.mark.usefixtures("fake_agent")
async def test_interrupted_agent_with_a_session_is_resumed_once(hx: Any, git_repo: Path) -> None:
    """An agent run cut off by a crash, whose session id is known, continues in a new follow-up
    run of that session; the old row is failed as resumed; a second pass does nothing."""
    proj = await hx.project(git_repo)
    task = await hx.task(proj["id"], "agent", "do it")
    attempt = await hx.ok(
        "POST",
        "/task-attempts",
        202,
        json={"task_id": task["id"], "executor": "FAKE_AGENT", "base_branch": "main"},
    )
    [first] = await hx.wait_idle(attempt["id"])
    entries = [
        json.loads(e.content) for e in await hx.logs(first.id) if e.output_type == "json_patch"
    ]
    assert entries[0]["entry_type"] == "system_message"
    action = Action(
        typ=AgentInitial(
            prompt="do it", executor_profile_id=ExecutorProfileId(executor="FAKE_AGENT")
        )
    )
    row_id = await _crashed_row(hx, attempt["id"], pid=None, ticks=None, action=action)
    assert await recover(hx.executor) == {"resumed": 1}
    procs = await hx.wait_idle(attempt["id"])
    assert [p.id for p in procs][:2] == [first.id, row_id]
    old, new = procs[1], procs[2]
    assert (old.status, old.resume_state) == ("failed", "resumed")
    assert new.status == "completed"
    assert json.loads(new.executor_action)["typ"]["type"] == "CodingAgentFollowUpRequest"
    assert next(e.content for e in await hx.logs(new.id) if e.output_type == "stdout").startswith(
        "resumed s-1: Your previous run was interrupted"
    )
    assert await recover(hx.executor) == {}
    assert len(await hx.processes(attempt["id"])) == 3


@pytest.mark.asyncio
async def test_process_that_survives_sigkill_is_left_pending_and_counted(
    hx: Any,
    git_repo: Path,
    spawned: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process stuck in uninterruptible sleep (D state) survives SIGKILL: its row stays
    running with resume_state pending, and each restart counts one more fence attempt.

    The kernel's D state cannot be produced on demand here, so the test swallows the signals
    that recovery sends (the only stand-in in this file); everything else is real."""
    import vk_node.executor.recovery as recovery_module

    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(procfs, "signal_group", lambda pid, sig: sent.append(("group", pid)))
    monkeypatch.setattr(
        procfs, "signal_pids", lambda stats, sig: sent.extend(("pid", s.pid) for s in stats)
    )
    monkeypatch.setattr(recovery_module, "_KILL_WAIT_S", 0.2)
    attempt = await _idle_attempt(hx, git_repo)
    stuck = _start(spawned, "sleep", "60")
    stat = procfs.read_stat(stuck.pid)
    assert stat is not None
    row_id = await _crashed_row(
        hx, attempt["id"], pid=stuck.pid, ticks=stat.start_ticks, action=_SCRIPT
    )
    for expected_count in (1, 2):
        assert await recover(hx.executor) == {"could_not_kill": 1}
        async with hx.store.read() as conn:
            row = await processes_repo.get(conn, row_id)
        assert (row.status, row.resume_state) == ("running", "pending")
        assert row.fence_attempt_count == expected_count
    assert ("group", stuck.pid) in sent
    assert procfs.is_alive(stuck.pid)


@pytest.mark.asyncio
async def test_a_run_failed_by_recovery_fires_executor_finish(hx: Any, git_repo: Path) -> None:
    """A coding-agent run a crashed node left ``running`` ends when recovery fails it: that is
    its ``executor_finish``, written as a webhook delivery in the same transaction; a second
    pass writes none."""
    attempt = await _idle_attempt(hx, git_repo)
    async with hx.store.transaction() as conn:
        hook = await webhooks_repo.create(conn, uuid4(), name="h", url="http://127.0.0.1:9/")
    process_id = await _crashed_row(hx, attempt["id"], pid=None, ticks=None, action=_SCRIPT)
    assert await recover(hx.executor) == {"already_gone": 1}
    assert await recover(hx.executor) == {}
    async with hx.store.read() as conn:
        [delivery] = await deliveries_repo.find_for_webhook(conn, hook.id, limit=10)
    body = json.loads(delivery.body)
    assert delivery.event == "executor_finish"
    assert body["process"]["id"] == str(process_id)
    assert body["status"] == "failed"
    assert body["process"]["completion_message"] == "interrupted by a node restart"
