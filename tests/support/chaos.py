"""Fault injection for the sync protocol (``make chaos``): seeded random schedules of workload and
faults against a real hive and real nodes, then a checker of the invariants that must survive any
schedule.

One schedule (:func:`run_schedule`), all on this machine:

- a fresh hive database (copy of a migrated template), ``vk-hive serve`` and two or three
  ``vk-node serve`` processes; each node reaches the hive through its own
  :class:`~support.tcpproxy.TcpProxy`, run by :class:`ProxyLoop` on an asyncio loop in a thread
  of the harness process;
- the events of :func:`generate` (a pure function of the seed), executed at their offsets:
  workload — SCRIPT tasks dispatched from the hive (each run records its start, its marks and its
  stop or end, with ``date +%s.%N``, to a shared evidence directory), hive REST edits
  (title, description, archive, delete), node-local creates and edits in the linked project — and
  faults — node SIGKILL + restart, hive SIGKILL + restart on the same port, link cuts (``reset``
  and ``blackhole``) and heals, added delays; every (re)start picks a wall-clock skew of ±30 s
  (``VK_NODE_CLOCK_SKEW_S`` / ``VK_HIVE_CLOCK_SKEW_S``);
- with ``hives=2`` (``make chaos HIVES=2``): two ``vk-hive serve`` processes on the one database,
  each node configured with both (``VK_HIVE_URL=a,b`` in an order drawn per node, each URL a
  proxy of its own, so a cut or delay hits one hive link of the node or all of them); either hive
  is SIGKILLed and restarted at random (a lone hive stays down up to :data:`LONE_HIVE_DOWN_S`,
  longer than a lease, so leases survive only by the nodes' failover; both at once never longer
  than :data:`ALL_HIVES_DOWN_S`, as the single hive), and each dispatch or edit goes through
  either hive's REST (the other's when it is down). The checker is the same: everything it reads
  is in the shared database and the nodes' stores;
- then everything is healed and restarted, the harness waits for quiescence (outboxes acked,
  no active assignment, activity cursors at the hive's latest seq), forces one digest exchange per
  node (a ``reset`` of its link: the node sends a digest on connect), and collects an
  :class:`Observation` from both stores, the node logs and the evidence files;
- :func:`check` (pure: an observation in, violations out) verifies the invariants:

  (a) *exactly once*: per node, the idempotency keys its outbox holds as acked equal the keys the
      hive recorded in ``node_op_log`` (nothing lost, nothing the node did not commit), each once;
      the ones the node holds as applied (acked, no ``rejected_at``) are exactly the ones the hive
      applied (``node_op_log.reject_code`` NULL); nothing is left unacked; no two live shared
      tasks share ``(source_node_id, source_task_id)``;
  (b) *no stale-token write*: every op the hive applied about a task the applying node does not
      own carried (``node_op_log.fencing_token``, recorded by the hive in the apply transaction)
      the token of one of that node's leases of the task, and was applied
      (``node_op_log.applied_at``: the apply transaction's start, database clock) while that
      lease was current — within ``[granted, ended]`` give or take ``APPLY_SLACK_S`` for the
      apply transaction's own duration. Leases come from ``node_lease_tokens`` (every token an
      assignment row ever carried, with its holder and interval; a reclaim or takeover gives the
      same row a new token, so the row alone shows only the last). Also: a task's leases never
      overlap in time and their tokens increase with the grant time. (Writes of a node's own
      tasks need no lease and are not checked.)
  (c) *no double execution*: no two runs of one task (any nodes) overlap — a run lasts from its
      start to its last sign of life (stop, end or last mark), all written with this host's
      real clock; ``RUN_MARGIN_S`` absorbs clock read precision;
  (d) *convergence*: every node holds exactly one copy of every live hive task (title,
      description, status in node spelling, ``remote_version`` = version, archived or not), no
      copy of a deleted task, no linked copy of an unknown task, and its forced digest exchange
      asked for nothing (no pull, no mismatched bucket, no resend).

A failing schedule keeps its directory (process logs, evidence, ``schedule.json``, ``events.log``
with the executed events and their offsets) and prints how to replay it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import random
import shlex
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from support.cluster import (
    ApiError,
    ApiKey,
    Bootstrap,
    HiveProcess,
    NodeProcess,
    RestClient,
    leftover_processes,
    make_demo_repo,
    wait_until,
)
from support.tcpproxy import TcpProxy
from vk_shared.status import TaskStatus, to_node

__all__ = [
    "ALL_HIVES_DOWN_S",
    "APPLY_SLACK_S",
    "LONE_HIVE_DOWN_S",
    "RUN_MARGIN_S",
    "Event",
    "HiveTask",
    "Lease",
    "LocalTask",
    "NodeState",
    "Observation",
    "OpLogRow",
    "OutboxRow",
    "ProxyLoop",
    "Run",
    "ScheduleResult",
    "Violation",
    "check",
    "drop_database",
    "format_failure",
    "generate",
    "hive_names",
    "migrated_template",
    "replay_command",
    "run_schedule",
    "summarize",
]

T = TypeVar("T")

APPLY_SLACK_S = 1.0
"""How far an op's ``applied_at`` (its apply transaction's start) may lie outside the holder's
assignment interval: the fence check runs later in the same transaction (after lock waits)."""

RUN_MARGIN_S = Decimal("0.005")
"""Precision of ``date +%s.%N`` reads on one host (two runs closer than this are not an overlap)."""

HIVE_ENV: dict[str, str] = {
    "VK_HIVE_LEASE_TTL_S": "3",
    "VK_HIVE_LEASE_GRACE_S": "1",
    "VK_HIVE_LEASE_SWEEP_INTERVAL_S": "0.3",
    "VK_HIVE_HEARTBEAT_INTERVAL_S": "0.5",
    # A blackholed session is dropped before its lease is reclaimed, so the re-dispatch goes to a
    # node that is really connected.
    "VK_HIVE_HEARTBEAT_TIMEOUT_S": "2.5",
    "VK_HIVE_AUTH_TIMEOUT_S": "3",
}
NODE_ENV: dict[str, str] = {
    "VK_NODE_LINK_BACKOFF_INITIAL_S": "0.1",
    "VK_NODE_LINK_BACKOFF_MAX_S": "1",
    "VK_NODE_LINK_PING_INTERVAL_S": "1",
    "VK_NODE_LINK_OPEN_TIMEOUT_S": "2",
    "VK_NODE_LINK_AUTH_TIMEOUT_S": "2",
    "VK_NODE_OUTBOX_ACK_TIMEOUT_S": "2",
    "VK_NODE_LEASE_RESTORE_GRACE_S": "3",
    "VK_NODE_DIGEST_INTERVAL_S": "5",
}


# --- the schedule --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One step of a schedule: ``kind`` on ``target`` (``hive`` or a node name) at ``at`` seconds
    after the start. ``args`` are drawn from the seed too (``pick`` chooses among the tasks that
    exist when the event runs)."""

    at: float
    kind: str
    target: str
    args: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in sorted(self.args.items()))
        return f"{self.kind} {self.target} {args}".strip()


WORKLOAD = {
    "dispatch": 4,
    "hive_edit": 3,
    "hive_archive": 1,
    "hive_delete": 1,
    "node_create": 3,
    "node_edit": 3,
}
FAULTS = {"node_kill": 2, "hive_kill": 1, "cut": 3, "delay": 2}

LONE_HIVE_DOWN_S = 5.0
"""The longest a killed hive stays down while another hive runs: longer than the lease TTL, so a
node's leases survive only by its failover to the other hive."""
ALL_HIVES_DOWN_S = 2.5
"""The longest every hive is down at once: as long as the one hive of the single-hive topology
(the lease TTL minus a margin), so the outage itself does not force reclaims."""


def _skew(rng: random.Random) -> float:
    return rng.choice([-30.0, -12.5, 0.0, 0.0, 7.0, 30.0])


def hive_names(hives: int) -> list[str]:
    """The hive processes of a topology: ``hive`` alone, or ``hive-1`` … ``hive-N``."""
    return ["hive"] if hives == 1 else [f"hive-{i + 1}" for i in range(hives)]


def _hive_kill(
    rng: random.Random, t: float, hives: list[str], down_until: dict[str, float]
) -> list[Event]:
    """A kill -9 of one of several hives at ``t`` and its restart: down for up to
    ``LONE_HIVE_DOWN_S`` while another hive runs (its nodes fail over), but no longer than
    ``ALL_HIVES_DOWN_S`` while every other hive is down too (as long as one hive alone may be:
    leases are kept, not reclaimed, across the outage)."""
    target = rng.choice(hives)
    down = rng.uniform(0.3, LONE_HIVE_DOWN_S)
    if down_until[target] > t:
        return []
    others_down = [down_until[h] for h in hives if h != target and down_until[h] > t]
    if len(others_down) == len(hives) - 1:
        down = min(down, ALL_HIVES_DOWN_S)
    down_until[target] = t + down + 1.0
    return [
        Event(t, "hive_kill", target),
        Event(t + down, "hive_start", target, {"skew": _skew(rng)}),
    ]


def generate(
    seed: int, *, duration: float = 12.0, nodes: int | None = None, hives: int = 1
) -> dict[str, Any]:
    """The schedule of ``seed``: node count, initial skews and the events (sorted by offset).
    Faults that end (restart, heal, delay reset) get their own event; the generator tracks what is
    down so no event targets a process that is already dead or a link already cut.

    With ``hives`` > 1 the hive events name the process they hit (kills, restarts, and the REST
    calls of the workload, each through a hive drawn at random), a link fault names the hive link
    of the node it cuts or slows (or ``all``), and each node gets its order of the hive URLs. The
    draws for one hive are the same as before several existed: a seed replays the same schedule."""
    rng = random.Random(seed)
    count = nodes or rng.choice([2, 3])
    names = [f"node-{chr(ord('a') + i)}" for i in range(count)]
    hive_list = hive_names(hives)
    events: list[Event] = []
    busy_until: dict[str, float] = {name: 0.0 for name in [*names, *hive_list]}
    link_busy: dict[str, float] = {name: 0.0 for name in names}
    # Each hive process is killed as often as the one hive of the single-hive topology.
    faults = {**FAULTS, "hive_kill": FAULTS["hive_kill"] * hives}
    t = 0.3
    while t < duration:
        t += rng.uniform(0.15, 0.6)
        if t >= duration:
            break
        if rng.random() < 0.3:
            kind = rng.choices(list(faults), weights=list(faults.values()))[0]
            if kind == "hive_kill" and hives > 1:
                events += _hive_kill(rng, t, hive_list, busy_until)
            elif kind == "hive_kill":
                if busy_until["hive"] > t:
                    continue
                down = rng.uniform(0.3, 2.5)
                events.append(Event(t, "hive_kill", "hive"))
                events.append(Event(t + down, "hive_start", "hive", {"skew": _skew(rng)}))
                busy_until["hive"] = t + down + 1.0
            elif kind == "node_kill":
                name = rng.choice(names)
                if busy_until[name] > t:
                    continue
                down = rng.uniform(0.3, 3.0)
                events.append(Event(t, "node_kill", name))
                events.append(Event(t + down, "node_start", name, {"skew": _skew(rng)}))
                busy_until[name] = t + down + 1.0
            elif kind == "cut":
                name = rng.choice(names)
                if link_busy[name] > t:
                    continue
                span = rng.uniform(0.3, 6.0)
                mode = rng.choice(["reset", "blackhole"])
                cut_args = {"mode": mode, **_link(rng, hive_list)}
                events.append(Event(t, "cut", name, cut_args))
                events.append(Event(t + span, "heal", name))
                link_busy[name] = t + span + 0.2
            else:
                name = rng.choice(names)
                if link_busy[name] > t:
                    continue
                span = rng.uniform(0.5, 4.0)
                delay = round(rng.uniform(0.02, 0.6), 3)
                events.append(Event(t, "delay", name, {"seconds": delay, **_link(rng, hive_list)}))
                events.append(Event(t + span, "delay", name, {"seconds": 0.0}))
                link_busy[name] = t + span + 0.2
        else:
            kind = rng.choices(list(WORKLOAD), weights=list(WORKLOAD.values()))[0]
            pick = round(rng.random(), 6)
            if kind == "dispatch":
                marks = rng.randint(4, 20)
                via = rng.choice(hive_list) if hives > 1 else "hive"
                events.append(Event(t, kind, via, {"marks": marks, "pick": pick}))
            elif kind.startswith("hive_"):
                via = rng.choice(hive_list) if hives > 1 else "hive"
                events.append(Event(t, kind, via, {"pick": pick}))
            else:
                name = rng.choice(names)
                args: dict[str, Any] = {"pick": pick}
                if kind == "node_edit":
                    args["field"] = rng.choice(["title", "description", "status", "hive_copy"])
                events.append(Event(t, kind, name, args))
    events.sort(key=lambda e: e.at)
    skews = {name: _skew(rng) for name in [*names, *hive_list]}
    return {
        "seed": seed,
        "duration": duration,
        "nodes": names,
        "hives": hive_list,
        "hive_order": {
            name: rng.sample(hive_list, len(hive_list)) if hives > 1 else hive_list
            for name in names
        },
        "skews": skews,
        "events": events,
    }


def _link(rng: random.Random, hives: list[str]) -> dict[str, str]:
    """Which of a node's hive links a cut or delay hits (nothing to draw with one hive)."""
    return {"hive": rng.choice([*hives, "all"])} if len(hives) > 1 else {}


# --- the proxies ---------------------------------------------------------------------------------


class ProxyLoop:
    """TCP proxies on an asyncio loop in a thread of this process; every control is thread-safe
    and returns once the loop applied it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chaos-proxies")
        self.thread.daemon = True
        self.thread.start()
        self.proxies: list[TcpProxy] = []

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def proxy(self, port: int) -> TcpProxy:
        async def start() -> TcpProxy:
            return await TcpProxy("127.0.0.1", port).start()

        proxy = self._run(start())
        self.proxies.append(proxy)
        return proxy

    def call(self, fn: Callable[[], None]) -> None:
        async def run() -> None:
            fn()

        self._run(run())

    def close(self) -> None:
        async def close_all() -> None:
            for proxy in self.proxies:
                await proxy.close()

        try:
            self._run(close_all())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


# --- observations and the checker ----------------------------------------------------------------


@dataclass
class OutboxRow:
    seq: int
    key: str
    op_type: str
    entity_id: str
    acked: bool
    rejected: bool
    reject_code: str | None = None


@dataclass
class OpLogRow:
    key: str
    seq: int
    op_type: str
    entity_id: str
    applied_at: float
    """Epoch seconds (database clock)."""
    task_id: str | None = None
    """The shared task the op is about (resolved at collection), None when unknown."""
    reject_code: str | None = None
    """The hive's outcome: None = applied, else why it was skipped."""
    token: int | None = None
    """The fencing token the op carried when the hive processed it."""


@dataclass
class Lease:
    """One fencing token of an assignment, while a node held it (``node_lease_tokens``)."""

    id: str
    """The assignment's id."""
    task_id: str
    node_id: str
    """The node that held the token."""
    token: int
    assigned_at: float
    """When the token was granted (epoch seconds, database clock)."""
    completed_at: float | None
    """When it stopped being current (a newer token, or the assignment closed); None: current."""


@dataclass
class HiveTask:
    id: str
    title: str
    description: str | None
    status: str
    version: int
    archived: bool
    deleted: bool
    owner_node_id: str | None = None
    source_node_id: str | None = None
    source_task_id: str | None = None


@dataclass
class LocalTask:
    id: str
    shared_task_id: str | None
    title: str
    description: str | None
    status: str
    remote_version: int
    archived: bool


@dataclass
class NodeState:
    name: str
    node_id: str
    outbox: list[OutboxRow] = field(default_factory=list)
    tasks: list[LocalTask] = field(default_factory=list)
    digest: dict[str, Any] | None = None
    """The node's ``digest.result`` after the forced exchange (None: none seen)."""


@dataclass
class Run:
    """One execution of a SCRIPT task, from the files it wrote (this host's real clock)."""

    name: str
    task: str
    node: str
    start: Decimal
    stop: Decimal | None = None
    end: Decimal | None = None
    marks: list[Decimal] = field(default_factory=list)

    @property
    def last_seen(self) -> Decimal:
        return max([self.start, *self.marks, *(x for x in (self.stop, self.end) if x is not None)])


@dataclass
class Observation:
    nodes: list[NodeState]
    op_log: dict[str, list[OpLogRow]]
    """node id → its rows of ``node_op_log``."""
    leases: list[Lease]
    hive_tasks: list[HiveTask]
    runs: list[Run]
    quiescence: str = ""
    """Empty when quiescence was reached, else what was still pending."""


@dataclass(frozen=True)
class Violation:
    kind: str
    """``exactly_once``, ``stale_token``, ``overlap``, ``divergence``, ``digest``,
    ``quiescence``."""
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.detail}"


def check(obs: Observation) -> list[Violation]:
    """Every invariant violation in ``obs`` (see the module docstring)."""
    found: list[Violation] = []
    if obs.quiescence:
        found.append(Violation("quiescence", obs.quiescence))
    found += _check_exactly_once(obs)
    found += _check_fencing(obs)
    found += _check_runs(obs.runs)
    found += _check_convergence(obs)
    return found


def _check_exactly_once(obs: Observation) -> list[Violation]:
    found = []
    for node in obs.nodes:
        unacked = [row.seq for row in node.outbox if not row.acked]
        if unacked:
            found.append(
                Violation("exactly_once", f"{node.name}: ops never acked: seqs {unacked[:20]}")
            )
        acked = {row.key for row in node.outbox if row.acked}
        logged_rows = obs.op_log.get(node.node_id, [])
        logged = [row.key for row in logged_rows]
        dupes = sorted({k for k in logged if logged.count(k) > 1})
        if dupes:
            found.append(
                Violation("exactly_once", f"{node.name}: applied more than once: {dupes[:10]}")
            )
        lost = sorted(acked - set(logged))
        if lost:
            found.append(
                Violation(
                    "exactly_once",
                    f"{node.name}: {len(lost)} acked ops the hive never recorded: {lost[:10]}",
                )
            )
        applied_here = {row.key for row in node.outbox if row.acked and not row.rejected}
        applied_there = {row.key for row in logged_rows if row.reject_code is None}
        for keys, what in (
            (applied_here - applied_there, "the node holds as applied but the hive skipped"),
            (applied_there - applied_here, "the hive applied but the node holds as rejected"),
        ):
            if keys & set(logged):
                found.append(
                    Violation(
                        "exactly_once",
                        f"{node.name}: {len(keys & set(logged))} ops {what}: "
                        f"{sorted(keys & set(logged))[:10]}",
                    )
                )
        phantom = sorted(set(logged) - {row.key for row in node.outbox})
        if phantom:
            found.append(
                Violation(
                    "exactly_once",
                    f"{node.name}: the hive recorded {len(phantom)} ops the node never "
                    f"committed: {phantom[:10]}",
                )
            )
    sources: dict[tuple[str, str], list[str]] = {}
    for task in obs.hive_tasks:
        # A deleted row is history: a node's later edit of the (unlinked) local task shares it
        # again as a new task, by design.
        if task.source_node_id and task.source_task_id and not task.deleted:
            sources.setdefault((task.source_node_id, task.source_task_id), []).append(task.id)
    for (node_id, local_id), ids in sorted(sources.items()):
        if len(ids) > 1:
            found.append(
                Violation(
                    "exactly_once",
                    f"node {node_id}'s task {local_id} exists {len(ids)} times on the hive: {ids}",
                )
            )
    return found


def _check_fencing(obs: Observation) -> list[Violation]:
    found = []
    by_task: dict[str, list[Lease]] = {}
    for a in obs.leases:
        by_task.setdefault(a.task_id, []).append(a)
    for task_id, rows in sorted(by_task.items()):
        rows.sort(key=lambda a: (a.assigned_at, a.token))
        for earlier, later in itertools.pairwise(rows):
            if later.token <= earlier.token:
                found.append(
                    Violation(
                        "stale_token",
                        f"task {task_id}: token {later.token} (assignment {later.id}) was granted "
                        f"after token {earlier.token} (assignment {earlier.id}) but is not higher",
                    )
                )
            if earlier.completed_at is None or earlier.completed_at > later.assigned_at:
                found.append(
                    Violation(
                        "stale_token",
                        f"task {task_id}: tokens {earlier.token} (assignment {earlier.id}) and "
                        f"{later.token} (assignment {later.id}) were current at the same time",
                    )
                )
    owners = {t.id: t.owner_node_id for t in obs.hive_tasks}
    for node in obs.nodes:
        for op in obs.op_log.get(node.node_id, []):
            if (
                op.reject_code is not None
                or op.task_id is None
                or owners.get(op.task_id) == node.node_id
            ):
                continue
            held = [
                a
                for a in by_task.get(op.task_id, [])
                if a.node_id == node.node_id
                and a.token == op.token
                and a.assigned_at - APPLY_SLACK_S <= op.applied_at
                and (a.completed_at is None or op.applied_at <= a.completed_at + APPLY_SLACK_S)
            ]
            if not held:
                mine = [
                    (a.token, a.assigned_at, a.completed_at)
                    for a in by_task.get(op.task_id, [])
                    if a.node_id == node.node_id
                ]
                found.append(
                    Violation(
                        "stale_token",
                        f"{node.name}: op seq {op.seq} ({op.op_type} {op.entity_id}) on task "
                        f"{op.task_id} with token {op.token} was applied at "
                        f"{op.applied_at:.3f}, outside the lease of that token (the node's "
                        f"leases of the task: token, granted, ended = {mine})",
                    )
                )
    return found


def _check_runs(runs: list[Run]) -> list[Violation]:
    found = []
    by_task: dict[str, list[Run]] = {}
    for run in runs:
        by_task.setdefault(run.task, []).append(run)
    for task, rows in sorted(by_task.items()):
        rows.sort(key=lambda r: r.start)
        for i, first in enumerate(rows):
            for second in rows[i + 1 :]:
                if first.last_seen > second.start + RUN_MARGIN_S:
                    found.append(
                        Violation(
                            "overlap",
                            f"task {task}: run {first.name} on {first.node} "
                            f"[{first.start}, {first.last_seen}] overlaps run {second.name} on "
                            f"{second.node} starting {second.start} "
                            f"(by {first.last_seen - second.start} s)",
                        )
                    )
    return found


def _check_convergence(obs: Observation) -> list[Violation]:
    found = []
    hive = {t.id: t for t in obs.hive_tasks}
    for node in obs.nodes:
        copies: dict[str, list[LocalTask]] = {}
        for local in node.tasks:
            if local.shared_task_id:
                copies.setdefault(local.shared_task_id, []).append(local)
        for task in obs.hive_tasks:
            held = copies.get(task.id, [])
            if task.deleted:
                if held:
                    found.append(
                        Violation(
                            "divergence",
                            f"{node.name}: task {task.id} was deleted on the hive but is still "
                            "linked here",
                        )
                    )
                continue
            if len(held) != 1:
                found.append(
                    Violation(
                        "divergence", f"{node.name}: {len(held)} copies of hive task {task.id}"
                    )
                )
                continue
            local = held[0]
            want = {
                "title": task.title,
                "description": task.description or None,
                "status": to_node(TaskStatus(task.status)).value,
                "version": task.version,
                "archived": task.archived,
            }
            have = {
                "title": local.title,
                "description": local.description or None,
                "status": local.status,
                "version": local.remote_version,
                "archived": local.archived,
            }
            diff = {k: (have[k], want[k]) for k in want if have[k] != want[k]}
            if diff:
                found.append(
                    Violation(
                        "divergence",
                        f"{node.name}: copy {local.id} of task {task.id} differs from the hive "
                        f"(field: node, hive): {diff}",
                    )
                )
        unknown = sorted(set(copies) - set(hive))
        if unknown:
            found.append(
                Violation("divergence", f"{node.name}: linked copies of unknown tasks {unknown}")
            )
        digest = node.digest
        if digest is None:
            found.append(Violation("digest", f"{node.name}: no digest exchange was observed"))
        elif digest.get("pull") or digest.get("mismatched") or digest.get("resend_from_seq"):
            found.append(
                Violation("digest", f"{node.name}: a converged digest still asked for {digest}")
            )
    return found


# --- running one schedule ------------------------------------------------------------------------


def _script(evidence: Path, tag: str, marks: int) -> str:
    ev = shlex.quote(str(evidence))
    return f"""# chaos task {tag}
run="$(date +%s%N)-$$"
echo "{tag} $PWD" > {ev}/"$run.where"
date +%s.%N > {ev}/"$run.start"
trap 'date +%s.%N > {ev}/"$run.stop"; exit 143' TERM INT
i=0
while [ "$i" -lt {marks} ]; do
  date +%s.%N >> {ev}/"$run.marks"
  echo "mark $i"
  sleep 0.1 & wait $!
  i=$((i + 1))
done
date +%s.%N > {ev}/"$run.end"
"""


def read_runs(evidence: Path, node_dirs: dict[str, Path]) -> list[Run]:
    """The runs recorded under ``evidence``; the node is the one whose data dir holds the run's
    worktree."""

    def read(path: Path) -> Decimal | None:
        try:
            text = path.read_text().strip()
        except OSError:
            return None
        return Decimal(text) if text else None

    runs = []
    for start_file in sorted(evidence.glob("*.start")):
        name = start_file.name.removesuffix(".start")
        started = read(start_file)
        if started is None:
            continue
        try:
            tag, where = (evidence / f"{name}.where").read_text().strip().split(" ", 1)
        except (OSError, ValueError):
            tag, where = "?", "?"
        node = next((n for n, d in node_dirs.items() if where.startswith(str(d) + "/")), where)
        marks_file = evidence / f"{name}.marks"
        marks = []
        if marks_file.exists():
            marks = [Decimal(x) for x in marks_file.read_text().split() if x]
        runs.append(
            Run(
                name=name,
                task=tag,
                node=node,
                start=started,
                stop=read(evidence / f"{name}.stop"),
                end=read(evidence / f"{name}.end"),
                marks=marks,
            )
        )
    return runs


@dataclass
class _Hive:
    name: str
    process: HiveProcess
    api: RestClient | None = None
    """The admin's REST client of this process."""


@dataclass
class _Node:
    name: str
    process: NodeProcess
    proxies: dict[str, TcpProxy]
    """Hive name → the proxy of this node's link to it."""
    key: ApiKey
    repo: Path
    project_id: str = ""
    node_id: str = ""
    api: RestClient | None = None
    local_tasks: list[str] = field(default_factory=list)


@dataclass
class ScheduleResult:
    seed: int
    violations: list[Violation]
    events: list[str]
    workdir: Path
    elapsed_s: float
    stats: dict[str, int]
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.violations and not self.error


def replay_command(seed: int, duration: float, nodes: int | None = None, hives: int = 1) -> str:
    nodes_arg = f" --nodes {nodes}" if nodes else ""
    hives_var = f" HIVES={hives}" if hives > 1 else ""
    hives_arg = f" --hives {hives}" if hives > 1 else ""
    return (
        f"make chaos SCHEDULES=1 SEED={seed}{hives_var} "
        f"CHAOS_ARGS='--duration {duration:g}{nodes_arg}'"
        f"   # or: .venv/bin/python scripts/chaos.py --seed {seed} --schedules 1 "
        f"--duration {duration:g}{nodes_arg}{hives_arg}"
    )


class _Schedule:
    def __init__(
        self, seed: int, dsn: str, workdir: Path, duration: float, nodes: int | None, hives: int
    ) -> None:
        self.seed = seed
        self.dsn = dsn
        self.workdir = workdir
        self.plan = generate(seed, duration=duration, nodes=nodes, hives=hives)
        self.cluster_id = uuid.uuid4().hex
        self.evidence = workdir / "evidence"
        self.rng = random.Random(seed ^ 0x5EED)
        self.log: list[str] = []
        self.started = time.monotonic()
        self.stats: dict[str, int] = {}
        self.hive_tasks: list[str] = []
        self.nodes: list[_Node] = []
        self.proxies = ProxyLoop()
        self.hives: list[_Hive] = []
        self.api: RestClient | None = None
        """The first hive's REST client (setup, and the harness's reads)."""
        self.admin: Bootstrap | None = None
        self.swarm_project_id = ""

    # -- bookkeeping --

    def note(self, text: str) -> None:
        line = f"{time.monotonic() - self.started:8.3f}  {text}"
        self.log.append(line)
        with (self.workdir / "events.log").open("a") as f:
            f.write(line + "\n")

    def count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    # -- setup --

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.evidence.mkdir()
        plan = self.plan
        (self.workdir / "schedule.json").write_text(
            json.dumps(
                {**plan, "events": [asdict(e) for e in plan["events"]]}, indent=1, default=str
            )
        )
        for name in plan["hives"]:
            hive = HiveProcess(
                self.dsn,
                self.workdir,
                name=name,
                env={**HIVE_ENV, "VK_HIVE_CLOCK_SKEW_S": str(plan["skews"][name])},
                cluster_id=self.cluster_id,
            )
            self.hives.append(_Hive(name, hive))
            hive.start()
        self.admin = self.hive.bootstrap("chaos@example.com")
        for entry in self.hives:
            entry.api = RestClient(entry.process.url + "/v1", self.admin.token, timeout=5)
        self.api = self.hives[0].api
        assert self.api is not None
        project = self.api.post(
            "/swarm/projects", json={"organization_id": self.admin.organization_id, "name": "c"}
        )
        self.swarm_project_id = project["id"]
        for name in plan["nodes"]:
            key = self.hive.create_api_key(self.admin.organization_id, name)
            proxies = {
                hive: self.proxies.proxy(self._hive(hive).process.port)
                for hive in plan["hive_order"][name]
            }
            process = NodeProcess(
                self.workdir,
                name=name,
                hive_url=",".join(proxy.url for proxy in proxies.values()),
                api_key=key.secret,
                env={**NODE_ENV, "VK_NODE_CLOCK_SKEW_S": str(plan["skews"][name])},
                cluster_id=self.cluster_id,
            )
            node = _Node(name, process, proxies, key, self.workdir / f"{name}-repo")
            self.nodes.append(node)
            process.start()
            node.api = RestClient(process.url + "/api", timeout=5)
            make_demo_repo(node.repo)
            created = node.api.post(
                "/projects", json={"name": f"{name}-project", "git_repo_path": str(node.repo)}
            )
            node.project_id = created["id"]
            node.node_id = process.wait_connected(20)
            node.api.post(
                f"/projects/{node.project_id}/link",
                json={"swarm_project_id": self.swarm_project_id},
            )
        for node in self.nodes:
            self._wait_linked(node)
        self.note(
            f"cluster up: {len(self.hives)} hive(s) + {len(self.nodes)} nodes; "
            f"hive order {plan['hive_order']}; skews {plan['skews']}"
        )

    @property
    def hive(self) -> HiveProcess:
        """The first hive process: the harness's CLI and database reads go through it (the
        database is shared, and ``sql`` connects to it directly, so they work while it is down)."""
        return self.hives[0].process

    def _hive(self, name: str) -> _Hive:
        return next(h for h in self.hives if h.name == name)

    def _wait_linked(self, node: _Node) -> None:
        assert self.api is not None
        api = self.api

        def ready() -> bool:
            links = api.get(f"/nodes/{node.node_id}/projects/linked")
            return any(link["swarm_project_id"] == self.swarm_project_id for link in links)

        wait_until(ready, timeout=20, what=f"{node.name} linked", logs=[self.hive, node.process])

    def close(self) -> list[str]:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.process.stop(timeout=5)
            node.process.close()
            if node.api is not None:
                node.api.close()
        for hive in self.hives:
            with contextlib.suppress(Exception):
                hive.process.stop(timeout=5)
            if hive.api is not None:
                hive.api.close()
        self.proxies.close()
        deadline = time.monotonic() + 5
        pids = leftover_processes(self.cluster_id)
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = leftover_processes(self.cluster_id)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        return [str(p) for p in pids]

    # -- events --

    def node(self, name: str) -> _Node:
        return next(n for n in self.nodes if n.name == name)

    def run_events(self) -> None:
        t0 = time.monotonic()
        for event in self.plan["events"]:
            wait = t0 + event.at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                outcome = self.apply(event)
            except ApiError as exc:
                outcome = f"refused {exc.status_code}"
            except Exception as exc:  # the workload meets dead processes and cut links
                outcome = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
            self.count(event.kind)
            self.note(f"[{event.at:6.2f}] {event.describe()} -> {outcome}")

    def _pick(self, items: list[str], pick: float) -> str | None:
        return items[int(pick * len(items)) % len(items)] if items else None

    def _links(self, node: _Node, which: str = "all") -> list[TcpProxy]:
        """The proxies of ``node``'s links to hive ``which`` (or to all)."""
        return list(node.proxies.values()) if which == "all" else [node.proxies[which]]

    def _rest(self, name: str) -> tuple[RestClient, str]:
        """The REST client of hive ``name``; when that process is down and another runs, the
        other's (a client retrying at the next address), with a note saying so."""
        hive = self._hive(name)
        if not hive.process.alive:
            hive = next((h for h in self.hives if h.process.alive), hive)
        assert hive.api is not None
        return hive.api, "" if hive.name == name else f" (through {hive.name})"

    def apply(self, e: Event) -> str:
        if e.kind == "hive_kill":
            self._hive(e.target).process.kill()
            return "killed"
        if e.kind == "hive_start":
            process = self._hive(e.target).process
            process.env["VK_HIVE_CLOCK_SKEW_S"] = str(e.args["skew"])
            process.start()
            return "started"
        if e.kind in ("node_kill", "node_start", "cut", "heal", "delay"):
            node = self.node(e.target)
            if e.kind == "node_kill":
                node.process.kill()
                return "killed"
            if e.kind == "node_start":
                node.process.env["VK_NODE_CLOCK_SKEW_S"] = str(e.args["skew"])
                node.process.start()
                return "started"
            # A heal, and the delay that ends a delay, act on every link of the node (the
            # generator keeps one link fault per node at a time).
            for proxy in self._links(node, e.args.get("hive", "all")):
                if e.kind == "cut":
                    self.proxies.call(functools.partial(proxy.cut, e.args["mode"]))
                elif e.kind == "heal":
                    self.proxies.call(proxy.heal)
                else:
                    self.proxies.call(functools.partial(proxy.set_delay, float(e.args["seconds"])))
            return {"cut": "cut", "heal": "healed"}.get(e.kind, "set")
        if e.kind in ("dispatch", "hive_edit", "hive_archive", "hive_delete"):
            api, via = self._rest(e.target)
            return self._hive_workload(e, api) + via
        return self._node_workload(e)

    def _hive_workload(self, e: Event, api: RestClient) -> str:
        if e.kind == "dispatch":
            tag = f"t{len(self.hive_tasks) + 1:03d}-{uuid.uuid4().hex[:6]}"
            created = api.post(
                "/tasks",
                json={
                    "project_id": self.swarm_project_id,
                    "title": f"chaos run {tag}",
                    "description": _script(self.evidence, tag, e.args["marks"]),
                    "executor": "SCRIPT",
                    "start_attempt": True,
                },
            )
            self.hive_tasks.append(created["task"]["id"])
            assignment = created.get("assignment") or {}
            return f"task {created['task']['id']} tag {tag} -> node {assignment.get('node_id')}"
        # hive_edit, hive_archive, hive_delete
        tasks = [t for t in api.get("/tasks", params={"project_id": self.swarm_project_id})]
        if e.kind != "hive_edit":
            # Scripts are not archived or deleted mid-run: only tasks without an executor
            # run (node-made tasks) are.
            tasks = [t for t in tasks if not (t.get("description") or "").startswith("# chaos")]
        ids = sorted(t["id"] for t in tasks)
        task_id = self._pick(ids, e.args["pick"])
        if task_id is None:
            return "no task"
        task = next(t for t in tasks if t["id"] == task_id)
        if e.kind == "hive_delete":
            api.delete(f"/tasks/{task_id}")
            return f"deleted {task_id}"
        if e.kind == "hive_archive":
            patch: dict[str, Any] = {
                "version": task["version"],
                "archived": task.get("archived_at") is None,
            }
        elif (task.get("description") or "").startswith("# chaos"):
            patch = {"version": task["version"], "title": f"{task['title'][:40]} h{e.at:.1f}"}
        else:
            patch = {
                "version": task["version"],
                "title": f"hive edit {e.at:.2f}",
                "description": f"edited on the hive at {e.at:.2f}",
            }
        updated = api.patch(f"/tasks/{task_id}", json=patch)
        return f"{task_id} -> v{updated['version']}"

    def _node_workload(self, e: Event) -> str:
        node = self.node(e.target)
        assert node.api is not None
        if e.kind == "node_create":
            made = node.api.post(
                "/tasks",
                json={
                    "project_id": node.project_id,
                    "title": f"{node.name} task {len(node.local_tasks) + 1}",
                    "description": f"made on {node.name} at {e.at:.2f}",
                },
            )
            node.local_tasks.append(made["id"])
            return f"local {made['id']}"
        # node_edit
        choice = e.args["field"]
        body: dict[str, Any]
        if choice == "hive_copy":
            copies = node.process.sql(
                "SELECT id FROM tasks WHERE shared_task_id IS NOT NULL AND project_id = ? "
                "ORDER BY id",
                uuid.UUID(node.project_id),
            )
            task_id = self._pick([str(r["id"]) for r in copies], e.args["pick"])
            body = {"title": f"{node.name} edit {e.at:.2f}"}
        else:
            task_id = self._pick(node.local_tasks, e.args["pick"])
            if choice == "status":
                current = node.api.get(f"/tasks/{task_id}")["status"] if task_id else "todo"
                nxt = {"todo": "inprogress", "inprogress": "inreview", "inreview": "done"}
                body = {"status": nxt.get(current, "todo")}
            else:
                body = {choice: f"{node.name} {choice} {e.at:.2f}"}
        if task_id is None:
            return "no task"
        node.api.patch(f"/tasks/{task_id}", json=body)
        return f"{task_id} {body}"

    # -- the end of the schedule --

    def heal_all(self) -> None:
        for node in self.nodes:
            for proxy in self._links(node):
                self.proxies.call(proxy.heal)
                self.proxies.call(functools.partial(proxy.set_delay, 0.0))
        for hive in self.hives:
            if not hive.process.alive:
                hive.process.start()
        for node in self.nodes:
            if not node.process.alive:
                node.process.start()
        self.note("healed: every link forwards, every process runs")

    def pending(self) -> str:
        """What keeps the system from being quiescent (empty when it is)."""
        waiting = []
        for node in self.nodes:
            status = node.process.link_status()
            if status["state"] != "connected":
                waiting.append(f"{node.name} link {status['state']}")
            unacked = node.process.sql(
                "SELECT count(*) AS n FROM node_outbox WHERE acked_at IS NULL"
            )
            if unacked[0]["n"]:
                waiting.append(f"{node.name} outbox {unacked[0]['n']} unacked")
            running = node.process.sql(
                "SELECT count(*) AS n FROM execution_processes WHERE status = 'running'"
            )
            if running[0]["n"]:
                waiting.append(f"{node.name} {running[0]['n']} running processes")
        active = self.hive.sql(
            "SELECT count(*) AS n FROM node_task_assignments WHERE completed_at IS NULL"
        )
        if active[0]["n"]:
            waiting.append(f"hive {active[0]['n']} active assignments")
        latest = self.hive.sql(
            "SELECT COALESCE(max(seq), 0) AS s FROM activity WHERE project_id = $1",
            uuid.UUID(self.swarm_project_id),
        )[0]["s"]
        for node in self.nodes:
            rows = node.process.sql(
                "SELECT last_seq FROM shared_activity_cursors WHERE remote_project_id = ?",
                uuid.UUID(self.swarm_project_id),
            )
            seen = rows[0]["last_seq"] if rows else 0
            if seen != latest:
                waiting.append(f"{node.name} cursor {seen} < {latest}")
        return "; ".join(waiting)

    def quiesce(self, timeout: float, stable_s: float = 2.0) -> str:
        """Wait until nothing is pending and stays so for ``stable_s`` (a reconnect's digest
        pull or activity replay can still be landing right after the first quiet look)."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while True:
            left = self.pending()
            now = time.monotonic()
            if left:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= stable_s:
                break
            if now > deadline:
                break
            time.sleep(0.2)
        self.note(f"quiescent: {not left} {left}")
        return left

    def force_digests(self) -> dict[str, dict[str, Any] | None]:
        """Reset each node's link; the node's digest on reconnect is answered by the hive; the
        answer is read from the node's log (``digest.result``)."""
        marks = {n.name: n.process.log_path.stat().st_size for n in self.nodes}
        for node in self.nodes:
            for proxy in self._links(node):
                self.proxies.call(functools.partial(proxy.cut, "reset"))
                self.proxies.call(proxy.heal)
        results: dict[str, dict[str, Any] | None] = {}
        for node in self.nodes:

            def seen(node: _Node = node) -> dict[str, Any] | None:
                with node.process.log_path.open("rb") as f:
                    f.seek(marks[node.name])
                    lines = f.read().decode(errors="replace").splitlines()
                for line in lines:
                    if '"digest.result"' in line:
                        with contextlib.suppress(ValueError):
                            data: dict[str, Any] = json.loads(line)
                            return data
                return None

            try:
                results[node.name] = wait_until(seen, timeout=15, what=f"{node.name} digest")
            except AssertionError:
                results[node.name] = None
        self.note(f"digest exchanges: {results}")
        return results

    def collect(self, quiescence: str, digests: dict[str, dict[str, Any] | None]) -> Observation:
        states = []
        op_log: dict[str, list[OpLogRow]] = {}
        rows = self.hive.sql(
            "SELECT node_id::text, idempotency_key, seq, op_type, entity_id::text, reject_code, "
            "fencing_token, extract(epoch FROM applied_at)::float8 AS at FROM node_op_log "
            "ORDER BY node_id, seq"
        )
        resolved = self._op_tasks()
        for node in self.nodes:
            outbox = [
                OutboxRow(
                    seq=r["seq"],
                    key=r["idempotency_key"],
                    op_type=r["op_type"],
                    entity_id=str(r["entity_id"]),
                    acked=r["acked_at"] is not None,
                    rejected=r["rejected_at"] is not None,
                    reject_code=r["reject_code"],
                )
                for r in node.process.sql(
                    "SELECT seq, idempotency_key, op_type, entity_id, acked_at, rejected_at, "
                    "reject_code FROM node_outbox ORDER BY seq"
                )
            ]
            tasks = [
                LocalTask(
                    id=str(r["id"]),
                    shared_task_id=str(r["shared_task_id"]) if r["shared_task_id"] else None,
                    title=r["title"],
                    description=r["description"],
                    status=r["status"],
                    remote_version=r["remote_version"],
                    archived=r["archived_at"] is not None,
                )
                for r in node.process.sql(
                    "SELECT id, shared_task_id, title, description, status, remote_version, "
                    "archived_at FROM tasks"
                )
            ]
            local_to_shared = {t.id: t.shared_task_id for t in tasks}
            states.append(NodeState(node.name, node.node_id, outbox, tasks, digests[node.name]))
            op_log[node.node_id] = []
            for r in rows:
                if r["node_id"] != node.node_id:
                    continue
                task_id = resolved.get((r["op_type"], r["entity_id"]))
                if r["op_type"] == "task.upsert" and task_id is None:
                    task_id = local_to_shared.get(r["entity_id"])
                op_log[node.node_id].append(
                    OpLogRow(
                        r["idempotency_key"],
                        r["seq"],
                        r["op_type"],
                        r["entity_id"],
                        r["at"],
                        task_id,
                        r["reject_code"],
                        r["fencing_token"],
                    )
                )
        leases = [
            Lease(
                id=r["assignment_id"],
                task_id=r["task_id"],
                node_id=r["holder"],
                token=r["fencing_token"],
                assigned_at=r["granted"],
                completed_at=r["ended"],
            )
            for r in self.hive.sql(
                "SELECT assignment_id::text, task_id::text, holder_node_id::text AS holder, "
                "fencing_token, extract(epoch FROM granted_at)::float8 AS granted, "
                "extract(epoch FROM ended_at)::float8 AS ended FROM node_lease_tokens "
                "WHERE holder_node_id IS NOT NULL"
            )
        ]
        hive_tasks = [
            HiveTask(
                id=r["id"],
                title=r["title"],
                description=r["description"],
                status=r["status"],
                version=r["version"],
                archived=r["archived_at"] is not None,
                deleted=r["deleted_at"] is not None,
                owner_node_id=r["owner"],
                source_node_id=r["source"],
                source_task_id=r["source_task"],
            )
            for r in self.hive.sql(
                "SELECT id::text, title, description, status::text, version, archived_at, "
                "deleted_at, owner_node_id::text AS owner, source_node_id::text AS source, "
                "source_task_id::text AS source_task FROM shared_tasks WHERE swarm_project_id = $1",
                uuid.UUID(self.swarm_project_id),
            )
        ]
        runs = read_runs(self.evidence, {n.name: n.process.data_dir for n in self.nodes})
        return Observation(states, op_log, leases, hive_tasks, runs, quiescence)

    def _op_tasks(self) -> dict[tuple[str, str], str]:
        """(op type, entity id) → shared task id, for every op type whose entity the hive
        stores (a node's ``task.upsert`` of its own task resolves by source task id)."""
        resolved: dict[tuple[str, str], str] = {}
        queries = {
            "task.upsert": "SELECT source_task_id::text AS e, id::text AS t FROM shared_tasks "
            "WHERE source_task_id IS NOT NULL",
            "attempt.upsert": "SELECT id::text AS e, shared_task_id::text AS t "
            "FROM node_task_attempts",
            "execution.upsert": "SELECT p.id::text AS e, a.shared_task_id::text AS t "
            "FROM node_execution_processes p JOIN node_task_attempts a ON a.id = p.attempt_id",
            "assignment.status": "SELECT id::text AS e, task_id::text AS t "
            "FROM node_task_assignments",
        }
        for op_type, query in queries.items():
            for r in self.hive.sql(query):
                resolved[(op_type, r["e"])] = r["t"]
        for (op_type, entity), task in list(resolved.items()):
            if op_type == "execution.upsert":
                resolved[("logs.append", entity)] = task
        return resolved


def run_schedule(
    seed: int,
    dsn: str,
    workdir: Path,
    *,
    duration: float = 12.0,
    nodes: int | None = None,
    hives: int = 1,
    keep: bool = False,
    quiesce_timeout: float = 45.0,
) -> ScheduleResult:
    """Run the schedule of ``seed`` with ``hives`` hive processes on the empty migrated database
    ``dsn`` and check it. The schedule's directory is removed when it passed (unless ``keep``)."""
    started = time.monotonic()
    schedule = _Schedule(seed, dsn, workdir, duration, nodes, hives)
    violations: list[Violation] = []
    error = ""
    try:
        schedule.start()
        schedule.run_events()
        schedule.heal_all()
        pending = schedule.quiesce(quiesce_timeout)
        digests = schedule.force_digests()
        if not pending:
            # The digest exchange may have pulled a repair; let it land before reading the stores.
            pending = schedule.quiesce(10)
        observation = schedule.collect(pending, digests)
        violations = check(observation)
        (workdir / "observation.json").write_text(
            json.dumps(asdict(observation), indent=1, default=str)
        )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        schedule.note(f"harness error: {error}")
    finally:
        leftovers = schedule.close()
        if leftovers:
            violations.append(Violation("leftover", f"processes left behind: {leftovers}"))
    result = ScheduleResult(
        seed=seed,
        violations=violations,
        events=schedule.log,
        workdir=workdir,
        elapsed_s=time.monotonic() - started,
        stats=schedule.stats,
        error=error,
    )
    if result.ok and not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def format_failure(
    result: ScheduleResult, duration: float, nodes: int | None, hives: int = 1
) -> str:
    """The report of a failed schedule: seed, replay command, violations, events, log dir."""
    lines = [
        f"chaos schedule seed={result.seed} FAILED ({result.elapsed_s:.1f}s)",
        f"  replay: {replay_command(result.seed, duration, nodes, hives)}",
        f"  logs:   {result.workdir}",
    ]
    if result.error:
        lines.append(f"  harness error: {result.error}")
    lines += [f"  violation: {v}" for v in result.violations]
    lines.append("  events (seconds since start):")
    lines += [f"    {line}" for line in result.events]
    return "\n".join(lines)


def migrated_template(factory: Any) -> str:
    """Create and migrate a template database with ``factory`` (a ``DatabaseFactory``); its
    name."""
    from support.hive_db import _make_template

    return str(asyncio.run(_make_template(factory)))


def drop_database(factory: Any, dsn: str) -> None:
    """Drop one database a ``DatabaseFactory`` made (a long run does not keep hundreds)."""
    name = dsn.rsplit("/", 1)[-1].split("?", 1)[0]

    async def drop() -> None:
        conn = await asyncpg.connect(factory.server.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())
    with contextlib.suppress(ValueError):
        factory._created.remove(name)


def summarize(results: Iterable[ScheduleResult]) -> dict[str, Any]:
    done = list(results)
    kinds: dict[str, int] = {}
    for r in done:
        for v in r.violations:
            kinds[v.kind] = kinds.get(v.kind, 0) + 1
    return {
        "schedules": len(done),
        "failed": sum(1 for r in done if not r.ok),
        "violations": kinds,
        "harness_errors": sum(1 for r in done if r.error),
        "events": sum(sum(r.stats.values()) for r in done),
    }
