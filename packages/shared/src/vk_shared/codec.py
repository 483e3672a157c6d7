"""Encoding and decoding of control-channel frames, JSON (``vk.v1``) or msgpack (``vk.v1.msgpack``).

Decoding never raises anything but :class:`ProtocolError` (code ``malformed_frame`` unless said
otherwise) for bad input: oversized frames (checked before parsing), malformed or truncated data,
invalid UTF-8, lone surrogate escapes, unknown tags, missing or mistyped fields, constraint
violations, input nested too deeply (msgspec's ``RecursionError``) and any other exception the
decoder raises. One decoder per union and format is built at import time and reused.
"""

from __future__ import annotations

import re
from typing import Final, TypeAlias, TypeVar

import msgspec

from vk_shared.jsoncheck import lone_surrogate
from vk_shared.protocol import (
    MAX_FRAME_BYTES,
    MAX_USER_FRAME_BYTES,
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
)
from vk_shared.wire import (
    HiveMessage,
    NodeMessage,
    UserClientMessage,
    UserServerMessage,
    WireStruct,
)

__all__ = [
    "Codec",
    "Frame",
    "ProtocolError",
    "decode_hive_message",
    "decode_node_message",
    "decode_user_client_message",
    "decode_user_server_message",
    "encode_json",
    "encode_msgpack",
]

Frame: TypeAlias = bytes | bytearray | memoryview | str
"""What a WebSocket library hands over: ``str`` for text frames, bytes-like for binary ones."""

_T = TypeVar("_T")
_PATH = re.compile(r" - at `(\$[^`]*)`$")


class ProtocolError(Exception):
    """A frame that is not a valid message. ``code`` is an ``ErrorCode`` value, ``path`` the
    offending field (``$.ops[0].seq``) when known."""

    def __init__(self, message: str, *, code: str = "malformed_frame", path: str | None = None):
        super().__init__(message)
        self.code = code
        self.path = path


_JSON_ENCODER: Final = msgspec.json.Encoder()
_MSGPACK_ENCODER: Final = msgspec.msgpack.Encoder()
_JSON_NODE: Final[msgspec.json.Decoder[NodeMessage]] = msgspec.json.Decoder(NodeMessage)
_JSON_HIVE: Final[msgspec.json.Decoder[HiveMessage]] = msgspec.json.Decoder(HiveMessage)
_MSGPACK_NODE: Final[msgspec.msgpack.Decoder[NodeMessage]] = msgspec.msgpack.Decoder(NodeMessage)
_MSGPACK_HIVE: Final[msgspec.msgpack.Decoder[HiveMessage]] = msgspec.msgpack.Decoder(HiveMessage)
_JSON_USER_CLIENT: Final[msgspec.json.Decoder[UserClientMessage]] = msgspec.json.Decoder(
    UserClientMessage
)
_JSON_USER_SERVER: Final[msgspec.json.Decoder[UserServerMessage]] = msgspec.json.Decoder(
    UserServerMessage
)


def encode_json(msg: WireStruct) -> bytes:
    """UTF-8 JSON of one message (send it as a text frame: ``.decode()`` or use :class:`Codec`)."""
    return _JSON_ENCODER.encode(msg)


def encode_msgpack(msg: WireStruct) -> bytes:
    """MessagePack of one message (a binary frame)."""
    return _MSGPACK_ENCODER.encode(msg)


def _as_bytes(data: Frame, *, binary: bool, limit: int) -> bytes | str:
    if isinstance(data, str):
        if binary:
            raise ProtocolError("expected a binary frame, got text", code="malformed_frame")
        if len(data) > limit:
            raise _too_large(len(data), limit)
        return data
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError(f"unsupported frame type {type(data).__name__}")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > limit:
        raise _too_large(size, limit)
    return bytes(data)


def _too_large(size: int, limit: int) -> ProtocolError:
    return ProtocolError(
        f"frame of {size} bytes exceeds the limit of {limit} bytes", code="frame_too_large"
    )


def _decode(
    decoder: msgspec.json.Decoder[_T] | msgspec.msgpack.Decoder[_T],
    data: Frame,
    *,
    binary: bool,
    what: str,
    limit: int = MAX_FRAME_BYTES,
) -> _T:
    raw = _as_bytes(data, binary=binary, limit=limit)
    if isinstance(raw, str):
        try:
            raw = raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ProtocolError(f"invalid {what}: text is not valid UTF-8") from exc
        if len(raw) > limit:
            raise _too_large(len(raw), limit)
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        raise ProtocolError(
            f"invalid {what}: {text}", path=match.group(1) if match else None
        ) from exc
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"malformed {what}: {_decode_problem(raw, exc, binary)}") from exc
    except RecursionError as exc:
        raise ProtocolError(f"malformed {what}: nested too deeply to decode") from exc
    except Exception as exc:  # whatever else the decoder raises is still the peer's bad frame
        raise ProtocolError(f"malformed {what}: {type(exc).__name__}: {exc}"[:500]) from exc


def _decode_problem(raw: bytes, exc: msgspec.DecodeError, binary: bool) -> str:
    """msgspec's reason, except where it misleads: a lone surrogate escape may be reported as
    "truncated" input."""
    escape = None if binary else lone_surrogate(raw)
    if escape is not None:
        return f"lone UTF-16 surrogate {escape} in a string (not valid Unicode)"
    return str(exc)


def decode_node_message(data: Frame, *, binary: bool) -> NodeMessage:
    """Decode a node → hive frame (msgpack when ``binary``, else JSON)."""
    decoder = _MSGPACK_NODE if binary else _JSON_NODE
    return _decode(decoder, data, binary=binary, what="node message")


def decode_hive_message(data: Frame, *, binary: bool) -> HiveMessage:
    """Decode a hive → node frame (msgpack when ``binary``, else JSON)."""
    decoder = _MSGPACK_HIVE if binary else _JSON_HIVE
    return _decode(decoder, data, binary=binary, what="hive message")


def decode_user_client_message(data: Frame) -> UserClientMessage:
    """Decode a frame a user stream client sent (JSON; at most ``MAX_USER_FRAME_BYTES``)."""
    return _decode(
        _JSON_USER_CLIENT, data, binary=False, what="client message", limit=MAX_USER_FRAME_BYTES
    )


def decode_user_server_message(data: Frame) -> UserServerMessage:
    """Decode a frame the hive sent on the user stream (JSON)."""
    return _decode(_JSON_USER_SERVER, data, binary=False, what="hive message")


class Codec:
    """The frame format of one connection, chosen by the negotiated subprotocol."""

    __slots__ = ("binary", "subprotocol")

    def __init__(self, subprotocol: str, binary: bool) -> None:
        self.subprotocol = subprotocol
        self.binary = binary

    @classmethod
    def for_subprotocol(cls, name: str | None) -> Codec:
        """The codec for ``vk.v1`` (JSON text frames) or ``vk.v1.msgpack`` (binary frames)."""
        if name == SUBPROTOCOL_JSON:
            return cls(SUBPROTOCOL_JSON, binary=False)
        if name == SUBPROTOCOL_MSGPACK:
            return cls(SUBPROTOCOL_MSGPACK, binary=True)
        raise ProtocolError(f"unsupported subprotocol {name!r}", code="protocol_version")

    def encode(self, msg: WireStruct) -> str | bytes:
        """A frame payload: ``str`` for a text frame (JSON), ``bytes`` for a binary one."""
        if self.binary:
            return encode_msgpack(msg)
        return encode_json(msg).decode("utf-8")

    def decode_node(self, data: Frame) -> NodeMessage:
        """Decode a node → hive frame of this connection."""
        return decode_node_message(data, binary=self.binary)

    def decode_hive(self, data: Frame) -> HiveMessage:
        """Decode a hive → node frame of this connection."""
        return decode_hive_message(data, binary=self.binary)

    def __repr__(self) -> str:
        return f"Codec({self.subprotocol!r})"
