"""The uvicorn configuration of ``vk-node serve``: uvloop and the httptools HTTP parser (both
node dependencies on CPython), loopback by default, no access log."""

from __future__ import annotations

from pathlib import Path

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from vk_node.cli import _graceful_server
from vk_node.settings import NodeSettings


def test_serve_runs_on_uvloop_with_the_httptools_parser(tmp_path: Path) -> None:
    server = _graceful_server(NodeSettings(data_dir=str(tmp_path)))
    assert isinstance(server, uvicorn.Server)
    config = server.config
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    assert config.loop == "auto"
    assert (config.host, config.access_log) == ("127.0.0.1", False)
