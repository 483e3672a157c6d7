"""One run of a command: a process group in the worktree, its output captured line by line.

Output is read as it arrives, split into lines (very long lines into pieces), queued in a bounded
queue (when it is full the pipe readers wait, so a chatty process is slowed down, never
truncated) and written to ``log_entries`` in batches, one transaction per batch. Each line is also
fed to the profile's parser; its entries become ``json_patch`` rows and the agent's session id is
stored as soon as it is seen.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar
from uuid import UUID

import msgspec
import structlog

from vk_node.executor import procfs
from vk_node.executor.profiles.base import CommandSpec, OutputParser, Stream
from vk_node.settings import NodeSettings
from vk_node.store import Store
from vk_node.store.repositories import executor_sessions as sessions_repo
from vk_node.store.repositories import log_entries as logs_repo

__all__ = ["ProcessRun", "RunOutcome", "SpawnError"]

log = structlog.get_logger("vk_node.executor.process")

_READ_CHUNK = 64 * 1024
_Item = tuple[Stream, str] | None


class SpawnError(Exception):
    """The command could not be started (missing executable, bad cwd, …)."""

    def __init__(self, message: str, *, missing_executable: bool = False) -> None:
        super().__init__(message)
        self.missing_executable = missing_executable


class RunOutcome(msgspec.Struct, frozen=True, kw_only=True):
    exit_code: int | None
    """The process's exit status (negative: killed by that signal)."""
    stopped: bool
    """Stopped on request (:meth:`ProcessRun.stop`)."""
    result: Literal["success", "error"] | None
    summary: str | None
    session_id: str | None


class ProcessRun:
    """Spawn once with :meth:`start`, then :meth:`wait` for the outcome; :meth:`stop` any time."""

    def __init__(
        self,
        *,
        store: Store,
        settings: NodeSettings,
        execution_id: UUID,
        spec: CommandSpec,
        cwd: Path,
        env: dict[str, str],
        parser: OutputParser,
        on_flush: Callable[[UUID], None] = lambda _: None,
        record_session: bool = False,
    ) -> None:
        self.store = store
        self.settings = settings
        self.execution_id = execution_id
        self.spec = spec
        self.cwd = cwd
        self.env = env
        self.parser = parser
        self.on_flush = on_flush
        self.record_session = record_session
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.start_ticks: int | None = None
        self.stopped = False
        self._stop_lock = asyncio.Lock()
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=settings.log_queue_lines)
        self._tasks: list[asyncio.Task[None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._session_seen: str | None = None
        self.lines_captured = 0
        self._queued = 0  # lines the pipe readers have queued (their progress after an exit)
        """Output lines of the process captured so far (for the metrics)."""

    # --- start -----------------------------------------------------------------------------

    async def start(self) -> int:
        """Spawn in a new session (so the run is its own process group); returns the pid."""
        argv = self.spec.argv
        if not argv:
            raise SpawnError("empty command")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=str(self.cwd),
                env=self.env,
                stdin=(
                    asyncio.subprocess.PIPE
                    if self.spec.stdin is not None
                    else asyncio.subprocess.DEVNULL
                ),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            missing = exc.filename in (argv[0], None) or not self.cwd.is_dir()
            if not self.cwd.is_dir():
                raise SpawnError(f"the worktree {self.cwd} does not exist") from None
            raise SpawnError(
                f"executable not found: {argv[0]!r} (is it installed and on PATH?)",
                missing_executable=missing,
            ) from None
        except OSError as exc:
            raise SpawnError(f"could not start {argv[0]!r}: {exc.strerror or exc}") from None
        self.proc = proc
        self.pid = proc.pid
        # Already reaped (a very short run)? Then no start time: recovery never needs it.
        stat = procfs.read_stat(proc.pid)
        ours = stat is not None and stat.ppid == os.getpid()
        self.start_ticks = stat.start_ticks if stat is not None and ours else None
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._tasks = [
            asyncio.create_task(self._read("stdout", proc.stdout)),
            asyncio.create_task(self._read("stderr", proc.stderr)),
        ]
        if self.spec.stdin is not None:
            self._tasks.append(asyncio.create_task(self._feed_stdin(self.spec.stdin)))
        self._writer = asyncio.create_task(self._write())
        return proc.pid

    async def _feed_stdin(self, text: str) -> None:
        assert self.proc is not None
        assert self.proc.stdin is not None
        stdin = self.proc.stdin
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.write(text.encode())
            await stdin.drain()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()

    # --- output ----------------------------------------------------------------------------

    async def _read(self, stream: Stream, reader: asyncio.StreamReader) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        limit = self.settings.log_max_line_chars
        pending = ""
        while True:
            chunk = await reader.read(_READ_CHUNK)
            final = not chunk
            pending += decoder.decode(chunk, final=final)
            *lines, pending = pending.split("\n")
            for line in lines:
                await self._put_line(stream, line, limit)
            while len(pending) > limit:
                await self._queue.put((stream, pending[:limit]))
                self._queued += 1
                pending = pending[limit:]
            if final:
                if pending:
                    await self._put_line(stream, pending, limit)
                return

    async def _put_line(self, stream: Stream, line: str, limit: int) -> None:
        if line.endswith("\r"):
            line = line[:-1]
        if len(line) <= limit:
            await self._queue.put((stream, line))
            self._queued += 1
            return
        for start in range(0, len(line), limit):
            await self._queue.put((stream, line[start : start + limit]))
            self._queued += 1

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        size = self.settings.log_batch_lines
        interval = self.settings.log_batch_interval_s
        done = False
        while not done:
            item = await self._queue.get()
            if item is None:
                break
            batch: list[tuple[Stream, str]] = [item]
            deadline = loop.time() + interval
            while len(batch) < size:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                if item is None:
                    done = True
                    break
                batch.append(item)
            await self._flush(batch)

    async def _flush(self, batch: list[tuple[Stream, str]]) -> None:
        self.lines_captured += len(batch)
        rows: list[tuple[str, str]] = []
        for stream, line in batch:
            rows.append((stream, line))
            try:
                entries = self.parser.feed(stream, line)
            except Exception:
                log.exception("parser.failed", execution_id=str(self.execution_id))
                entries = []
            rows.extend(("json_patch", json.dumps(msgspec.to_builtins(e))) for e in entries)
        session = self._parser_session()
        new_session = session if session and session != self._session_seen else None
        for attempt in range(5):
            try:
                async with self.store.transaction() as conn:
                    await logs_repo.append_many(conn, self.execution_id, rows)
                    if new_session is not None and self.record_session:
                        await sessions_repo.update_session_id(conn, self.execution_id, new_session)
                break
            except Exception as exc:  # SQLITE_BUSY and friends: retry a few times
                if attempt == 4 or "locked" not in str(exc):
                    log.exception("logs.write_failed", execution_id=str(self.execution_id))
                    break
                await asyncio.sleep(0.05 * (attempt + 1))
        if new_session is not None:
            self._session_seen = new_session
        self.on_flush(self.execution_id)

    def _parser_result(self) -> Literal["success", "error"] | None:
        try:
            return self.parser.result
        except Exception:
            return None

    def _parser_session(self) -> str | None:
        try:
            return self.parser.session_id
        except Exception:
            return None

    # --- exit and stop ---------------------------------------------------------------------

    async def wait(self) -> RunOutcome:
        """Wait for the main process to exit, drain its output (lingering members of its
        process group are killed after ``exit_drain_s``), flush the logs."""
        assert self.proc is not None
        assert self._writer is not None
        code = await self.proc.wait()
        readers = [t for t in self._tasks]
        _, pending = await asyncio.wait(readers, timeout=self.settings.exit_drain_s)
        self._kill_leftovers()
        # Keep draining while the readers make progress (a flood may still sit in the pipe,
        # waiting for the log writer); give up only when nothing arrived for a whole grace
        # period: then a process outside the group holds the pipe open.
        grace = max(1.0, self.settings.exit_drain_s)
        while pending:
            before = self._queued
            _, pending = await asyncio.wait(pending, timeout=grace)
            if pending and self._queued == before:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                break
        await self._queue.put(None)
        await self._writer
        return RunOutcome(
            exit_code=code,
            stopped=self.stopped,
            result=self._parser_result(),
            summary=_safe(lambda: self.parser.summary),
            session_id=self._parser_session(),
        )

    def _kill_leftovers(self) -> None:
        if self.pid is not None:
            procfs.signal_group(self.pid, signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM to the process group (and every descendant seen now), SIGKILL after the grace
        period, then SIGKILL the group again once the main process is gone."""
        async with self._stop_lock:
            self.stopped = True
            proc = self.proc
            if proc is None or self.pid is None:
                return
            if proc.returncode is None:
                tree = procfs.descendants(self.pid)
                procfs.signal_group(self.pid, signal.SIGTERM)
                procfs.signal_pids(tree, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(proc.wait()), self.settings.stop_grace_s)
                tree += procfs.descendants(self.pid)
                procfs.signal_group(self.pid, signal.SIGKILL)
                procfs.signal_pids(tree, signal.SIGKILL)
                await proc.wait()
            self._kill_leftovers()


_T = TypeVar("_T")


def _safe(fn: Callable[[], _T]) -> _T | None:
    try:
        return fn()
    except Exception:
        return None
