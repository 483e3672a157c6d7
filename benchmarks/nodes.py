"""Simulated nodes for the benchmarks: real node stores and the REAL hive link, many per process.

A node here is what ``vk-node serve`` runs minus the HTTP API and the executor's runs: its own
SQLite file (:class:`vk_node.store.Store`, migrated), a local project linked to the swarm
project, and :class:`vk_node.link.HiveLink` over a real WebSocket to the hive. Writes go through
the node's repositories, so each one appends its outbox op in the same transaction, and the
link's sender streams them exactly as in production.

One event loop cannot hold hundreds of links at full speed, so a :class:`Fleet` spreads the nodes
over several worker processes (``multiprocessing`` spawn). The parent sends a command to every
worker (``await fleet.call("name", ...)``); each worker runs it on all of its nodes at once and
answers with a picklable result. Timestamps are ``time.monotonic()``, which is one clock for
every process of the machine, so the parent can compare them with its own.

Measurement hooks (no product code changes):

* ``op_ack``: the link's ack handler is wrapped to note when the ack for each written seq
  arrived (before the local ack transaction runs);
* ``task_assign``: the assignment manager's handler is replaced by a recorder (no attempt is
  started: the benchmark measures delivery, not the executor).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import sys
import time
import traceback
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .schedule import open_loop

__all__ = ["Fleet", "NodeSpec"]

SWITCH_INTERVAL_S = 0.0005
"""GIL switch interval of a worker: many nodes share one process here, and each SQLite statement
hops between the event loop and an aiosqlite thread; with the default 5 ms a hop waits for the
busy loop thread to give up the GIL, a cost a one-node process does not pay at that scale."""


@dataclass(frozen=True)
class NodeSpec:
    index: int
    api_key: str
    data_dir: str
    swarm_project_id: str
    """The swarm project its local project links (one per node keeps activity fan-out out of a
    benchmark; a shared one makes every task event go to every node)."""


# --- worker side ---------------------------------------------------------------------------------


@dataclass
class _SimNode:
    spec: NodeSpec
    store: Any
    settings: Any
    project_id: uuid.UUID
    link: Any = None
    task_ids: list[uuid.UUID] = field(default_factory=list)
    pending: deque[tuple[int, float]] = field(default_factory=deque)
    latencies: list[float] = field(default_factory=list)
    record_after: float = 0.0
    assigns: dict[str, float] = field(default_factory=dict)
    write_latencies: list[float] = field(default_factory=list)


class _Worker:
    def __init__(self) -> None:
        self.nodes: list[_SimNode] = []

    async def setup(
        self, hive_urls: list[str], specs: list[NodeSpec], overrides: dict[str, Any]
    ) -> int:
        from vk_node.services.projects import link_project
        from vk_node.settings import load_settings
        from vk_node.store import Store
        from vk_node.store.repositories import projects as projects_repo

        async def one(spec: NodeSpec) -> _SimNode:
            base: dict[str, Any] = {
                "data_dir": spec.data_dir,
                "hive_url": hive_urls[spec.index % len(hive_urls)],
                "api_key": spec.api_key,
                "name": f"bench-node-{spec.index}",
                "machine_id": f"bench-machine-{spec.index}-{uuid.uuid4().hex[:8]}",
                "executors": "SCRIPT",
                "link_backoff_initial_s": 0.2,
                "link_backoff_max_s": 2.0,
                "link_auth_timeout_s": 60.0,
                "link_open_timeout_s": 60.0,
                "worktree_orphan_cleanup": False,
            }
            base.update(overrides)
            settings = load_settings(env={}, overrides=base).settings
            store = await Store.open(settings.db_path)
            project_id = uuid.uuid4()
            async with store.transaction() as conn:
                await projects_repo.create(
                    conn, project_id, name=f"bench-{spec.index}", git_repo_path=spec.data_dir
                )
            await link_project(store, project_id, uuid.UUID(spec.swarm_project_id))
            return _SimNode(spec=spec, store=store, settings=settings, project_id=project_id)

        sem = asyncio.Semaphore(32)

        async def bounded(spec: NodeSpec) -> _SimNode:
            async with sem:
                return await one(spec)

        self.nodes = list(await asyncio.gather(*(bounded(s) for s in specs)))
        return len(self.nodes)

    # --- pre-filled outboxes ------------------------------------------------------------------

    async def prefill_tasks(self, per_node: int, chunk: int = 500) -> int:
        """``per_node`` new tasks per node, each with its ``task.upsert`` op (chunked writes)."""
        from vk_node.store.repositories import tasks as tasks_repo

        async def fill(node: _SimNode) -> int:
            done = 0
            while done < per_node:
                n = min(chunk, per_node - done)
                async with node.store.transaction() as conn:
                    for i in range(n):
                        task_id = uuid.uuid4()
                        await tasks_repo.create(
                            conn,
                            task_id,
                            project_id=node.project_id,
                            title=f"bench task {node.spec.index}-{done + i}",
                            description="a benchmark task with a short description",
                        )
                        node.task_ids.append(task_id)
                done += n
            return done

        return sum(await asyncio.gather(*(fill(n) for n in self.nodes)))

    async def prefill_logs(self, per_node: int, line_bytes: int = 80) -> int:
        """One task → attempt → running execution per node, then ``per_node`` stdout lines in
        chunks of the executor's batch size (one ``logs.append`` op per chunk)."""
        from vk_node.store.repositories import execution_processes as processes_repo
        from vk_node.store.repositories import log_entries as logs_repo
        from vk_node.store.repositories import task_attempts as attempts_repo
        from vk_node.store.repositories import tasks as tasks_repo

        async def fill(node: _SimNode) -> int:
            task_id, attempt_id, process_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            async with node.store.transaction() as conn:
                await tasks_repo.create(
                    conn, task_id, project_id=node.project_id, title="chatty", description="x"
                )
                await attempts_repo.create(
                    conn,
                    attempt_id,
                    task_id=task_id,
                    executor="SCRIPT",
                    base_branch="main",
                    branch=f"vk/bench-{node.spec.index}",
                )
                await processes_repo.create(
                    conn,
                    process_id,
                    task_attempt_id=attempt_id,
                    run_reason="codingagent",
                    executor_action={"typ": {"type": "ScriptRequest"}},
                )
            batch = node.settings.log_batch_lines
            pad = "x" * max(0, line_bytes - 24)
            done = 0
            while done < per_node:
                async with node.store.transaction() as conn:
                    for _ in range(10):
                        n = min(batch, per_node - done)
                        if n <= 0:
                            break
                        lines = [("stdout", f"line {done + i:>10} {pad}") for i in range(n)]
                        await logs_repo.append_many(conn, process_id, lines)
                        done += n
            return done

        return sum(await asyncio.gather(*(fill(n) for n in self.nodes)))

    # --- links ---------------------------------------------------------------------------------

    async def start_links(self) -> int:
        from vk_node.executor.service import ExecutorService
        from vk_node.link import HiveLink

        for node in self.nodes:
            executor = ExecutorService(node.store, node.settings)  # never started: no runs
            link = HiveLink(node.store, node.settings, executor)
            _hook_acks(node, link)
            _hook_assigns(node, link)
            node.link = link
        await asyncio.gather(*(n.link.start() for n in self.nodes))
        return len(self.nodes)

    async def wait_connected(self, within: float) -> int:
        async def one(node: _SimNode) -> bool:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(node.link.connected.wait(), within)
            return node.link.connected.is_set()

        return sum(await asyncio.gather(*(one(n) for n in self.nodes)))

    async def connected(self) -> int:
        return sum(1 for n in self.nodes if n.link is not None and n.link.connected.is_set())

    async def backlog(self) -> int:
        from vk_node.store import outbox

        total = 0
        for node in self.nodes:
            async with node.store.read() as conn:
                total += await outbox.backlog_count(conn)
        return total

    async def sessions(self) -> int:
        return sum(n.link.stats.sessions for n in self.nodes if n.link is not None)

    # --- offered load --------------------------------------------------------------------------

    async def load(self, rate: float, duration: float, warmup: float) -> dict[str, Any]:
        """Each node updates one of its tasks ``rate`` times a second (open loop: a late write
        is not skipped) for ``duration`` seconds; returns write→op_ack latencies (seconds) of
        the writes after ``warmup`` and how many writes never got their ack."""
        start = time.monotonic() + 0.05
        for node in self.nodes:
            node.record_after = start + warmup
            node.latencies.clear()

        async def write(node: _SimNode, k: int) -> None:
            seq = await _update_task(node, k, f"bench task {node.spec.index} v{k}")
            node.pending.append((seq, time.monotonic()))

        writes = await open_loop(self.nodes, rate, duration, start, write)
        elapsed = time.monotonic() - start
        deadline = time.monotonic() + 30.0
        while any(n.pending for n in self.nodes) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        latencies = [x for n in self.nodes for x in n.latencies]
        return {
            "writes": sum(writes),
            "elapsed": elapsed,
            "unacked": sum(len(n.pending) for n in self.nodes),
            "latencies": latencies,
        }

    async def local_writes(self, count: int) -> list[float]:
        """Sequential durable writes on the first node (a task update and its outbox op in one
        ``store.write()`` transaction); their latencies in seconds."""
        node = self.nodes[0]
        out: list[float] = []
        for k in range(count):
            t0 = time.perf_counter()
            await _update_task(node, k, f"local write {k}")
            out.append(time.perf_counter() - t0)
        return out

    async def log_capture(self, lines: int, within: float) -> dict[str, Any]:
        """One SCRIPT run on the first node whose process prints ``lines`` lines as fast as it
        can; the executor captures them into ``log_entries`` (with their ``logs.append`` ops).
        Returns the seconds from the run's start to the last line committed."""
        from support.cluster import make_demo_repo
        from vk_node.executor.service import ExecutorService
        from vk_node.store.repositories import projects as projects_repo
        from vk_node.store.repositories import tasks as tasks_repo
        from vk_node.store.sql import fetch_value

        node = self.nodes[0]
        node.settings.worktrees_dir.mkdir(parents=True, exist_ok=True)
        repo = make_demo_repo(Path(node.spec.data_dir) / "repo")
        executor = ExecutorService(node.store, node.settings)
        await executor.start()
        await executor.ready.wait()
        try:
            project_id, task_id = uuid.uuid4(), uuid.uuid4()
            script = (
                'python3 -c "import sys\nw = sys.stdout.write\n'
                f"for i in range({int(lines)}): w('log line %10d of a chatty process\\n' % i)\""
            )
            async with node.store.transaction() as conn:
                await projects_repo.create(conn, project_id, name="chatty", git_repo_path=str(repo))
                await tasks_repo.create(
                    conn, task_id, project_id=project_id, title="chatty", description=script
                )
            attempt = await executor.create_attempt(
                task_id=task_id, executor="SCRIPT", base_branch="main"
            )
            started = time.monotonic()
            count = 0
            deadline = started + within
            while time.monotonic() < deadline:
                async with node.store.read() as conn:
                    count = int(
                        await fetch_value(
                            conn,
                            """SELECT count(*) FROM log_entries l
                               JOIN execution_processes e ON e.id = l.execution_id
                               WHERE e.task_attempt_id = ? AND l.output_type = 'stdout'""",
                            (attempt.id.bytes,),
                        )
                    )
                if count >= lines:
                    break
                await asyncio.sleep(0.01)
            return {"seconds": time.monotonic() - started, "lines": count}
        finally:
            await executor.close()

    async def assigns(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for node in self.nodes:
            out.update(node.assigns)
        return out

    async def stop(self) -> int:
        async def one(node: _SimNode) -> None:
            if node.link is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(node.link.close(), 10)
            with contextlib.suppress(Exception):
                await node.store.close()

        await asyncio.gather(*(one(n) for n in self.nodes))
        count = len(self.nodes)
        self.nodes = []
        return count


async def _update_task(node: _SimNode, k: int, title: str) -> int:
    """One durable local write: update task ``k`` (round robin) and append its ``task.upsert``
    in one transaction; the op's seq."""
    from vk_node.store import outbox
    from vk_node.store.repositories import tasks as tasks_repo
    from vk_shared.status import NodeTaskStatus

    async def body(conn: Any) -> int:
        await tasks_repo.update(
            conn,
            node.task_ids[k % len(node.task_ids)],
            title=title,
            description="updated by the benchmark",
            status=NodeTaskStatus.TODO,
            parent_task_id=None,
        )
        return await outbox.last_seq(conn)

    # One transaction, one round trip to the store's writer thread (Store.write).
    result: int = await node.store.write(body)
    return result


def _hook_acks(node: _SimNode, link: Any) -> None:
    """Wrap the link's ack handler (``Acks.on_ack``; the ``op_ack`` message is its last
    argument)."""
    original: Callable[..., Awaitable[None]] = link.acks.on_ack

    async def on_ack(*args: Any) -> None:
        through = int(args[-1].applied_through_seq)
        now = time.monotonic()
        pending = node.pending
        while pending and pending[0][0] <= through:
            _, written = pending.popleft()
            if written >= node.record_after:
                node.latencies.append(now - written)
        await original(*args)

    link.acks.on_ack = on_ack


def _hook_assigns(node: _SimNode, link: Any) -> None:
    async def on_task_assign(msg: Any) -> None:
        node.assigns[str(msg.task_id)] = time.monotonic()

    link.assignments.on_task_assign = on_task_assign


def _worker_main(conn: multiprocessing.connection.Connection, log_path: str, mode: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    if mode == "hive":
        import uvloop

        from .simnode import SimWorker

        # No SQLite threads here: one loop, uvloop to keep the load generator cheap.
        uvloop.run(_serve(conn, SimWorker()))
        return
    from vk_node.logging import configure_logging

    configure_logging("json", "info")
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    asyncio.run(_serve(conn, _Worker()))


async def _serve(conn: multiprocessing.connection.Connection, worker: Any) -> None:
    loop = asyncio.get_running_loop()
    while True:
        request = await loop.run_in_executor(None, conn.recv)
        if request is None:
            await worker.stop()
            return
        name, kwargs = request
        try:
            result: Any = await getattr(worker, name)(**kwargs)
            conn.send(("ok", result))
        except Exception:
            conn.send(("error", traceback.format_exc()))


# --- parent side ---------------------------------------------------------------------------------


class Fleet:
    """``workers`` processes of simulated nodes: real links and stores (``mode="e2e"``, see the
    module docstring) or protocol-only nodes (``mode="hive"``, :mod:`benchmarks.simnode`)."""

    def __init__(self, workers: int, workdir: Path, mode: str = "e2e") -> None:
        if mode not in ("e2e", "hive"):
            raise ValueError(f"unknown fleet mode {mode!r}")
        self.size = workers
        self.workdir = workdir
        self.mode = mode
        self._conns: list[multiprocessing.connection.Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self.pids: list[int] = []

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for i in range(self.size):
            parent, child = ctx.Pipe()
            log_path = str(self.workdir / f"nodes-{i}.log")
            proc = ctx.Process(target=_worker_main, args=(child, log_path, self.mode), daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
            self.pids.append(int(proc.pid or 0))

    async def call(
        self, name: str, per_worker: list[dict[str, Any]] | None = None, **common: Any
    ) -> list[Any]:
        """Run ``name`` on every worker at once; their results in worker order."""
        for i, conn in enumerate(self._conns):
            kwargs = dict(common)
            if per_worker is not None:
                kwargs.update(per_worker[i])
            conn.send((name, kwargs))
        loop = asyncio.get_running_loop()
        replies = await asyncio.gather(
            *(loop.run_in_executor(None, conn.recv) for conn in self._conns)
        )
        results: list[Any] = []
        for status, value in replies:
            if status != "ok":
                raise RuntimeError(f"node worker failed in {name}:\n{value}")
            results.append(value)
        return results

    async def setup(
        self,
        hive_url: str | Sequence[str],
        specs: list[NodeSpec],
        overrides: dict[str, Any] | None = None,
    ) -> None:
        """Give each worker its share of ``specs``; node ``i`` links to ``hive_url[i % n]``
        when several hive processes serve the database."""
        urls = [hive_url] if isinstance(hive_url, str) else list(hive_url)
        groups: list[list[NodeSpec]] = [[] for _ in range(self.size)]
        for i, spec in enumerate(specs):
            groups[i % self.size].append(spec)
        await self.call(
            "setup",
            per_worker=[{"specs": g} for g in groups],
            hive_urls=urls,
            overrides=overrides or {},
        )

    async def total(self, name: str, **kwargs: Any) -> int:
        return sum(await self.call(name, **kwargs))

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for conn in self._conns:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(None)
        for proc in self._procs:
            await loop.run_in_executor(None, proc.join, 30)
            if proc.is_alive():
                proc.terminate()
                await loop.run_in_executor(None, proc.join, 5)
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []
