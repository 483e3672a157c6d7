"""``vk-hive serve --workers N``: N hive processes serving one listening socket.

The parent binds the port once, then forks the workers; each accepts connections on the shared
socket (the kernel hands every new connection to one of them). Each worker is a whole hive — its
own database pool, LISTEN connection, node and browser sessions, metrics — and the workers work
together exactly as separate ``vk-hive serve`` processes over one database do: one of them leads
(sweepers, maintenance), lease decisions and node events travel through PostgreSQL.

The parent only supervises: a worker that dies is started again after a second (its nodes
reconnect, through the shared port, to the workers still running); SIGTERM or SIGINT stops every
worker (each closes its sessions and finishes its lifespan) and the parent exits once they have.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.process
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

import structlog

__all__ = ["serve_workers"]

log = structlog.get_logger("vk_hive.workers")

RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 30.0
_POLL_S = 0.2


def serve_workers(count: int, sock: socket.socket, run: Callable[[socket.socket], None]) -> None:
    """Run ``run(sock)`` in ``count`` forked processes until SIGTERM/SIGINT; restart those that
    die meanwhile."""
    context = multiprocessing.get_context("fork")
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    workers: list[multiprocessing.process.BaseProcess | None] = [None] * count
    restart_at = [0.0] * count

    def start(index: int) -> None:
        proc = context.Process(target=_worker, args=(run, sock), name=f"vk-hive-worker-{index}")
        proc.start()
        workers[index] = proc
        log.info("workers.started", worker=index, pid=proc.pid)

    try:
        for index in range(count):
            start(index)
        while not stopping:
            time.sleep(_POLL_S)
            now = time.monotonic()
            for index, proc in enumerate(workers):
                if proc is not None and not proc.is_alive():
                    log.warning("workers.exited", worker=index, pid=proc.pid, code=proc.exitcode)
                    workers[index] = None
                    restart_at[index] = now + RESTART_DELAY_S
                elif proc is None and now >= restart_at[index] and not stopping:
                    start(index)
    finally:
        _stop_all([w for w in workers if w is not None])
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        log.info("workers.stopped")


def _worker(run: Callable[[socket.socket], None], sock: socket.socket) -> None:
    # The parent's handlers were inherited: give the server its default signal behaviour back.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        run(sock)


def _stop_all(workers: list[multiprocessing.process.BaseProcess]) -> None:
    for proc in workers:
        if proc.is_alive():
            proc.terminate()  # SIGTERM: uvicorn shuts down gracefully
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for proc in workers:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            log.warning("workers.killed", pid=proc.pid)
            proc.kill()
            proc.join(5)
