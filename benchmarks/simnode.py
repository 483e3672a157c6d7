"""Hive-capacity mode: simulated nodes that speak the node protocol over real WebSockets, with no
node store, cheap enough that thousands fit in one worker process.

What one :class:`SimNode` does on the wire is what ``vk_node.link`` does (docs/protocol.md,
docs/sync-protocol.md): it connects to ``/v1/nodes/ws`` with the msgpack subprotocol (the
``websockets`` client, which answers the hive's pings and pings every 20 s like a node),
authenticates with its API key, a machine id, its ack frontier (``last_acked_seq``), the cursor of
its linked project and the ``ack_tasks`` feature; then sends ``projects_sync``, ``link_project``
when the hive does not list the link yet, and a ``digest``. While connected it heartbeats at the
interval ``auth_result`` gives, streams its outbox in ``op_batch`` frames of 50 ops with at most 4
batches in flight, takes cumulative ``op_ack`` (a stop inside the oldest batch in flight is a park:
the window rewinds and pauses 2 s; a batch unanswered for 30 s rewinds it too), counts
``op_rejected``, records when each ``task_assign`` arrived, follows the activity cursor
(``activity``, ``activity_skipped``) and counts every other frame (``node_status`` among them).
It reconnects with a jittered backoff and resends from its ack frontier, as a node does.

What it leaves out, and why that is fair for measuring the hive: there is no SQLite — an outbox
op is its encoded bytes in memory, appended when the benchmark "writes" — so nothing the node
would do locally (the write transaction, applying activity, the ack transaction) costs anything
here; periodic digests (every 300 s on a node) are not sent; a ``task_assign`` starts nothing.

Ops are encoded once, when they are written: each is a msgspec ``Raw`` (an encoded
``OutboxOp``), and a batch frame is the ``op_batch`` header around the raw ops, so sending and
resending costs one concatenation. Task ops are built from one template per node, with only the
ids, seq, title and timestamps changing.

A :class:`SimWorker` holds the nodes of one worker process; it answers the same commands as the
end-to-end worker of :mod:`benchmarks.nodes` (``setup``, ``prefill_tasks``, ``start_links``,
``load``…), so one :class:`benchmarks.nodes.Fleet` drives either kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from vk_shared.codec import ProtocolError, decode_hive_message, encode_msgpack
from vk_shared.protocol import (
    FEATURES,
    MAX_FRAME_BYTES,
    OP_BATCH_SIZE,
    PROTOCOL_VERSION,
    SUBPROTOCOL_MSGPACK,
    WS_PATH,
)
from vk_shared.status import NodeStatus, NodeTaskStatus
from vk_shared.wire import (
    Activity,
    ActivityCursor,
    ActivitySkipped,
    AttemptUpsert,
    Auth,
    AuthResult,
    Digest,
    ErrorMessage,
    ExecutionUpsert,
    Heartbeat,
    LinkProject,
    LocalProjectInfo,
    LogEntry,
    LogsAppend,
    NodeCapabilities,
    OpAck,
    OpRejected,
    OutboxOp,
    OutputType,
    ProcessStatus,
    ProjectsSync,
    TaskAssign,
    TaskUpsert,
    tag_of,
)

from .schedule import open_loop

__all__ = ["SimNode", "SimSpec", "SimWorker"]

WINDOW = 4
"""Batches in flight (``VK_NODE_OUTBOX_WINDOW``'s default)."""
PARK_RETRY_S = 2.0
ACK_TIMEOUT_S = 30.0
PING_INTERVAL_S = 20.0
"""``VK_NODE_LINK_PING_INTERVAL_S``'s default (also the pong timeout)."""
LOG_BATCH_LINES = 200
"""Lines per ``logs.append`` (``VK_NODE_LOG_BATCH_LINES``'s default)."""
CONNECTS_PER_WORKER = 16
"""Handshakes one worker has open at once: the hive refuses sockets beyond 64 unauthenticated
ones (``VK_HIVE_NODE_AUTH_MAX_PENDING``), and a node would retry after its backoff."""


@dataclass(frozen=True)
class SimSpec:
    index: int
    api_key: str
    swarm_project_id: str
    """The swarm project its local project links; empty: it links none."""
    hive_url: str


class _RawBatch(msgspec.Struct, tag="op_batch", tag_field="type"):
    """``op_batch`` around ops that are already encoded."""

    ops: list[msgspec.Raw]


_ENCODER = msgspec.msgpack.Encoder()


def _ws_url(hive_url: str) -> str:
    base = hive_url.rstrip("/")
    for http_scheme, ws_scheme in (("http://", "ws://"), ("https://", "wss://")):
        if base.startswith(http_scheme):
            base = ws_scheme + base[len(http_scheme) :]
    return base + WS_PATH


@dataclass
class _InFlight:
    first: int
    last: int
    sent_at: float


@dataclass
class SimNode:
    """One simulated node (see the module docstring)."""

    spec: SimSpec
    gate: asyncio.Semaphore
    machine_id: str = field(default_factory=lambda: f"sim-{uuid.uuid4().hex[:12]}")
    local_project_id: uuid.UUID = field(default_factory=uuid.uuid4)
    ops: list[msgspec.Raw] = field(default_factory=list)
    """The outbox: op ``seq`` is ``ops[seq - 1]``."""
    acked_through: int = 0
    next_seq: int = 1
    highest_sent: int = 0
    in_flight: deque[_InFlight] = field(default_factory=deque)
    paused_until: float = 0.0
    ws: ClientConnection | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    sessions: int = 0
    cursor: int = 0
    frames: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    parks: int = 0
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)
    assigns: dict[str, float] = field(default_factory=dict)
    pending: deque[tuple[int, float]] = field(default_factory=deque)
    latencies: list[float] = field(default_factory=list)
    record_after: float = 0.0
    task_ids: list[uuid.UUID] = field(default_factory=list)
    _pumping: bool = False
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self._template = TaskUpsert(
            id=self.local_project_id,
            project_id=self.local_project_id,
            title="-",
            description="a benchmark task with a short description",
            status=NodeTaskStatus.TODO,
            created_at=now,
            updated_at=now,
        )
        self._heartbeat = encode_msgpack(Heartbeat(status=NodeStatus.ONLINE, running=0, capacity=1))
        self._projects_sync = encode_msgpack(
            ProjectsSync(
                projects=[
                    LocalProjectInfo(
                        local_project_id=self.local_project_id,
                        name=f"bench-{self.spec.index}",
                        git_repo_path=f"/srv/bench/{self.spec.index}",
                    )
                ]
            )
        )
        self._project = (
            uuid.UUID(self.spec.swarm_project_id) if self.spec.swarm_project_id else None
        )
        self._link = b""
        if self._project is not None:
            self._link = encode_msgpack(
                LinkProject(
                    project_id=self._project,
                    local_project_id=self.local_project_id,
                    git_repo_path=f"/srv/bench/{self.spec.index}",
                )
            )

    # --- the outbox ---------------------------------------------------------------------------

    def append(self, entity_id: uuid.UUID, payload: Any) -> int:
        """Append one op (encoded now); its seq."""
        seq = len(self.ops) + 1
        op = OutboxOp(
            seq=seq, entity_id=entity_id, idempotency_key=uuid.uuid4().hex, payload=payload
        )
        self.ops.append(msgspec.Raw(_ENCODER.encode(op)))
        return seq

    def new_task(self, title: str) -> int:
        task_id = uuid.uuid4()
        self.task_ids.append(task_id)
        now = dt.datetime.now(dt.UTC)
        payload = msgspec.structs.replace(
            self._template, id=task_id, title=title, created_at=now, updated_at=now
        )
        return self.append(task_id, payload)

    def update_task(self, k: int, title: str) -> int:
        """An update of task ``k`` (round robin over the node's tasks)."""
        task_id = self.task_ids[k % len(self.task_ids)]
        payload = msgspec.structs.replace(
            self._template,
            id=task_id,
            title=title,
            description="updated by the benchmark",
            updated_at=dt.datetime.now(dt.UTC),
        )
        return self.append(task_id, payload)

    def backlog(self) -> int:
        return len(self.ops) - self.acked_through

    # --- the link -----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sim-node-{self.spec.index}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)

    async def _run(self) -> None:
        url = _ws_url(self.spec.hive_url)
        delay = 0.2
        while True:
            try:
                await self._connect_once(url)
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._note(f"{type(exc).__name__}: {exc}")
            self.connected.clear()
            self.ws = None
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(2.0, delay * 2)

    async def _connect_once(self, url: str) -> None:
        async with self.gate:
            ws = await connect(
                url,
                subprotocols=[Subprotocol(SUBPROTOCOL_MSGPACK)],
                open_timeout=60,
                ping_interval=PING_INTERVAL_S,
                ping_timeout=PING_INTERVAL_S,
                close_timeout=2.0,
                max_size=MAX_FRAME_BYTES,
                compression=None,
                proxy=None,
                user_agent_header="vk-bench-simnode",
            )
            try:
                result = await asyncio.wait_for(self._authenticate(ws), 60)
            except BaseException:
                await ws.close()
                raise
        try:
            await self._serve(ws, result)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)

    async def _authenticate(self, ws: ClientConnection) -> AuthResult:
        cursors = []
        if self.cursor and self._project is not None:
            cursors = [ActivityCursor(project_id=self._project, seq=self.cursor)]
        auth = Auth(
            api_key=self.spec.api_key,
            machine_id=self.machine_id,
            name=f"sim-node-{self.spec.index}",
            capabilities=NodeCapabilities(executors=["SCRIPT"], max_concurrent=1, os="linux"),
            protocol_version=PROTOCOL_VERSION,
            activity_cursors=cursors,
            last_acked_seq=self.acked_through,
            features=list(FEATURES),
        )
        await ws.send(encode_msgpack(auth))
        while True:
            msg = decode_hive_message(await ws.recv(), binary=True)
            if isinstance(msg, AuthResult):
                return msg
            if isinstance(msg, ErrorMessage):
                raise RuntimeError(f"auth refused ({msg.code}): {msg.message}")

    async def _serve(self, ws: ClientConnection, result: AuthResult) -> None:
        await ws.send(self._projects_sync)
        if self._project is not None and not any(
            lp.project_id == self._project and lp.local_project_id == self.local_project_id
            for lp in result.linked_projects
        ):
            await ws.send(self._link)
        await ws.send(encode_msgpack(Digest(buckets=[], last_seq=len(self.ops))))
        # A new session resends everything not acked (the hive dedups).
        self.in_flight.clear()
        self.next_seq = self.acked_through + 1
        self.highest_sent = self.acked_through
        self.paused_until = 0.0
        self.ws = ws
        self.sessions += 1
        self.connected.set()
        beats = asyncio.create_task(self._heartbeats(ws, result.heartbeat_interval_ms / 1000))
        try:
            await self.pump()
            async for frame in ws:
                await self._on_frame(frame)
        finally:
            self.connected.clear()
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await beats
        raise ConnectionError(f"closed by the hive: code {ws.close_code} {ws.close_reason}")

    async def _heartbeats(self, ws: ClientConnection, interval: float) -> None:
        while True:
            await ws.send(self._heartbeat)
            await asyncio.sleep(interval)

    # --- what the hive sends ------------------------------------------------------------------

    async def _on_frame(self, frame: str | bytes) -> None:
        try:
            msg = decode_hive_message(frame, binary=True)
        except ProtocolError as exc:
            self.frames["bad_frame"] += 1
            self._note(f"bad frame: {exc}")
            return
        self.frames[tag_of(msg)] += 1
        if isinstance(msg, OpAck):
            self._acked(msg.applied_through_seq)
            await self.pump()
        elif isinstance(msg, OpRejected):
            self.rejected += 1
        elif isinstance(msg, TaskAssign):
            self.assigns[str(msg.task_id)] = time.monotonic()
        elif isinstance(msg, Activity | ActivitySkipped):
            self.cursor = max(self.cursor, msg.seq)
        elif isinstance(msg, ErrorMessage):
            self._note(f"hive error {msg.code}: {msg.message}")

    def _acked(self, through: int) -> None:
        through = min(through, self.highest_sent)
        now = time.monotonic()
        self.acked_through = max(self.acked_through, through)
        parked = bool(self.in_flight) and (
            self.in_flight[0].first - 1 <= through < self.in_flight[0].last
        )
        while self.in_flight and self.in_flight[0].last <= self.acked_through:
            self.in_flight.popleft()
        if parked:
            self.parks += 1
            self._rewind(through + 1)
            self.paused_until = now + PARK_RETRY_S
            asyncio.get_running_loop().call_later(PARK_RETRY_S, self._kick)
        elif self.next_seq <= self.acked_through:
            self.next_seq = self.acked_through + 1
        pending = self.pending
        while pending and pending[0][0] <= self.acked_through:
            _, written = pending.popleft()
            if written >= self.record_after:
                self.latencies.append(now - written)

    def _rewind(self, seq: int) -> None:
        self.in_flight.clear()
        self.next_seq = seq

    def check_timeout(self, now: float) -> None:
        """Rewind to the ack frontier when the oldest batch waited ``ACK_TIMEOUT_S``."""
        if self.in_flight and now - self.in_flight[0].sent_at >= ACK_TIMEOUT_S:
            self.timeouts += 1
            self._rewind(self.acked_through + 1)
            self._kick()

    def _kick(self) -> None:
        if self.connected.is_set() and not self._pumping:
            task = asyncio.create_task(self._pump_quietly())
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)

    async def _pump_quietly(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.pump()

    async def pump(self) -> None:
        """Send batches while the window has room (one pump at a time: a second caller returns,
        the running one sees what it appended before its next check)."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while (
                self.ws is not None
                and self.connected.is_set()
                and len(self.in_flight) < WINDOW
                and self.next_seq <= len(self.ops)
                and time.monotonic() >= self.paused_until
            ):
                first = self.next_seq
                last = min(len(self.ops), first + OP_BATCH_SIZE - 1)
                frame = _ENCODER.encode(_RawBatch(ops=self.ops[first - 1 : last]))
                self.in_flight.append(_InFlight(first, last, time.monotonic()))
                self.next_seq = last + 1
                self.highest_sent = max(self.highest_sent, last)
                await self.ws.send(frame)
        finally:
            self._pumping = False

    def _note(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text[:300])
            print(f"sim-node-{self.spec.index}: {text[:300]}", file=sys.stderr, flush=True)


_BACKGROUND: set[asyncio.Task[None]] = set()


# --- the worker ------------------------------------------------------------------------------


class SimWorker:
    """The simulated nodes of one worker process (commands as in :mod:`benchmarks.nodes`)."""

    def __init__(self) -> None:
        self.nodes: list[SimNode] = []
        self._watch: asyncio.Task[None] | None = None

    async def setup(self, hive_urls: list[str], specs: Sequence[Any], overrides: Any) -> int:
        gate = asyncio.Semaphore(int(overrides.get("connects", CONNECTS_PER_WORKER)))
        self.nodes = [
            SimNode(
                SimSpec(
                    s.index, s.api_key, s.swarm_project_id, hive_urls[s.index % len(hive_urls)]
                ),
                gate,
            )
            for s in specs
        ]
        return len(self.nodes)

    async def prefill_tasks(self, per_node: int, updates: float = 0.0) -> int:
        """``per_node`` ``task.upsert`` ops per node: new tasks, and with ``updates`` > 0 that
        share of updates mixed in (each of a task created at least one batch earlier)."""
        for node in self.nodes:
            share, k = 0.0, 0
            for i in range(per_node):
                title = f"bench task {node.spec.index}-{i}"
                older = len(node.task_ids) - OP_BATCH_SIZE
                share = min(1.0, share + updates)
                if share >= 1 and older > 0:
                    share -= 1
                    node.update_task(k % older, title + " (updated)")
                    k += 7
                else:
                    node.new_task(title)
        return sum(len(n.ops) for n in self.nodes)

    async def prefill_logs(self, per_node: int, line_bytes: int = 80) -> int:
        """A task, its attempt and a running execution per node, then ``per_node`` stdout lines
        in ``logs.append`` ops of ``LOG_BATCH_LINES``."""
        now = dt.datetime.now(dt.UTC)
        pad = "x" * max(0, line_bytes - 24)
        for node in self.nodes:
            node.new_task("chatty")
            task_id = node.task_ids[-1]
            attempt_id, process_id = uuid.uuid4(), uuid.uuid4()
            node.append(
                attempt_id,
                AttemptUpsert(
                    id=attempt_id,
                    task_id=task_id,
                    executor="SCRIPT",
                    branch=f"vk/bench-{node.spec.index}",
                    target_branch="main",
                    created_at=now,
                    updated_at=now,
                ),
            )
            node.append(
                process_id,
                ExecutionUpsert(
                    id=process_id,
                    attempt_id=attempt_id,
                    run_reason="codingagent",
                    executor_action={"typ": {"type": "ScriptRequest"}},
                    status=ProcessStatus.RUNNING,
                    started_at=now,
                ),
            )
            done = 0
            while done < per_node:
                n = min(LOG_BATCH_LINES, per_node - done)
                entries = [
                    LogEntry(
                        id=done + i + 1,
                        output_type=OutputType.STDOUT,
                        content=f"line {done + i:>10} {pad}",
                        timestamp=now,
                    )
                    for i in range(n)
                ]
                node.append(
                    process_id,
                    LogsAppend(
                        execution_id=process_id,
                        first_log_id=done + 1,
                        last_log_id=done + n,
                        entries=entries,
                    ),
                )
                done += n
        return per_node * len(self.nodes)

    async def start_links(self) -> int:
        for node in self.nodes:
            node.start()
        self._watch = asyncio.create_task(self._watchdog())
        return len(self.nodes)

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for node in self.nodes:
                node.check_timeout(now)

    async def wait_connected(self, within: float) -> int:
        async def one(node: SimNode) -> bool:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(node.connected.wait(), within)
            return node.connected.is_set()

        return sum(await asyncio.gather(*(one(n) for n in self.nodes)))

    async def connected(self) -> int:
        return sum(1 for n in self.nodes if n.connected.is_set())

    async def backlog(self) -> int:
        return sum(n.backlog() for n in self.nodes)

    async def sessions(self) -> int:
        return sum(n.sessions for n in self.nodes)

    async def stats(self) -> dict[str, Any]:
        """Frames received by type, rejections, parks, ack timeouts and the first errors."""
        frames: Counter[str] = Counter()
        for n in self.nodes:
            frames.update(n.frames)
        return {
            "frames": dict(frames),
            "rejected": sum(n.rejected for n in self.nodes),
            "parks": sum(n.parks for n in self.nodes),
            "ack_timeouts": sum(n.timeouts for n in self.nodes),
            "errors": [e for n in self.nodes for e in n.errors][:10],
        }

    async def load(self, rate: float, duration: float, warmup: float) -> dict[str, Any]:
        """Each node updates one of its tasks ``rate`` times a second (open loop) for
        ``duration`` s; write (the op appended to the outbox) → ``op_ack`` latencies of the
        writes after ``warmup``, how many were not acked yet when the schedule ended, and how
        many never got their ack."""
        start = time.monotonic() + 0.05
        for node in self.nodes:
            node.record_after = start + warmup
            node.latencies.clear()

        async def write(node: SimNode, k: int) -> None:
            seq = node.update_task(k, f"bench task {node.spec.index} v{k}")
            node.pending.append((seq, time.monotonic()))
            with contextlib.suppress(ConnectionClosed):
                await node.pump()

        writes = await open_loop(self.nodes, rate, duration, start, write)
        elapsed = time.monotonic() - start
        behind = sum(len(n.pending) for n in self.nodes)
        deadline = time.monotonic() + 30.0
        while any(n.pending for n in self.nodes) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return {
            "writes": sum(writes),
            "elapsed": elapsed,
            "unacked": sum(len(n.pending) for n in self.nodes),
            "unacked_at_end": behind,
            "latencies": [x for n in self.nodes for x in n.latencies],
        }

    async def assigns(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for node in self.nodes:
            out.update(node.assigns)
        return out

    async def stop(self) -> int:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await asyncio.gather(*(n.stop() for n in self.nodes))
        count = len(self.nodes)
        self.nodes = []
        return count
