"""Activity fan-out to connected nodes (DESIGN.md §4) and user stream sessions.

- :class:`ActivityFanout`: one dedicated asyncpg connection ``LISTEN activity`` (reconnected with
  backoff when it drops); each notification's row is read once by (project, seq) and offered to
  the peers subscribed to the project (:class:`~vk_hive.gateway.ports.Directory`) and to the user
  stream sessions streaming it (:class:`~vk_hive.gateway.ports.Watchers`; a project they do not
  know yet is adopted by its organization's sessions first). While a session of this process
  follows an execution process's logs, the same connection also ``LISTEN logs``: a transaction
  that stores log lines of a process notifies its id
  (:func:`vk_hive.store.repositories.executions.insert_logs`), and the sessions following that
  process are told to read their new lines.
- :class:`ActivityStreams`: per session and project, the last seq sent. A live event is sent
  directly only when it is exactly the next seq and the outgoing queue has room; everything else
  (replay from the node's cursor, a gap, a full queue, a listener reconnect) is caught up from the
  ``activity`` table in seq order by the session's pump. So a project's events reach the node in
  seq order, without duplicates and without gaps. For a node that takes its tasks' ids from
  ``op_ack`` (the ``ack_tasks`` feature), the events its own ops caused (``payload.origin``) are
  not sent: an ``activity_skipped`` moves its cursor over them instead (one for a run of them).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import asyncpg
import structlog

from vk_hive.gateway.ports import GatewayDeps, Outgoing, Peer, Watcher
from vk_hive.store.db import DATABASE_UNAVAILABLE
from vk_hive.store.models import ActivityEvent
from vk_hive.store.repositories import activity, executions, swarm_projects
from vk_shared.wire import Activity, ActivitySkipped, ResyncRequired

__all__ = ["CHANNEL", "LOGS_CHANNEL", "ActivityFanout", "ActivityStreams", "activity_message"]

log = structlog.get_logger("vk_hive.gateway.activity")

CHANNEL = "activity"
LOGS_CHANNEL = executions.LOGS_CHANNEL
APPLICATION_NAME = "vk-hive-activity-listener"
STOP_TIMEOUT_S = 5.0


def activity_message(event: ActivityEvent) -> Activity:
    return Activity(
        project_id=event.project_id,
        seq=event.seq,
        event_id=event.event_id,
        event_type=event.event_type,
        created_at=event.created_at,
        payload=event.payload,
    )


@dataclass
class _Stream:
    last_sent: int
    check_cursor: bool = True
    catching_up: bool = False


class ActivityStreams:
    """One session's activity subscriptions, sent through its outgoing port; :meth:`pump` is a
    task owned by the session. Which projects the hive routes to the session is the
    :class:`~vk_hive.gateway.ports.Directory`'s business (its handlers subscribe both)."""

    def __init__(self, deps: GatewayDeps, out: Outgoing) -> None:
        self._deps = deps
        self._out = out
        self._streams: dict[uuid.UUID, _Stream] = {}
        self._dirty: dict[uuid.UUID, None] = {}
        self._wake = asyncio.Event()
        self._own: str | None = None

    def skip_echoes_of(self, node_id: uuid.UUID) -> None:
        """Do not send the events of ``node_id``'s own ops (it learns their effect from
        ``op_ack``); send ``activity_skipped`` in their place."""
        self._own = str(node_id)

    def _echo(self, event: ActivityEvent) -> bool:
        if self._own is None:
            return False
        origin = event.payload.get("origin")
        return isinstance(origin, dict) and origin.get("node_id") == self._own

    def _message(self, event: ActivityEvent) -> Activity | ActivitySkipped:
        if self._echo(event):
            return ActivitySkipped(project_id=event.project_id, seq=event.seq)
        return activity_message(event)

    def last_sent(self, project_id: uuid.UUID) -> int | None:
        stream = self._streams.get(project_id)
        return None if stream is None else stream.last_sent

    def projects(self) -> frozenset[uuid.UUID]:
        """The projects streamed now."""
        return frozenset(self._streams)

    def subscribe(self, project_id: uuid.UUID, cursor: int) -> None:
        """Stream the project from after ``cursor`` (replay, then live)."""
        self._streams[project_id] = _Stream(last_sent=cursor)
        self._mark(project_id)

    def unsubscribe(self, project_id: uuid.UUID) -> None:
        self._streams.pop(project_id, None)
        self._dirty.pop(project_id, None)

    def close(self) -> None:
        self._streams.clear()
        self._dirty.clear()

    def _mark(self, project_id: uuid.UUID) -> None:
        self._dirty[project_id] = None
        self._wake.set()

    def catch_up_all(self) -> None:
        """After the listener reconnected: re-read every project from its last sent seq."""
        for project_id in self._streams:
            self._mark(project_id)

    def offer(self, event: ActivityEvent) -> None:
        """A live event (already committed) of a project this session may be subscribed to."""
        stream = self._streams.get(event.project_id)
        if stream is None or event.seq <= stream.last_sent:
            return
        if (
            not stream.catching_up
            and not stream.check_cursor
            and event.project_id not in self._dirty
            and event.seq == stream.last_sent + 1
            and self._out.try_push(self._message(event))
        ):
            stream.last_sent = event.seq
            self._deps.metrics.activity_queued(event.created_at, "live")
            return
        self._mark(event.project_id)

    async def pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                project_id = next(iter(self._dirty))
                del self._dirty[project_id]
                stream = self._streams.get(project_id)
                if stream is None:
                    continue
                try:
                    await self._catch_up(project_id, stream)
                except DATABASE_UNAVAILABLE as exc:
                    # The database is restarting: the events wait in the table. Try again
                    # shortly; letting this end the pump would end the node's session.
                    retry_s = self._deps.settings.activity_reconnect_initial_s
                    log.warning(
                        "activity.catch_up_failed", error=type(exc).__name__, retry_in=retry_s
                    )
                    self._dirty[project_id] = None
                    await asyncio.sleep(retry_s)

    async def _resync(self, project_id: uuid.UUID, stream: _Stream, reason: str) -> None:
        async with self._deps.db.acquire() as conn:
            latest = await activity.last_seq(conn, project_id)
        await self._out.send(
            ResyncRequired(project_id=project_id, reason=reason, latest_seq=latest)
        )
        stream.last_sent = latest
        log.info("activity.resync_required", project_id=str(project_id), latest_seq=latest)

    async def _catch_up(self, project_id: uuid.UUID, stream: _Stream) -> None:
        db = self._deps.db
        page = self._deps.settings.activity_page_size
        stream.catching_up = True
        try:
            if stream.check_cursor:
                stream.check_cursor = False
                async with db.acquire() as conn:
                    oldest = await activity.min_retained_seq(conn, project_id)
                    latest = await activity.last_seq(conn, project_id)
                if stream.last_sent < oldest - 1:
                    await self._resync(project_id, stream, "events before the cursor were pruned")
                elif stream.last_sent > latest:
                    stream.last_sent = latest
                    await self._out.send(
                        ResyncRequired(
                            project_id=project_id,
                            reason="the cursor is ahead of the hive's activity stream",
                            latest_seq=latest,
                        )
                    )
            while self._streams.get(project_id) is stream:
                async with db.acquire() as conn:
                    rows = await activity.fetch_since(conn, project_id, stream.last_sent, page)
                if rows and rows[0].seq > stream.last_sent + 1:
                    await self._resync(project_id, stream, "events after the cursor were pruned")
                    continue
                skipped: ActivitySkipped | None = None
                for event in rows:
                    if self._streams.get(project_id) is not stream:
                        return
                    message = self._message(event)
                    if isinstance(message, ActivitySkipped):
                        skipped = message  # a run of echoes is one skip, sent before the next
                        continue
                    if skipped is not None:
                        await self._out.send(skipped)
                        stream.last_sent, skipped = skipped.seq, None
                    await self._out.send(message)
                    stream.last_sent = event.seq
                    self._deps.metrics.activity_queued(event.created_at, "catch_up")
                if skipped is not None and self._streams.get(project_id) is stream:
                    await self._out.send(skipped)
                    stream.last_sent = skipped.seq
                if len(rows) < page:
                    return
        finally:
            stream.catching_up = False


def _setter(event: asyncio.Event) -> Callable[[asyncpg.Connection], None]:
    def on_terminate(_conn: asyncpg.Connection) -> None:
        event.set()

    return on_terminate


def _payload_to(
    callback: Callable[[str], None],
) -> Callable[[asyncpg.Connection, int, str, str], None]:
    def on_notify(_conn: asyncpg.Connection, _pid: int, _channel: str, payload: str) -> None:
        callback(payload)

    return on_notify


async def _first_set(*events: asyncio.Event, within_s: float) -> bool:
    """Wait until one of ``events`` is set (True) or ``within_s`` passed (False)."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waits, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    return bool(done)


class ActivityFanout:
    """Owns the LISTEN connection and the task that hands events to the peers of the
    directory."""

    def __init__(
        self,
        deps: GatewayDeps,
        *,
        channels: Mapping[str, Callable[[str], None]] | None = None,
        on_listening: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``channels``: more channels to LISTEN on with the same connection (payload →
        callback); ``on_listening`` runs each time the connection listens again (what was sent
        while it did not is lost)."""
        self._settings = deps.settings
        self._channels = dict(channels or {})
        self._on_listening = on_listening
        self._db = deps.db
        self._directory = deps.directory
        self._watchers = deps.watchers
        self._listener: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._notes: asyncio.Queue[tuple[uuid.UUID, int]] = asyncio.Queue()
        self.connected = asyncio.Event()
        self.connections = 0
        self.backend_pid: int | None = None
        self.listening_logs = False
        """Whether the connection LISTENs on the log channel now (only while followed)."""
        self._stopping = asyncio.Event()
        """Set by :meth:`stop`. The listener's loops check it as well as being cancelled: on
        Python 3.11 ``asyncio.wait_for`` can swallow a cancellation that arrives as its inner
        await completes, and the listener would then go on forever (a hive shutdown hung)."""

    async def start(self) -> None:
        self._stopping.clear()
        self._listener = asyncio.create_task(self._listen(), name="vk-hive-activity-listen")
        self._dispatcher = asyncio.create_task(self._dispatch(), name="vk-hive-activity-fanout")

    async def stop(self) -> None:
        self._stopping.set()
        tasks = [t for t in (self._listener, self._dispatcher) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            for task in pending:  # a swallowed cancellation: never hold up the shutdown
                log.warning("activity.stop_timeout", task=task.get_name())
        self._listener = self._dispatcher = None

    def _on_notify(self, _conn: asyncpg.Connection, _pid: int, _channel: str, payload: str) -> None:
        try:
            data = json.loads(payload)
            self._notes.put_nowait((uuid.UUID(str(data["project_id"])), int(data["seq"])))
        except (ValueError, KeyError, TypeError):
            log.warning("activity.bad_notification")

    def _on_logs(self, _conn: asyncpg.Connection, _pid: int, _channel: str, payload: str) -> None:
        try:
            process_id = uuid.UUID(payload)
        except ValueError:
            log.warning("activity.bad_logs_notification")
            return
        for watcher in self._watchers.following(process_id):
            watcher.logs_appended(process_id)

    async def _listen(self) -> None:
        settings = self._settings
        delay = settings.activity_reconnect_initial_s
        while not self._stopping.is_set():
            lost = asyncio.Event()
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    settings.database_url,
                    server_settings={"application_name": APPLICATION_NAME},
                    timeout=10,
                )
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(CHANNEL, self._on_notify)
                for channel, callback in self._channels.items():
                    await conn.add_listener(channel, _payload_to(callback))
                self.backend_pid = conn.get_server_pid()
                self.connections += 1
                delay = settings.activity_reconnect_initial_s
                self.connected.set()
                log.info("activity.listening", reconnects=self.connections - 1)
                # Whatever was committed while nobody listened is in the table: catch up.
                for peer in self._directory.peers():
                    peer.catch_up_activity()
                for watcher in self._watchers.watchers():
                    watcher.catch_up_activity()
                if self._on_listening is not None:
                    try:
                        await self._on_listening()
                    except Exception as exc:
                        log.warning("activity.resync_failed", error=type(exc).__name__)
                self.listening_logs = False
                changed = self._watchers.follows_changed
                while not lost.is_set() and not self._stopping.is_set():
                    changed.clear()
                    self.listening_logs = await self._listen_logs(conn, self.listening_logs)
                    if not await _first_set(
                        lost, changed, self._stopping, within_s=settings.activity_listen_check_s
                    ):
                        await asyncio.wait_for(
                            conn.fetchval("SELECT 1"), settings.activity_listen_check_s
                        )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("activity.listener_lost", error=type(exc).__name__, retry_in=delay)
            finally:
                self.connected.clear()
                self.listening_logs = False
                if conn is not None and not conn.is_closed():
                    try:
                        await asyncio.wait_for(conn.close(), 2)
                    except Exception:
                        conn.terminate()
            if self._stopping.is_set():
                return
            await _first_set(self._stopping, within_s=delay)
            delay = min(delay * 2, settings.activity_reconnect_max_s)

    async def _listen_logs(self, conn: asyncpg.Connection, listening: bool) -> bool:
        """LISTEN on the log channel while a session of this process follows a process, and
        only then: a log insert's NOTIFY costs the applying transaction next to nothing when no
        backend listens. Once listening, the followers re-read (lines may have been committed
        before). Whether it listens now."""
        followed = self._watchers.followed()
        if bool(followed) == listening:
            return listening
        if not followed:
            await conn.remove_listener(LOGS_CHANNEL, self._on_logs)
            return False
        await conn.add_listener(LOGS_CHANNEL, self._on_logs)
        for process_id in followed:
            for watcher in self._watchers.following(process_id):
                watcher.logs_appended(process_id)
        return True

    async def _dispatch(self) -> None:
        while not self._stopping.is_set():
            project_id, seq = await self._notes.get()
            peers = self._directory.for_project(project_id)
            watchers = self._watchers.for_project(project_id)
            if not peers and not watchers and watchers is not None:
                continue
            receivers: list[Peer | Watcher] = [*peers, *(watchers or ())]
            try:
                async with self._db.acquire() as conn:
                    if watchers is None:
                        org = await swarm_projects.organization_id(conn, project_id)
                        receivers += self._watchers.adopt(project_id, org)
                    event = await activity.fetch_by_seq(conn, project_id, seq)
            except Exception as exc:
                log.warning("activity.read_failed", error=type(exc).__name__)
                for receiver in receivers:
                    receiver.catch_up_activity()
                continue
            if event is None:
                continue
            for receiver in receivers:
                receiver.offer_activity(event)
