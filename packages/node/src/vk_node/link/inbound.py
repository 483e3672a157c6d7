"""Hive → node messages that change the node's store, applied in arrival order by one worker per
session (:meth:`Inbound.run`): activity events, node statuses, snapshots after
``resync_required``, digest results and the pulls they (and refused ops) ask for, label and
project pushes.

A burst of activity events (and cursor advances over skipped ones) or of node statuses is
applied in one SQLite transaction (the node's
single writer stays free for local writes and acks); if that fails, message by message, so one
bad message costs only itself. A failing message is logged and skipped. Hive tasks whose copy the
dirty guard held back (a local op of theirs is still unacked) are pulled once those ops are acked
(:meth:`Inbound.release_held`).

A pull is owed until it succeeds: the ids asked for (:meth:`Inbound.pull_later`) stay owed
through a failed request or a session that ends before the pull ran, and are asked for again
with the next pull, :data:`PULL_RETRY_S` after a failure and when the next session starts. A
digest result's mismatched buckets are pulled with the node's own linked tasks in them too: a
task the hive deleted is in no list the hive sends, and only a pull that does not return it
unlinks it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import aiosqlite
import structlog

from vk_node.link import activity
from vk_node.link.rest import SyncClient, SyncError
from vk_node.link.sender import OutboxSender
from vk_node.link.state import LinkStats
from vk_node.store import Store, outbox
from vk_node.store.repositories import cached_nodes as nodes_repo
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.digest import bucket_of
from vk_shared.protocol import MAX_DIGEST_PULL_ENTITIES
from vk_shared.wire import (
    Activity,
    ActivitySkipped,
    DigestResult,
    HiveMessage,
    LabelSync,
    NodeRemoved,
    NodeStatusChanged,
    ProjectSync,
    ResyncRequired,
    tag_of,
)

__all__ = ["RUN_LIMIT", "Inbound", "InboundItem", "Pull", "SessionView"]

log = structlog.get_logger("vk_node.link")

RUN_LIMIT = 200
"""Most messages of one kind applied in one transaction."""

PULL_RETRY_S = 2.0
"""How long after a failed pull the tasks it owes are asked for again."""


@dataclass
class Pull:
    """Re-read these hive tasks (queued behind the inbound messages that came before)."""

    task_ids: list[UUID]


InboundItem = HiveMessage | Pull

_Batchable = Activity | ActivitySkipped | NodeStatusChanged
"""Messages applied in runs of one kind (:func:`_take_run`)."""


class SessionView(Protocol):
    """What inbound apply needs of the session it runs for."""

    @property
    def node_id(self) -> UUID: ...

    @property
    def organization_id(self) -> UUID: ...

    @property
    def inbound(self) -> asyncio.Queue[InboundItem]: ...


class Inbound:
    def __init__(
        self, store: Store, sync: SyncClient, sender: OutboxSender, stats: LinkStats
    ) -> None:
        self._store = store
        self._sync = sync
        self._sender = sender
        self._stats = stats
        self._held_back: set[UUID] = set()
        """Hive tasks whose copy the dirty guard skipped; pulled once their local ops are acked
        (a hive edit that came before the ack would otherwise leave the local version behind)."""
        self._owed: set[UUID] = set()
        """Hive tasks queued for a pull that has not succeeded yet (see the module docstring)."""
        self._retry: asyncio.TimerHandle | None = None
        """The pending retry of the owed pulls after a failed request."""

    async def run(self, session: SessionView) -> None:
        """The session's inbound worker: apply its queue in order until cancelled; first the
        pulls an earlier session owed."""
        if self._owed:
            await self._guarded(Pull([]), self._pull([], session.node_id), session)
        carry: InboundItem | None = None
        while True:
            msg = carry if carry is not None else await session.inbound.get()
            carry = None
            if isinstance(msg, _Batchable):
                # A burst of events or statuses (a replay, a connect storm) is applied in one
                # SQLite transaction, not one each: the node's single writer stays free for
                # local writes and acks.
                run, carry = _take_run(session.inbound, msg)
                await self._guarded(msg, self._apply_run(session, run), session)
            else:
                await self._guarded(msg, self.apply(session, msg), session)

    async def release_held(self, session: SessionView) -> None:
        """Queue a pull of the held-back hive tasks that have no unacked local op any more."""
        if not self._held_back:
            return
        released = []
        async with self._store.read() as conn:
            for shared in list(self._held_back):
                task = await tasks_repo.find_by_shared_task_id(conn, shared)
                if task is None:
                    self._held_back.discard(shared)
                elif not await outbox.has_unacked_for_entity(conn, task.id):
                    self._held_back.discard(shared)
                    released.append(shared)
        if released:
            self.pull_later(session, released)

    def pull_later(self, session: SessionView, task_ids: list[UUID]) -> None:
        """Queue a pull of these hive tasks behind the messages that came before; they stay owed
        until a pull of them succeeds."""
        self._owed.update(task_ids)
        session.inbound.put_nowait(Pull(task_ids))

    def _retry_owed(self, session: SessionView) -> None:
        self._retry = None
        session.inbound.put_nowait(Pull([]))

    async def _guarded(
        self,
        msg: InboundItem,
        work: Coroutine[Any, Any, None],
        session: SessionView | None = None,
    ) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except SyncError as exc:
            log.warning("link.sync_failed", error=str(exc), owed=len(self._owed))
            if session is not None and self._owed and self._retry is None:
                # Asked again a little later in this session (and first in the next one); one
                # retry at a time, however many requests failed.
                self._retry = asyncio.get_running_loop().call_later(
                    PULL_RETRY_S, self._retry_owed, session
                )
        except Exception:
            kind = "pull" if isinstance(msg, Pull) else tag_of(msg)
            log.exception("link.apply_failed", type=kind)

    async def _apply_run(self, session: SessionView, run: list[_Batchable]) -> None:
        """Apply messages of one kind in one transaction; if that fails, one by one (so one bad
        message costs only itself)."""
        if len(run) == 1:
            await self.apply(session, run[0])
            return
        try:
            async with self._store.transaction() as conn:
                outcomes = [await self._apply_one(conn, session, msg) for msg in run]
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("link.batch_apply_failed", messages=len(run), type=tag_of(run[0]))
            for one in run:
                await self._guarded(one, self.apply(session, one))
            return
        for applied, outcome in zip(run, outcomes, strict=True):
            if isinstance(applied, Activity) and outcome is not None:
                self._activity_applied(applied, outcome)

    async def _apply_one(
        self, conn: aiosqlite.Connection, session: SessionView, msg: _Batchable
    ) -> activity.Outcome | None:
        if isinstance(msg, Activity):
            return await activity.apply_activity(conn, msg, session.node_id)
        if isinstance(msg, ActivitySkipped):
            await activity.apply_skipped(conn, msg)
            return None
        await nodes_repo.upsert_status(
            conn,
            node_id=msg.node_id,
            organization_id=session.organization_id,
            status=msg.status.value,
            name=msg.name,
            public_url=msg.public_url,
            last_heartbeat_at=msg.last_heartbeat_at,
        )
        return None

    def _activity_applied(self, msg: Activity, outcome: activity.Outcome) -> None:
        if outcome == "dirty":
            held = activity.parse_task(msg.payload)
            if held is not None:
                self._held_back.add(held.id)
        if outcome == "seen":
            self._stats.activity_seen += 1
        else:
            self._stats.activity_applied += 1
        log.debug("activity.applied", project_id=str(msg.project_id), seq=msg.seq, outcome=outcome)

    async def apply(self, session: SessionView, msg: InboundItem) -> None:
        """Apply one message (or pull) now."""
        node_id = session.node_id
        if isinstance(msg, Pull):
            await self._pull(msg.task_ids, node_id)
        elif isinstance(msg, _Batchable):
            async with self._store.transaction() as conn:
                outcome = await self._apply_one(conn, session, msg)
            if isinstance(msg, Activity) and outcome is not None:
                self._activity_applied(msg, outcome)
        elif isinstance(msg, ResyncRequired):
            snapshot = await self._sync.snapshot(msg.project_id)
            latest = snapshot.latest_seq or (msg.latest_seq or 0)
            async with self._store.transaction() as conn:
                counts = await activity.apply_snapshot(
                    conn, msg.project_id, snapshot.tasks, latest, node_id
                )
            self._stats.resyncs += 1
            log.info("link.resynced", project_id=str(msg.project_id), latest_seq=latest, **counts)
        elif isinstance(msg, DigestResult):
            await self._on_digest_result(msg, node_id)
        elif isinstance(msg, LabelSync):
            async with self._store.transaction() as conn:
                await activity.apply_label(conn, activity.label_from_sync(msg))
        elif isinstance(msg, ProjectSync):
            link = msg.link
            async with self._store.transaction() as conn:
                known = await nodes_repo.find_by_id(conn, link.source_node_id)
                await nodes_repo.upsert_status(
                    conn,
                    node_id=link.source_node_id,
                    organization_id=session.organization_id,
                    status=known.status if known is not None else "pending",
                    name=link.source_node_name,
                    public_url=link.source_node_public_url,
                )
        elif isinstance(msg, NodeRemoved):
            async with self._store.transaction() as conn:
                await nodes_repo.remove(conn, msg.node_id)

    async def _on_digest_result(self, msg: DigestResult, node_id: UUID) -> None:
        self._stats.last_digest_result = msg
        log.info(
            "digest.result",
            resend_from_seq=msg.resend_from_seq,
            pull=len(msg.pull_entities),
            mismatched=len(msg.mismatched_buckets),
        )
        if msg.resend_from_seq is not None:
            self._sender.resend_from(msg.resend_from_seq)
        wanted = list(msg.pull_entities)
        room = MAX_DIGEST_PULL_ENTITIES - len(wanted)
        if msg.mismatched_buckets and room > 0:
            # The hive names only its live tasks; a task it deleted that this node still links
            # is found by its bucket here (the pull then does not return it: unlinked). A full
            # list from the hive leaves the rest to the next digest.
            async with self._store.read() as conn:
                linked = await tasks_repo.find_digest_entries(conn)
            buckets = set(msg.mismatched_buckets)
            mine = {shared for _, shared, _ in linked if bucket_of(shared) in buckets}
            wanted.extend(sorted(mine - set(wanted))[:room])
        self._owed.update(wanted)
        await self._pull(wanted, node_id)

    async def _pull(self, task_ids: list[UUID], node_id: UUID) -> None:
        """Fetch hive tasks over REST — these and the ones still owed — and apply them; the ones
        the hive no longer has (deleted, or not visible to this node) are unlinked locally. They
        are owed no more once this succeeds."""
        task_ids = list(dict.fromkeys([*task_ids, *sorted(self._owed - set(task_ids))]))
        if not task_ids:
            return
        tasks = await self._sync.tasks(task_ids)
        returned = {t.id for t in tasks}
        async with self._store.transaction() as conn:
            for task in tasks:
                project = None
                if task.swarm_project_id is not None:
                    project = await projects_repo.find_by_remote_project_id(
                        conn, task.swarm_project_id
                    )
                if project is not None:
                    outcome = await activity.apply_remote_task(conn, project.id, task, node_id)
                    if outcome == "dirty":
                        self._held_back.add(task.id)
            for missing in set(task_ids) - returned:
                await tasks_repo.unlink_by_shared_task_id(conn, missing)
        self._owed.difference_update(task_ids)
        self._stats.pulled += len(tasks)


def _kind(msg: _Batchable) -> str:
    """Messages of one kind may share a transaction: activity (events and skips, kept in their
    order) or node statuses."""
    return "status" if isinstance(msg, NodeStatusChanged) else "activity"


def _take_run(
    queue: asyncio.Queue[InboundItem], first: _Batchable
) -> tuple[list[_Batchable], InboundItem | None]:
    """``first`` and the messages of its kind queued right behind it (up to :data:`RUN_LIMIT`),
    plus the first message of another kind taken off the queue (to be applied next)."""
    run: list[_Batchable] = [first]
    kind = _kind(first)
    while len(run) < RUN_LIMIT and not queue.empty():
        nxt = queue.get_nowait()
        if not isinstance(nxt, _Batchable) or _kind(nxt) != kind:
            return run, nxt
        run.append(nxt)
    return run, None
