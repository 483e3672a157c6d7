"""The node address and display detection of ``vk-node tasks``/``open`` (no I/O)."""

from __future__ import annotations

import pytest

from vk_node.cli_tasks import has_display, node_url
from vk_node.settings import NodeSettings


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:3000"),
        ("0.0.0.0", "http://127.0.0.1:3000"),
        ("::", "http://[::1]:3000"),
        ("::1", "http://[::1]:3000"),
        ("192.168.1.5", "http://192.168.1.5:3000"),
        ("localhost", "http://localhost:3000"),
    ],
)
def test_node_url_reaches_wildcard_binds_on_the_loopback(host: str, url: str) -> None:
    assert node_url(NodeSettings(host=host, port=3000)) == url


def test_display_comes_from_display_or_wayland(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    assert not has_display({})
    assert not has_display({"DISPLAY": ""})
    assert has_display({"DISPLAY": ":0"})
    assert has_display({"WAYLAND_DISPLAY": "wayland-0"})
    monkeypatch.setattr("sys.platform", "darwin")
    assert has_display({})
