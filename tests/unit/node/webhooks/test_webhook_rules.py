"""Webhook rules without I/O: the retry schedule, payload templates, signatures, URL and header
checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from support.webhook_receiver import verify_signature
from vk_node.errors import Unprocessable
from vk_node.webhooks import rules, schedule, sender, template
from vk_node.webhooks.payload import PLACEHOLDERS, encode_body, sample_body

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_default_schedule_tries_four_times_within_about_a_minute() -> None:
    """Tries at 0, +5 s, +15 s, +40 s after each failure; then none (the delivery fails)."""
    delays = (5.0, 15.0, 40.0)
    assert schedule.max_attempts(delays) == 4
    assert schedule.next_attempt_at(1, T0, delays) == T0 + timedelta(seconds=5)
    assert schedule.next_attempt_at(2, T0, delays) == T0 + timedelta(seconds=15)
    assert schedule.next_attempt_at(3, T0, delays) == T0 + timedelta(seconds=40)
    assert schedule.next_attempt_at(4, T0, delays) is None
    assert schedule.next_attempt_at(1, T0, ()) is None
    with pytest.raises(ValueError, match="starts at 1"):
        schedule.next_attempt_at(0, T0, delays)


def test_a_template_renders_values_as_json_never_as_code() -> None:
    """A whole-string placeholder keeps the value's JSON type; inside text it is the value's
    text, so quotes and braces in a value stay inside their string; missing values are null."""
    parsed = template.check(
        '{"text": "{{task.title}} finished: {{status}}", "code": "{{process.exit_code}}",'
        ' "task": "{{task}}", "list": ["{{ status }}", 1, null]}',
        PLACEHOLDERS,
    )
    values = template.flatten(
        {
            "status": "failed",
            "task": {"title": 'evil", "x": {{status}} \\', "id": 1},
            "process": {"exit_code": 3},
        }
    )
    out = template.render(parsed, values)
    assert out == {
        "text": 'evil", "x": {{status}} \\ finished: failed',
        "code": 3,
        "task": {"title": 'evil", "x": {{status}} \\', "id": 1},
        "list": ["failed", 1, None],
    }
    assert template.render("{{nope}}", {}) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not JSON"),
        ('{"a": "{{task.nope}}"}', "unknown placeholder {{task.nope}}"),
        ('{"a": "{{__class__}}"}', "unknown placeholder"),
        ("[" * 40 + "]" * 40, "deeper than"),
        ('"' + "x" * 20_000 + '"', "larger than"),
    ],
)
def test_a_bad_template_is_refused_with_a_reason(text: str, says: str) -> None:
    """Not JSON, unknown placeholders, too deep or too large: 422 naming the problem."""
    with pytest.raises(Unprocessable) as refused:
        template.check(text, PLACEHOLDERS)
    assert says in refused.value.detail


def test_every_field_of_the_default_body_is_a_placeholder() -> None:
    """The placeholders are the default body's fields by dotted path, objects included."""
    body = json.loads(encode_body(sample_body(UUID(int=1), occurred_at=T0, node_name="n"), None))
    assert set(template.flatten(body)) == PLACEHOLDERS
    assert {"task.title", "status", "process.exit_code", "project.name", "task"} <= PLACEHOLDERS


def test_the_signature_is_the_hmac_sha256_of_the_raw_body() -> None:
    """``sha256=`` + hex HMAC-SHA256 (RFC 4231 test case 2), and a receiver's check agrees."""
    body = b"what do ya want for nothing?"
    assert sender.signature(body, "Jefe") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert verify_signature(body, "Jefe", sender.signature(body, "Jefe"))
    assert not verify_signature(body + b" ", "Jefe", sender.signature(body, "Jefe"))


def test_headers_carry_event_delivery_and_signature_only_with_a_secret() -> None:
    """X-VK-Event and X-VK-Delivery always; X-VK-Signature only when a secret is set."""
    delivery = UUID(int=7)
    signed = sender.request_headers(
        event="executor_finish", delivery_id=delivery, body=b"{}", secret="s", custom={"A": "b"}
    )
    assert signed["X-VK-Event"] == "executor_finish"
    assert signed["X-VK-Delivery"] == str(delivery)
    assert signed["X-VK-Signature"] == sender.signature(b"{}", "s")
    assert signed["A"] == "b"
    plain = sender.request_headers(
        event="test", delivery_id=delivery, body=b"{}", secret=None, custom={}
    )
    assert "X-VK-Signature" not in plain


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "http://user:pw@example.com/",
        "http:///nohost",
        "http://example.com:0/",
        "http://example.com:99999/",
        "file:///etc/passwd",
    ],
)
def test_urls_other_than_http_with_a_host_are_refused(url: str) -> None:
    """Only absolute http(s) URLs with a host, a valid port and no user info."""
    with pytest.raises(Unprocessable):
        rules.check_url(url)


def test_http_and_https_urls_pass() -> None:
    """Plain http(s) URLs, with ports, paths and queries, pass (internal hosts included)."""
    for url in ("http://127.0.0.1:8080/hook?x=1", "https://hooks.example.com/a/b", "HTTP://h/"):
        rules.check_url(url)


@pytest.mark.parametrize("name", ["Host", "content-type", "X-VK-Signature", "x-vk-anything"])
def test_headers_the_node_sets_cannot_be_overridden(name: str) -> None:
    """Framing headers, Content-Type and every X-VK-* name are reserved."""
    with pytest.raises(Unprocessable):
        rules.check_headers({name: "v"})
    rules.check_headers({"Authorization": "Bearer t", "X-Team": "a"})
