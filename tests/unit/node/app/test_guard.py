"""The node API's access policy decided without I/O: allowed hosts, cross-site requests, the
token and JSON bodies (vk_node.api.guard)."""

from __future__ import annotations

from typing import Any

import pytest

from vk_node.api.guard import (
    AccessPolicy,
    Refusal,
    is_loopback_host,
    require_token_when_exposed,
    token_subprotocol,
)
from vk_node.settings import SettingsError, load_settings

TOKEN = "t0ken-0123456789abcdef"


def policy(**overrides: Any) -> AccessPolicy:
    return AccessPolicy.from_settings(load_settings(env={}, overrides=overrides).settings)


def check(
    p: AccessPolicy,
    method: str = "GET",
    path: str = "/api/projects",
    websocket: bool = False,
    **headers: str | list[str],
) -> Refusal | None:
    named = {"host": "127.0.0.1:3000", **headers}
    lists = {
        name.replace("_", "-").lower(): value if isinstance(value, list) else [value]
        for name, value in named.items()
    }
    lists = {name: value for name, value in lists.items() if value != ["<none>"]}
    return p.check(method=method, path=path, headers=lists, websocket=websocket)


def status(refusal: Refusal | None) -> int | None:
    return None if refusal is None else refusal.status


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST:3000",
        "app.localhost:8080",
        "127.0.0.1",
        "127.0.0.1:3000",
        "127.9.8.7:1",
        "[::1]",
        "[::1]:3000",
        "[0:0:0:0:0:0:0:1]:3000",
    ],
)
def test_loopback_hosts_are_served(host: str) -> None:
    """Every loopback name and address, with any port, passes the host check."""
    assert check(policy(), host=host) is None


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:3000",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "0.0.0.0:3000",
        "192.168.1.10:3000",
        "[::ffff:7f00:1]:3000",
        "localhost:99999",
        "localhost:3000:3000",
        "local host",
        "user@localhost",
        "",
    ],
)
def test_other_hosts_are_misdirected(host: str) -> None:
    """A Host naming anything but a loopback host (or a malformed one) is a 421 naming it."""
    refusal = check(policy(), host=host)
    assert refusal is not None
    assert refusal.status == 421
    assert "not served by this node" in refusal.detail


def test_a_missing_or_repeated_host_is_misdirected() -> None:
    """No Host header at all, or two of them, is a 421."""
    assert status(check(policy(), host="<none>")) == 421
    assert status(check(policy(), host=["localhost", "evil.example"])) == 421


def test_the_public_url_host_and_a_specific_bind_address_are_served() -> None:
    """The host of VK_NODE_PUBLIC_URL (any port, any case) and a specific VK_NODE_HOST are served;
    a wildcard bind address is not a host name."""
    p = policy(public_url="https://Node.Example.com:8443/base", host="10.1.2.3", api_token=TOKEN)
    for host in ("node.example.com", "NODE.example.com:443", "10.1.2.3:3000"):
        assert status(check(p, host=host, authorization=f"Bearer {TOKEN}")) is None, host
    assert status(check(p, host="other.example.com")) == 421
    wildcard = policy(host="0.0.0.0", api_token=TOKEN)
    assert status(check(wildcard, host="0.0.0.0:3000")) == 421
    assert status(check(policy(host="::", api_token=TOKEN), host="[::]:3000")) == 421


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://localhost.evil.example:3000"},
        {"origin": "not a url"},
        {"referer": "https://evil.example/page"},
        {"sec_fetch_site": "cross-site"},
        {"origin": "http://localhost:3000", "sec_fetch_site": "cross-site"},
    ],
)
def test_state_changing_cross_site_requests_are_forbidden(
    method: str, headers: dict[str, str]
) -> None:
    """A foreign or null Origin, a foreign Referer without Origin, or Sec-Fetch-Site: cross-site
    make a state-changing request a 403."""
    refusal = check(policy(), method=method, **headers)
    assert refusal is not None
    assert refusal.status == 403
    assert "Cross-site request refused" in refusal.detail


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"origin": "http://localhost:5173"},
        {"origin": "http://127.0.0.1:3000", "referer": "https://evil.example/"},
        {"referer": "http://[::1]:3000/board"},
        {"sec_fetch_site": "same-origin"},
    ],
)
def test_local_and_header_less_writes_pass(headers: dict[str, str]) -> None:
    """Writes without Origin and Referer (curl, the CLI) or from a loopback origin pass; Origin,
    when present, decides over Referer."""
    assert check(policy(), method="POST", content_length="0", **headers) is None


def test_reads_are_not_cross_site_checked_but_websockets_are() -> None:
    """A GET with a foreign Origin passes (the Host check stops rebinding); a WebSocket handshake
    with one is a 403."""
    assert check(policy(), origin="http://evil.example") is None
    path = "/api/execution-processes/x/logs/ws"
    assert status(check(policy(), path=path, websocket=True, origin="http://evil.example")) == 403
    assert check(policy(), path=path, websocket=True, origin="http://localhost:3000") is None


def test_without_a_token_setting_no_authorization_is_needed() -> None:
    """A loopback node without VK_NODE_API_TOKEN asks for no Authorization header."""
    assert check(policy(), method="POST", content_length="0") is None


@pytest.mark.parametrize(
    "authorization",
    ["<none>", "", "Bearer", "Bearer wrong-token-0123456789", f"Basic {TOKEN}", TOKEN],
)
def test_a_missing_or_wrong_token_is_unauthorized(authorization: str) -> None:
    """With a token set, a request without the right Bearer token is a 401 with a
    WWW-Authenticate: Bearer challenge."""
    refusal = check(policy(api_token=TOKEN), authorization=authorization)
    assert refusal is not None
    assert refusal.status == 401
    assert dict(refusal.headers)["www-authenticate"].startswith("Bearer")
    assert TOKEN not in refusal.detail


def test_the_right_token_passes_and_health_needs_none() -> None:
    """The right Bearer token (any scheme case) passes, on HTTP and WebSocket; GET /api/health and
    paths outside /api need none."""
    p = policy(api_token=TOKEN)
    assert check(p, authorization=f"Bearer {TOKEN}") is None
    assert check(p, authorization=f"bearer  {TOKEN}") is None
    assert check(p, path="/api/health") is None
    assert check(p, path="/schema") is None
    assert status(check(p, method="POST", path="/api/health", content_length="0")) == 401
    ws = "/api/execution-processes/x/logs/ws"
    assert status(check(p, path=ws, websocket=True)) == 401
    assert check(p, path=ws, websocket=True, authorization=f"Bearer {TOKEN}") is None


def test_a_websocket_handshake_may_carry_the_token_as_a_subprotocol() -> None:
    """A browser's handshake offering ``vk-logs, vk-token.<base64url(token)>`` passes; so does a
    token holding characters a subprotocol may not (``/+=,;"``), encoded."""
    ws = "/api/execution-processes/x/logs/ws"
    for token in (TOKEN, 'abc/def+ghi=jkl,mn;o"p'):
        p = policy(api_token=token)
        offered = f"vk-logs, {token_subprotocol(token)}"
        assert check(p, path=ws, websocket=True, sec_websocket_protocol=offered) is None
        assert token_subprotocol(token)[len("vk-token.") :].isascii()
        assert "=" not in token_subprotocol(token)
        assert "/" not in token_subprotocol(token)


@pytest.mark.parametrize(
    "offered",
    [
        "vk-logs",
        "vk-logs, vk-token.",
        f"vk-logs, vk-token.{TOKEN}",  # the raw token, not its encoding
        "vk-logs, " + token_subprotocol(TOKEN + "x"),
        "vk-logs, " + token_subprotocol(TOKEN)[:-1],
        # the right value offered twice, or beside a wrong one: refused, not guessed
        f"{token_subprotocol(TOKEN)}, {token_subprotocol(TOKEN)}",
        f"{token_subprotocol('nope')}, {token_subprotocol(TOKEN)}",
    ],
)
def test_a_wrong_or_ambiguous_subprotocol_token_is_unauthorized(offered: str) -> None:
    """A missing, wrong, unencoded, cut or doubled ``vk-token.`` subprotocol is a 401."""
    p = policy(api_token=TOKEN)
    ws = "/api/execution-processes/x/logs/ws"
    assert status(check(p, path=ws, websocket=True, sec_websocket_protocol=offered)) == 401


def test_the_subprotocol_token_opens_websockets_only() -> None:
    """An HTTP request carrying the token in Sec-WebSocket-Protocol (no Authorization) is a 401:
    the header is a WebSocket handshake's, never a substitute for Bearer on the REST API."""
    p = policy(api_token=TOKEN)
    header = f"vk-logs, {token_subprotocol(TOKEN)}"
    assert status(check(p, sec_websocket_protocol=header)) == 401
    assert status(check(p, method="POST", content_length="0", sec_websocket_protocol=header)) == 401


def test_a_websocket_from_a_foreign_origin_is_refused_even_with_the_token() -> None:
    """The subprotocol token does not lift the cross-site check: a foreign Origin is a 403."""
    p = policy(api_token=TOKEN)
    ws = "/api/execution-processes/x/logs/ws"
    header = f"vk-logs, {token_subprotocol(TOKEN)}"
    refusal = check(
        p, path=ws, websocket=True, sec_websocket_protocol=header, origin="https://evil.example"
    )
    assert status(refusal) == 403


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", None),
        ("Application/JSON; charset=utf-8", None),
        ("application/merge-patch+json", None),
        ("text/plain", 415),
        ("text/plain;charset=UTF-8", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("<none>", 415),
        ("+json", 415),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_api_bodies_must_be_json(method: str, content_type: str, expected: int | None) -> None:
    """An /api POST/PUT/PATCH with a body is a 415 unless its Content-Type is JSON."""
    refusal = check(policy(), method=method, content_type=content_type, content_length="12")
    assert status(refusal) == expected
    chunked = check(policy(), method=method, content_type=content_type, transfer_encoding="chunked")
    assert status(chunked) == expected


def test_empty_bodies_and_other_methods_need_no_content_type() -> None:
    """A POST without a body, a DELETE and a path outside /api are not content-type checked."""
    assert check(policy(), method="POST", content_type="text/plain", content_length="0") is None
    assert check(policy(), method="POST", content_length="0") is None
    assert check(policy(), method="DELETE", content_type="text/plain", content_length="3") is None
    assert check(policy(), method="POST", path="/other", content_type="text/plain") is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("node.lan", False),
    ],
)
def test_loopback_bind_addresses(host: str, loopback: bool) -> None:
    """Which bind addresses count as loopback."""
    assert is_loopback_host(host) is loopback


def test_a_non_loopback_bind_needs_a_token() -> None:
    """A node listening on 0.0.0.0 or a LAN address without VK_NODE_API_TOKEN is a settings error
    naming the setting; with a token, or on loopback, it is fine."""
    for host in ("0.0.0.0", "192.168.1.10", "::"):
        settings = load_settings(env={}, overrides={"host": host}).settings
        with pytest.raises(SettingsError, match="VK_NODE_API_TOKEN is required"):
            require_token_when_exposed(settings)
        with_token = load_settings(env={}, overrides={"host": host, "api_token": TOKEN}).settings
        require_token_when_exposed(with_token)
    for host in ("127.0.0.1", "localhost", "::1"):
        require_token_when_exposed(load_settings(env={}, overrides={"host": host}).settings)
