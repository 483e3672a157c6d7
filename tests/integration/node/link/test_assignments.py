"""Hive dispatch to a real node: the run, its mirror on the hive, leases, self-fencing, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from support.agent_path import isolated_path
from support.cluster import free_port
from support.node_link import Node, World, wait_for
from support.tcpproxy import TcpProxy
from vk_node.services.projects import ProjectChanges, update_project
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import hive_assignments as assignments_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_node.store.sql import fetch_one
from vk_shared.wire import TaskAssign, TaskDetails


async def _dispatch(
    world: World, node: Node, script: str, executor: str = "SCRIPT"
) -> dict[str, Any]:
    await node.ready()
    status = await node.link.status()
    r = await world.http.post(
        "/v1/tasks",
        json={
            "project_id": str(world.swarm_project_id),
            "title": "run it",
            "description": script,
            "executor": executor,
            "start_attempt": True,
            "node_id": str(status.node_id),
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["assignment"] is not None, body
    return body


async def _hive_task(world: World, task_id: str) -> dict[str, Any]:
    r = await world.http.get(f"/v1/tasks/{task_id}")
    assert r.status_code == 200, r.text
    data = r.json()
    return data.get("task", data)


async def _attempt(node: Node, assignment_id: str) -> Any:
    async def found() -> Any:
        async with node.store.read() as conn:
            return await attempts_repo.find_by_hive_assignment_id(conn, uuid.UUID(assignment_id))

    return await wait_for(found, what="the attempt of the assignment")


async def _running_pid(node: Node, attempt_id: uuid.UUID) -> int:
    """The pid of the attempt's running process, once it started."""

    async def running_pid() -> int | None:
        async with node.store.read() as conn:
            rows = await processes_repo.find_running_by_task_attempt(conn, attempt_id)
        return rows[0].pid if rows and rows[0].pid else None

    return await wait_for(running_pid, what="the script to start")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.asyncio
async def test_task_assign_runs_the_script_and_the_hive_mirrors_the_run(world: World) -> None:
    """task_assign → local task + SCRIPT attempt; the hive sees in-progress, then in-review,
    the assignment completed and the run's log lines."""
    node = await world.node()
    body = await _dispatch(world, node, "echo hello-from-the-node")
    task_id = body["task"]["id"]
    assert body["task"]["status"] == "in-progress"

    async def in_review() -> bool:
        return (await _hive_task(world, task_id))["status"] == "in-review"

    await wait_for(in_review, within=20, what="the hive task to reach in-review")

    async def completed() -> bool:
        r = await world.http.get(f"/v1/tasks/{task_id}/assignments")
        return r.json()[0]["execution_status"] == "completed"

    await wait_for(completed, what="the assignment to complete")
    r = await world.http.get(f"/v1/tasks/{task_id}/logs")
    assert any("hello-from-the-node" in row["content"] for row in r.json()["logs"])
    async with node.store.read() as conn:
        local = await tasks_repo.find_by_shared_task_id(conn, uuid.UUID(task_id))
    assert local is not None
    assert local.status == "inreview"

    async def drained() -> bool:
        return await node.backlog() == 0 and not node.link.assignments.has_tokens()

    await wait_for(drained, what="the run's ops to be acked and the assignment retired")


@pytest.mark.asyncio
async def test_renewals_keep_the_lease_and_a_cut_connection_self_fences_before_ttl(
    world: World,
) -> None:
    """Renewals keep a run alive past the ttl; with the hive gone the node kills it before the
    ttl runs out and reports cancelled once the hive is back."""
    node = await world.node()
    body = await _dispatch(world, node, "sleep 60")
    attempt = await _attempt(node, body["assignment"]["id"])

    pid = await _running_pid(node, attempt.id)
    await asyncio.sleep(4.0)  # longer than the 3 s ttl: renewals hold the lease
    assert _alive(pid)
    assert node.link.assignments.fenced == 0
    cut = asyncio.get_running_loop().time()
    await world.hive.stop()

    async def fenced() -> bool:
        return not _alive(pid)

    await wait_for(fenced, within=5, what="the node to self-fence")
    assert asyncio.get_running_loop().time() - cut < 3.0 + 0.5
    assert node.link.assignments.fenced == 1
    await world.hive.start()

    async def reported() -> bool:
        return await node.backlog() == 0

    await wait_for(reported, within=15, what="the fence to be reported")


@pytest.mark.asyncio
async def test_task_cancel_stops_the_attempt_and_reports_cancelled(world: World) -> None:
    """An operator cancel reaches the node as task_cancel: the run is killed, cancelled reported."""
    node = await world.node()
    body = await _dispatch(world, node, "sleep 60")
    task_id = body["task"]["id"]
    attempt = await _attempt(node, body["assignment"]["id"])

    async def running() -> bool:
        async with node.store.read() as conn:
            return bool(await processes_repo.find_running_by_task_attempt(conn, attempt.id))

    await wait_for(running, what="the script to start")
    r = await world.http.patch(f"/v1/tasks/{task_id}", json={"status": "cancelled"})
    assert r.status_code == 200, r.text

    async def stopped() -> bool:
        return not await running()

    await wait_for(stopped, within=10, what="the run to be stopped")
    assignment_id = uuid.UUID(body["assignment"]["id"])

    async def reported() -> bool:
        return node.link.assignments.status_of(assignment_id) in (None, "cancelled")

    await wait_for(reported, what="cancelled to be reported")
    async with node.store.read() as conn:
        rows = await processes_repo.find_by_task_attempt_id(conn, attempt.id)
    assert rows
    assert rows[-1].status == "killed"


@pytest.mark.asyncio
async def test_a_stalled_connection_does_not_delay_the_self_fence(
    hive_dsn: str, tmp_path: Path
) -> None:
    """A blackholed link (writes stall, the socket is closing) never holds up the lease
    watchdog: the run is killed by the lease deadline, not when the stalled send gives up."""
    ttl = 1.5
    w = World(hive_dsn, tmp_path)
    proxy: TcpProxy | None = None
    try:
        await w.start(lease_ttl_s=ttl, heartbeat_timeout_s=5.0)
        proxy = await TcpProxy("127.0.0.1", w.hive.port).start()
        node = await w.node(hive_url=proxy.url, link_ping_interval_s=0.3)
        body = await _dispatch(w, node, "sleep 60")
        attempt = await _attempt(node, body["assignment"]["id"])

        pid = await _running_pid(node, attempt.id)
        loop = asyncio.get_running_loop()
        cut = loop.time()
        proxy.cut("blackhole")

        async def fenced() -> bool:
            return not _alive(pid)

        await wait_for(fenced, within=10, what="the node to self-fence")
        assert loop.time() - cut < ttl + 0.4
        assert node.link.assignments.fenced == 1
    finally:
        if proxy is not None:
            await proxy.close()
        await w.close()


@pytest.mark.asyncio
async def test_an_assignment_for_an_executor_the_node_cannot_run_runs_nothing(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task_assign naming an agent whose CLI has gone since the node connected fails the
    assignment on the hive; the node records no attempt or process, creates no worktree and runs
    no setup script (the task itself still arrives through the activity stream)."""
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", isolated_path(bin_dir, "claude"))
    node = await world.node(executors="")
    marker = tmp_path / "setup-ran"
    setup = ProjectChanges(setup_script=f"touch {marker}")
    await update_project(node.store, node.project_id, setup)
    await node.ready()
    (bin_dir / "claude").unlink()  # advertised at connect, uninstalled since
    task_id = (await _dispatch(world, node, "", executor="CLAUDE_CODE"))["task"]["id"]

    async def failed() -> bool:
        rows = (await world.http.get(f"/v1/tasks/{task_id}/assignments")).json()
        return rows[0]["execution_status"] == "failed"

    await wait_for(failed, what="the assignment to fail")
    async with node.store.read() as conn:
        attempts = await fetch_one(conn, "SELECT COUNT(*) FROM task_attempts", ())
        processes = await fetch_one(conn, "SELECT COUNT(*) FROM execution_processes", ())
    assert attempts is not None
    assert processes is not None
    assert (attempts[0], processes[0]) == (0, 0)
    assert not marker.exists()
    assert not any(node.settings.worktrees_dir.iterdir())


@pytest.mark.asyncio
async def test_a_task_assign_whose_receive_loop_is_cancelled_is_still_accepted(
    world: World, tmp_path: Path
) -> None:
    """The link drops (its receive loop is cancelled) while a ``task_assign`` is being recorded:
    the assignment is recorded and run all the same, and the hive's repeat of it on the next
    session is the same assignment, not a second run."""
    # No hive to talk to: the lease is the message's, nothing revokes or renews it meanwhile.
    node = await world.node(hive_url=f"http://127.0.0.1:{free_port()}")
    marker = tmp_path / "ran"
    msg = TaskAssign(
        assignment_id=uuid.uuid4(),
        task_id=uuid.uuid4(),
        project_id=world.swarm_project_id,
        link_id=uuid.uuid4(),
        local_project_id=node.project_id,
        task=TaskDetails(
            title="assigned as the link dropped",
            description=f"echo ran >> {marker}",
            executor="SCRIPT",
            base_branch="main",
        ),
        fencing_token=1,
        lease_ttl_ms=60_000,
    )
    assignments = node.link.assignments
    receiving = asyncio.create_task(assignments.on_task_assign(msg))
    for _ in range(1000):  # until it is known, before it is recorded (a thread's round trip)
        if assignments.token_for_assignment(msg.assignment_id) is not None:
            break
        await asyncio.sleep(0)
    async with node.store.read() as conn:
        assert await assignments_repo.find(conn, msg.assignment_id) is None
    receiving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await receiving

    attempt = await _attempt(node, str(msg.assignment_id))
    await assignments.on_task_assign(msg)

    async def ran() -> bool:
        return marker.exists()

    await wait_for(ran, within=20, what="the assigned script to run")
    async with node.store.read() as conn:
        recorded = await assignments_repo.find(conn, msg.assignment_id)
        attempts = await attempts_repo.fetch_all_attempts(conn, attempt.task_id)
    assert recorded is not None
    assert [a.id for a in attempts] == [attempt.id]
    assert marker.read_text() == "ran\n"
