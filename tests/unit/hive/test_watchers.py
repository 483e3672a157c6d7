"""The registry of user stream sessions and the outgoing queue, without sockets: who gets which
project's events and log notifications, the adoption of projects created after ``hello``, and
the order and bounds of what a connection sends."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass, field

import pytest

from vk_hive.gateway.outgoing import CLOSE_TRY_AGAIN, Outbound
from vk_hive.gateway.watchers import WatcherRegistry
from vk_hive.store.models import ActivityEvent
from vk_shared.status import NodeStatus
from vk_shared.wire import NodeStatusChanged, Ping, Pong, WireStruct


@dataclass(eq=False)
class FakeWatcher:
    """Records what the registry asks of a session (the registry's only view of one)."""

    organization_id: uuid.UUID
    watched: list[uuid.UUID] = field(default_factory=list)
    appended: list[uuid.UUID] = field(default_factory=list)

    def offer_activity(self, event: ActivityEvent) -> None: ...

    def watch_project(self, project_id: uuid.UUID) -> None:
        self.watched.append(project_id)

    def catch_up_activity(self) -> None: ...

    def push_status(self, msg: NodeStatusChanged) -> None: ...

    def logs_appended(self, execution_process_id: uuid.UUID) -> None:
        self.appended.append(execution_process_id)

    def abort(self, code: int, reason: str) -> None: ...


def test_projects_route_to_their_watchers_and_unknown_ones_are_adopted_once() -> None:
    """A project streamed by a session routes to it; with no sessions nothing is unknown; a
    project no session streams is unknown until adopted, then its organization's sessions
    stream it and the others do not."""
    registry = WatcherRegistry()
    org_a, org_b = uuid.uuid4(), uuid.uuid4()
    known, new = uuid.uuid4(), uuid.uuid4()
    assert registry.for_project(new) == []
    a, b = FakeWatcher(org_a), FakeWatcher(org_b)
    registry.add(a, [known])
    registry.add(b, [])
    assert registry.for_project(known) == [a]
    assert registry.for_project(new) is None
    assert registry.adopt(new, org_a) == [a]
    assert a.watched == [new]
    assert b.watched == []
    registry.subscribe(a, new)
    assert registry.for_project(new) == [a]
    gone = uuid.uuid4()
    assert registry.adopt(gone, None) == []
    assert registry.for_project(gone) == []


def test_follows_and_removal_leave_no_trace() -> None:
    """Followers of a process are found by its id; unfollow and removal drop every index entry."""
    registry = WatcherRegistry()
    org = uuid.uuid4()
    a, b = FakeWatcher(org), FakeWatcher(org)
    project, process = uuid.uuid4(), uuid.uuid4()
    registry.add(a, [project])
    registry.add(b, [project])
    registry.follow(a, process)
    registry.follow(b, process)
    assert set(map(id, registry.following(process))) == {id(a), id(b)}
    registry.unfollow(b, process)
    assert registry.following(process) == [a]
    registry.remove(a)
    registry.remove(b)
    assert len(registry) == 0
    assert registry.following(process) == []
    assert registry.for_org(org) == []
    assert registry.for_project(project) == []
    registry.follow(a, process)  # a removed session registers nothing
    assert registry.following(process) == []


def _status(node_id: uuid.UUID, status: NodeStatus) -> NodeStatusChanged:
    return NodeStatusChanged(
        node_id=node_id, status=status, last_heartbeat_at=dt.datetime.now(dt.UTC)
    )


async def _drain(out: Outbound, n: int) -> list[WireStruct]:
    got: list[WireStruct] = []
    async for msg in out.messages():
        got.append(msg)
        if len(got) == n:
            break
    return got


@pytest.mark.asyncio
async def test_outbound_sends_urgent_first_and_coalesces_statuses() -> None:
    """Urgent messages overtake the queue; two statuses of one node while busy send only the
    latest."""
    out = Outbound(8, full_reason="full")
    node = uuid.uuid4()
    assert out.try_push(Ping())
    out.push_status(_status(node, NodeStatus.ONLINE))
    out.push_status(_status(node, NodeStatus.OFFLINE))
    out.push_urgent(Pong())
    got = await asyncio.wait_for(_drain(out, 3), 1)
    assert isinstance(got[0], Pong)
    assert isinstance(got[1], Ping)
    assert isinstance(got[2], NodeStatusChanged)
    assert got[2].status == NodeStatus.OFFLINE


@pytest.mark.asyncio
async def test_outbound_push_on_a_full_queue_aborts_and_try_push_does_not() -> None:
    """try_push on a full queue only says no; push closes the connection with 1013."""
    out = Outbound(1, full_reason="the client reads too slowly")
    assert out.try_push(Ping())
    assert not out.try_push(Ping())
    assert not out.closing
    assert not out.push(Ping())
    assert out.closing
    assert (out.close_code, out.close_reason) == (CLOSE_TRY_AGAIN, "the client reads too slowly")
    assert not out.try_push(Ping())
