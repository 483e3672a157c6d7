"""A small real HTTP server that receives webhook deliveries, for tests.

It listens on ``127.0.0.1`` (a given port, so a test can start it where a node already sends),
records every request (path, headers, raw body), and answers each with the next status of
``statuses`` (then ``default_status``); ``delay_s`` holds answers back (a slow endpoint), and
:meth:`Receiver.stop` releases held answers at once. It runs in a thread, so both async tests
(``await asyncio.to_thread(receiver.wait_for, n)``) and process tests can use it.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Received", "Receiver", "verify_signature"]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes


def verify_signature(body: bytes, secret: str, header: str) -> bool:
    """Whether ``header`` is ``sha256=<hex HMAC-SHA256 of body keyed with secret>`` (how a
    receiver checks ``X-VK-Signature``)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


class Receiver:
    def __init__(
        self,
        port: int = 0,
        *,
        statuses: list[int] | None = None,
        default_status: int = 200,
        delay_s: float = 0.0,
    ) -> None:
        self.port = port
        self.statuses = list(statuses or [])
        self.default_status = default_status
        self.delay_s = delay_s
        self.received: list[Received] = []
        self._changed = threading.Condition()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._changed:
                    receiver.received.append(
                        Received(
                            "POST",
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    status = (
                        receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                    )
                    receiver._changed.notify_all()
                if receiver.delay_s:
                    receiver._released.wait(receiver.delay_s)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, within_s: float = 20.0) -> list[Received]:
        """The first ``count`` requests, once they arrived (AssertionError after ``within_s``)."""
        deadline = time.monotonic() + within_s
        with self._changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} of {count} requests arrived")
                self._changed.wait(left)
            return list(self.received[:count])

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
