"""A real ``vk-node serve`` guards its API on the wire: it will not listen beyond loopback without
a token, answers requests for foreign or missing Host names with 421, and refuses WebSocket
handshakes without the token or from a foreign origin before accepting them."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

TOKEN = "e2e-node-token-0123456789abcdef"


def _raw_http(port: int, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send ``request`` as is on a fresh connection; the status code and the JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_serve_will_not_listen_beyond_loopback_without_a_token(
    vk_node_cli: Any, tmp_path: Path
) -> None:
    """`vk-node serve` with VK_NODE_HOST=0.0.0.0 and no token exits 2 with one line naming
    VK_NODE_API_TOKEN, binds nothing and creates no data dir."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = tmp_path / "node"
    result = vk_node_cli(["serve"], data, {"VK_NODE_HOST": "0.0.0.0", "VK_NODE_PORT": str(port)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "VK_NODE_API_TOKEN is required" in result.stderr
    assert not data.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_foreign_and_missing_hosts_are_misdirected(start_node: Any, tmp_path: Path) -> None:
    """On real sockets a request naming a foreign Host, or an HTTP/1.0 request with none, gets a
    JSON 421; a loopback Host is served."""
    node = start_node(tmp_path / "node")
    status, body = _raw_http(
        node.port, b"GET /api/health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    assert (status, body["status"], body["code"]) == (421, 421, "misdirected_request")
    assert "evil.example" in body["detail"]
    status, body = _raw_http(node.port, b"GET /api/health HTTP/1.0\r\n\r\n")
    assert (status, body["status"], body["code"]) == (421, 421, "misdirected_request")
    status, body = _raw_http(
        node.port, b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    assert (status, body["status"]) == (200, "ok")


def test_log_websocket_needs_the_token_and_a_local_origin(start_node: Any, tmp_path: Path) -> None:
    """With a token set, the log WebSocket handshake without it is a 401 and one from a foreign
    origin a 403, both before the socket is accepted; with the token it is served (an unknown
    process closes with 4404). Plain requests need the token as well; health does not."""
    node = start_node(tmp_path / "node", {"VK_NODE_API_TOKEN": TOKEN})
    url = node.url.replace("http", "ws") + f"/api/execution-processes/{uuid.uuid4()}/logs/ws"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with pytest.raises(InvalidStatus) as missing:
        connect(url, open_timeout=10)
    assert missing.value.response.status_code == 401
    assert missing.value.response.headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(InvalidStatus) as foreign:
        connect(url, open_timeout=10, origin="http://evil.example", additional_headers=bearer)
    assert foreign.value.response.status_code == 403
    assert b"Cross-site request refused" in foreign.value.response.body
    with connect(url, open_timeout=10, additional_headers=bearer) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4404

    assert httpx.get(node.url + "/api/projects", timeout=10).status_code == 401
    assert httpx.get(node.url + "/api/projects", headers=bearer, timeout=10).status_code == 200
    assert httpx.get(node.url + "/api/health", timeout=10).status_code == 200
