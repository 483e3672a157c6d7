"""The uvicorn configuration of ``vk-hive serve`` (vk_hive.server), built from settings."""

from __future__ import annotations

from litestar import Litestar

from vk_hive.server import (
    WS_MAX_FRAME_BYTES,
    CoalescingWebSocketsProtocol,
    TimedH11Protocol,
    uvicorn_config,
)
from vk_hive.settings import load_settings
from vk_shared.protocol import MAX_FRAME_BYTES


def test_serve_caps_frames_near_the_protocol_limit_and_times_out_slow_requests() -> None:
    """Frames are capped at the protocol limit plus 64 KiB (not uvicorn's 16 MiB), with the
    sans-I/O websockets implementation (writes coalesced) and no compression; HTTP uses the
    timed h11 protocol with the settings' timeouts; forwarded headers are trusted from the
    configured proxies."""
    settings = load_settings(
        env={
            "VK_HIVE_HEADER_TIMEOUT_S": "3",
            "VK_HIVE_BODY_TIMEOUT_S": "7",
            "VK_HIVE_FORWARDED_ALLOW_IPS": "10.0.0.2",
        }
    )
    config = uvicorn_config(Litestar(), settings)
    assert WS_MAX_FRAME_BYTES == MAX_FRAME_BYTES + 64 * 1024
    assert config.ws_max_size == WS_MAX_FRAME_BYTES
    assert config.ws is CoalescingWebSocketsProtocol
    assert config.ws_per_message_deflate is False
    assert config.forwarded_allow_ips == "10.0.0.2"
    assert isinstance(config.http, type)
    assert issubclass(config.http, TimedH11Protocol)
    assert (config.http.header_timeout_s, config.http.body_timeout_s) == (3.0, 7.0)
