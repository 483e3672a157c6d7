"""Malformed frames raise ProtocolError and nothing else, naming the offending field."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vk_shared.codec import (
    Codec,
    ProtocolError,
    _decode,
    decode_hive_message,
    decode_node_message,
)
from vk_shared.protocol import MAX_FRAME_BYTES, MAX_TEXT_LENGTH
from vk_shared.wire import HIVE_MESSAGE_TYPES, NODE_MESSAGE_TYPES

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wire"
Decoder = Callable[..., Any]
DECODERS: list[Decoder] = [decode_node_message, decode_hive_message]
MESSAGE_TYPES = (*NODE_MESSAGE_TYPES, *HIVE_MESSAGE_TYPES)
OP_BATCH = json.loads((FIXTURES / "node" / "op_batch.json").read_text())
HEARTBEAT = {"type": "heartbeat", "status": "online", "running": 0, "capacity": 1}


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _expect_error(decode: Decoder, data: Any, *, binary: bool) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(data, binary=binary)
    return info.value


def _with(obj: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(obj))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


def _without(obj: dict[str, Any], path: list[Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(obj))
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copy


def test_wrong_type_names_the_field_path() -> None:
    """A string where an int belongs is reported with msgspec's message and JSON path."""
    bad = _with(OP_BATCH, ["ops", 0, "seq"], "41")
    error = _expect_error(decode_node_message, _json(bad), binary=False)
    assert "Expected `int`, got `str` - at `$.ops[0].seq`" in str(error)
    assert error.path == "$.ops[0].seq"
    error = _expect_error(decode_node_message, msgspec.msgpack.encode(bad), binary=True)
    assert error.path == "$.ops[0].seq"


@pytest.mark.parametrize(
    ("frame", "path", "needle"),
    [
        ({"type": "teleport"}, "$.type", "Invalid value 'teleport'"),
        ({"status": "online"}, None, "missing required field `type`"),
        (_without(HEARTBEAT, ["capacity"]), None, "missing required field `capacity`"),
        (_with(HEARTBEAT, ["running"], -1), "$.running", ">= 0"),
        (_with(HEARTBEAT, ["status"], "asleep"), "$.status", "Invalid enum value"),
        (_with(OP_BATCH, ["ops"], []), "$.ops", "length >= 1"),
        (
            _with(OP_BATCH, ["ops", 0, "payload", "op_type"], "task.delete"),
            "$.ops[0].payload.op_type",
            "Invalid value",
        ),
        (
            _with(OP_BATCH, ["ops", 0, "payload", "created_at"], "2025-03-14T09:01:00"),
            "$.ops[0].payload.created_at",
            "timezone",
        ),
        (
            _with(OP_BATCH, ["ops", 0, "entity_id"], "not-a-uuid"),
            "$.ops[0].entity_id",
            "Invalid UUID",
        ),
        (
            _with(OP_BATCH, ["ops", 2, "payload", "status"], "inprogress"),
            "$.ops[2].payload.status",
            "Invalid enum value",
        ),
        (
            _with(OP_BATCH, ["ops", 3, "payload", "first_log_id"], 500),
            "$.ops[3].payload",
            "first_log_id must not exceed last_log_id",
        ),
        (
            {"type": "deregister", "reason": "x" * (MAX_TEXT_LENGTH + 1)},
            "$.reason",
            f"length <= {MAX_TEXT_LENGTH}",
        ),
        ([HEARTBEAT], None, "Expected `object`, got `array`"),
        ("heartbeat", None, "Expected `object`, got `str`"),
    ],
)
def test_invalid_messages_raise_protocol_error_naming_the_problem(
    frame: Any, path: str | None, needle: str
) -> None:
    """Unknown tags, missing fields, bad values and oversized strings fail in both formats."""
    for data, binary in ((_json(frame), False), (msgspec.msgpack.encode(frame), True)):
        error = _expect_error(decode_node_message, data, binary=binary)
        assert needle in str(error)
        assert error.path == path


def test_hive_decoder_rejects_node_messages() -> None:
    """A node message is not a hive message (the unions do not overlap)."""
    error = _expect_error(decode_hive_message, _json(HEARTBEAT), binary=False)
    assert error.path == "$.type"


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("binary", [False, True])
def test_oversized_frames_are_rejected_before_decoding(decode: Decoder, binary: bool) -> None:
    """A frame over MAX_FRAME_BYTES fails with code frame_too_large, for bytes and text."""
    huge = b"[" + b" " * MAX_FRAME_BYTES + b"]"
    assert _expect_error(decode, huge, binary=binary).code == "frame_too_large"
    assert _expect_error(decode, memoryview(huge), binary=binary).code == "frame_too_large"
    if not binary:
        assert _expect_error(decode, huge.decode(), binary=False).code == "frame_too_large"
        # Fewer characters than the limit but more bytes once encoded.
        wide = "€" * (MAX_FRAME_BYTES // 2)
        assert _expect_error(decode, wide, binary=False).code == "frame_too_large"


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("binary", [False, True])
def test_a_megabyte_of_random_bytes_is_a_protocol_error(decode: Decoder, binary: bool) -> None:
    """1 MiB of random bytes is rejected as malformed, whatever the format."""
    for _ in range(3):
        _expect_error(decode, os.urandom(1 << 20), binary=binary)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b'{"type": "heartbeat", "status": "onl',
        b"\xff\xfe\x00",
        b'{"type": "deregister", "reason": "\xc3\x28"}',
        b"null",
        b"{}",
        b'{"type": 7}',
    ],
)
def test_truncated_and_invalid_json_is_a_protocol_error(data: bytes) -> None:
    """Empty, truncated, non-UTF-8 and non-message JSON fails with ProtocolError."""
    for decode in DECODERS:
        _expect_error(decode, data, binary=False)


@pytest.mark.parametrize("cut", [1, 10, 100, 500, -200, -1])
def test_truncated_valid_frames_are_a_protocol_error(cut: int) -> None:
    """Cutting a real frame short fails in both formats."""
    text = _json(OP_BATCH)
    packed = msgspec.msgpack.encode(OP_BATCH)
    _expect_error(decode_node_message, text[:cut], binary=False)
    _expect_error(decode_node_message, packed[:cut], binary=True)


def test_lone_surrogates_in_text_frames_are_a_protocol_error() -> None:
    """A text frame that cannot be UTF-8 encoded is rejected, not crashed on."""
    _expect_error(decode_node_message, '{"type": "deregister", "reason": "\ud800"}', binary=False)


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDBFF", "\\udc00"])
def test_lone_surrogate_escapes_are_named(escape: str) -> None:
    """A JSON ``\\ud800`` escape without its partner is named as such (msgspec alone may call
    the frame truncated)."""
    for decode, frame in (
        (decode_node_message, {"type": "deregister", "reason": "@@"}),
        (decode_hive_message, {"type": "error", "code": "x", "message": "@@"}),
    ):
        error = _expect_error(decode, json.dumps(frame).replace("@@", escape), binary=False)
        assert error.code == "malformed_frame"
        assert f"lone UTF-16 surrogate {escape}" in str(error), error


def _nested(depth: int, *, binary: bool) -> bytes:
    return b"\x91" * depth + b"\xc0" if binary else b"[" * depth + b"]" * depth


def _nested_in(frame: dict[str, Any], depth: int, *, binary: bool) -> bytes:
    """``frame`` with the value ``"@@"`` replaced by arrays nested ``depth`` deep."""
    if binary:
        return msgspec.msgpack.encode(frame).replace(b"\xa2@@", _nested(depth, binary=True))
    return _json(frame).replace(b'"@@"', _nested(depth, binary=False))


@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
def test_deeply_nested_input_is_a_protocol_error(depth: int) -> None:
    """Deep nesting, at the top or inside a free-form payload or an unknown field, in either
    format and direction, never escapes as RecursionError: where the decoder has to descend
    into it, it is a malformed_frame naming the nesting."""
    activity = json.loads((FIXTURES / "hive" / "activity.json").read_text())
    for binary in (False, True):
        for decode in DECODERS:
            _expect_error(decode, _nested(depth, binary=binary), binary=binary)
        if depth <= 1000:
            continue
        for decode, frame in (
            (decode_hive_message, {**activity, "payload": {"x": "@@"}}),
            (decode_node_message, {**HEARTBEAT, "future": "@@"}),
        ):
            error = _expect_error(decode, _nested_in(frame, depth, binary=binary), binary=binary)
            assert error.code == "malformed_frame"
            assert "nested too deeply" in str(error), error


class _Odd:
    """A type only a decode hook can make."""


class _OddFrame(msgspec.Struct):
    odd: _Odd


def _failing_hook(kind: type, value: Any) -> Any:
    raise KeyError("no such thing")


def test_any_other_decoder_exception_is_a_protocol_error() -> None:
    """An exception msgspec passes through from decoding (here a hook's KeyError) becomes a
    malformed_frame ProtocolError naming it, in both formats."""
    for decoder, data, binary in (
        (msgspec.json.Decoder(_OddFrame, dec_hook=_failing_hook), b'{"odd": 1}', False),
        (
            msgspec.msgpack.Decoder(_OddFrame, dec_hook=_failing_hook),
            msgspec.msgpack.encode({"odd": 1}),
            True,
        ),
    ):
        with pytest.raises(ProtocolError) as info:
            _decode(decoder, data, binary=binary, what="test frame")
        assert info.value.code == "malformed_frame"
        assert "KeyError" in str(info.value)
        assert "no such thing" in str(info.value)


def test_frame_kind_must_match_the_format() -> None:
    """A text frame on the msgpack subprotocol, or a non-frame object, is a ProtocolError."""
    _expect_error(decode_node_message, json.dumps(HEARTBEAT), binary=True)
    _expect_error(decode_node_message, 12345, binary=False)
    with pytest.raises(ProtocolError) as info:
        Codec.for_subprotocol("vk.v2")
    assert info.value.code == "protocol_version"


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    """A newer peer's extra fields do not break decoding (unknown tags still do)."""
    frame = {**HEARTBEAT, "cpu_usage": 42, "future": {"nested": [1, 2]}}
    decoded = decode_node_message(_json(frame), binary=False)
    assert decoded == decode_node_message(_json(HEARTBEAT), binary=False)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(max_size=2048), binary=st.booleans())
def test_random_bytes_never_raise_anything_but_protocol_error(data: bytes, binary: bool) -> None:
    """Arbitrary bytes either decode to a message or raise ProtocolError."""
    for decode in DECODERS:
        with contextlib.suppress(ProtocolError):
            assert isinstance(decode(data, binary=binary), MESSAGE_TYPES)


@FUZZ
@given(text=st.text(max_size=512))
def test_random_text_never_raises_anything_but_protocol_error(text: str) -> None:
    """Arbitrary text frames either decode to a message or raise ProtocolError."""
    for decode in DECODERS:
        with contextlib.suppress(ProtocolError):
            assert isinstance(decode(text, binary=False), MESSAGE_TYPES)


@FUZZ
@given(data=st.data())
def test_mutated_real_frames_never_raise_anything_but_protocol_error(data: st.DataObject) -> None:
    """Flipping, dropping or inserting bytes in real frames yields a message or ProtocolError."""
    frame = data.draw(st.sampled_from(sorted(FIXTURES.rglob("*.json"))))
    obj = json.loads(frame.read_text())
    binary = data.draw(st.booleans())
    raw = bytearray(msgspec.msgpack.encode(obj) if binary else _json(obj))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif action == "drop":
            del raw[pos]
        else:
            raw.insert(pos, data.draw(st.integers(0, 255)))
    decode = decode_node_message if frame.parent.name == "node" else decode_hive_message
    with contextlib.suppress(ProtocolError):
        assert isinstance(decode(bytes(raw), binary=binary), MESSAGE_TYPES)
