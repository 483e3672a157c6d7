"""Every wire message round-trips through JSON and msgpack (hypothesis property tests).

Strategies are derived from the Structs themselves via ``msgspec.inspect``, honouring every
``Meta`` constraint, so a new message type or field is covered without touching this file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC
from functools import cache
from pathlib import Path
from typing import Any, get_args

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vk_shared.codec import (
    Codec,
    decode_hive_message,
    decode_node_message,
    encode_json,
    encode_msgpack,
)
from vk_shared.protocol import SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK
from vk_shared.wire import (
    HIVE_MESSAGE_TYPES,
    NODE_MESSAGE_TYPES,
    OP_PAYLOAD_TYPES,
    Auth,
    Digest,
    HiveMessage,
    LogsAppend,
    NodeMessage,
    OpAck,
    OpBatch,
    OutboxOp,
    tag_of,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wire"
INT64 = (-(2**63), 2**63 - 1)
MAX_LIST = 3
MAX_TEXT = 40

# JSON-compatible values for ``Any`` / raw JSON objects (finite floats, 64-bit ints).
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(*INT64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=MAX_TEXT)
)
JSON_VALUES = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=MAX_LIST)
        | st.dictionaries(st.text(max_size=10), inner, max_size=MAX_LIST)
    ),
    max_leaves=8,
)


def _fix_logs(kw: dict[str, Any]) -> dict[str, Any]:
    first, last = sorted((kw["first_log_id"], kw["last_log_id"]))
    return {**kw, "first_log_id": first, "last_log_id": last}


def _fix_digest(kw: dict[str, Any]) -> dict[str, Any]:
    unique = list({b.bucket: b for b in kw.get("buckets", [])}.values())
    count = max([kw.get("bucket_count", 1), *(b.bucket + 1 for b in unique)])
    return {**kw, "buckets": unique, "bucket_count": count}


# Cross-field invariants enforced by ``__post_init__`` (see the Structs).
FIXUPS: dict[type, Callable[[dict[str, Any]], dict[str, Any]]] = {
    LogsAppend: _fix_logs,
    Digest: _fix_digest,
}


def _ints(info: mi.IntType) -> st.SearchStrategy[int]:
    low = info.ge if info.ge is not None else (info.gt + 1 if info.gt is not None else INT64[0])
    high = info.le if info.le is not None else (info.lt - 1 if info.lt is not None else INT64[1])
    return st.integers(low, high)


def _strs(info: mi.StrType) -> st.SearchStrategy[str]:
    low, high = info.min_length or 0, min(info.max_length or MAX_TEXT, MAX_TEXT)
    if info.pattern is not None:
        return st.from_regex(info.pattern, fullmatch=True).filter(lambda s: low <= len(s))
    return st.text(min_size=low, max_size=max(low, high))


def strategy_for(t: mi.Type) -> st.SearchStrategy[Any]:
    """A strategy producing valid values of one ``msgspec.inspect`` type."""
    if isinstance(t, mi.Metadata):
        return strategy_for(t.type)
    if isinstance(t, mi.StructType):
        return struct_strategy(t.cls)
    if isinstance(t, mi.UnionType):
        return st.one_of([strategy_for(m) for m in t.types])
    if isinstance(t, mi.ListType):
        low = t.min_length or 0
        high = max(low, min(t.max_length if t.max_length is not None else MAX_LIST, MAX_LIST))
        return st.lists(strategy_for(t.item_type), min_size=low, max_size=high)
    if isinstance(t, mi.DictType):
        return st.dictionaries(st.text(max_size=10), strategy_for(t.value_type), max_size=MAX_LIST)
    if isinstance(t, mi.IntType):
        return _ints(t)
    if isinstance(t, mi.StrType):
        return _strs(t)
    if isinstance(t, mi.EnumType):
        return st.sampled_from(list(t.cls))
    if isinstance(t, mi.DateTimeType):
        assert t.tz, "wire timestamps must be timezone-aware"
        return st.datetimes(timezones=st.just(UTC))
    simple: dict[type, st.SearchStrategy[Any]] = {
        mi.UUIDType: st.uuids(),
        mi.BoolType: st.booleans(),
        mi.NoneType: st.none(),
        mi.AnyType: JSON_VALUES,
    }
    if type(t) in simple:
        return simple[type(t)]
    raise NotImplementedError(f"no strategy for {t!r}: extend strategy_for")


@cache
def struct_strategy(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    """A strategy producing valid instances of a wire Struct (all fields, optional ones too)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    fields = {f.name: strategy_for(f.type) for f in info.fields}
    fixup = FIXUPS.get(cls, lambda kw: kw)
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**fixup(kw)))


ALL_MESSAGES: list[tuple[str, type[msgspec.Struct]]] = [
    *(("node", cls) for cls in NODE_MESSAGE_TYPES),
    *(("hive", cls) for cls in HIVE_MESSAGE_TYPES),
]
DECODERS = {"node": decode_node_message, "hive": decode_hive_message}
FAST = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_the_unions_list_every_message_of_the_design() -> None:
    """The unions hold exactly the DESIGN.md §2 tags, each once, and nothing else."""
    assert [tag_of(c) for c in NODE_MESSAGE_TYPES] == [
        "auth", "heartbeat", "projects_sync", "link_project", "unlink_project", "op_batch",
        "lease_renew", "digest", "deregister",
    ]  # fmt: skip
    assert [tag_of(c) for c in HIVE_MESSAGE_TYPES] == [
        "auth_result", "heartbeat_ack", "task_assign", "lease_grant", "lease_revoked",
        "task_cancel", "op_ack", "op_rejected", "digest_result", "activity", "activity_skipped",
        "resync_required",
        "project_sync", "node_status", "node_removed", "label_sync", "error",
    ]  # fmt: skip
    assert [tag_of(c) for c in OP_PAYLOAD_TYPES] == [
        "task.upsert", "attempt.upsert", "execution.upsert", "logs.append", "assignment.status",
        "progress.append", "label.upsert",
    ]  # fmt: skip
    assert get_args(NodeMessage) == NODE_MESSAGE_TYPES
    assert get_args(HiveMessage) == HIVE_MESSAGE_TYPES


@pytest.mark.parametrize(
    ("direction", "cls"), ALL_MESSAGES, ids=lambda v: getattr(v, "__name__", v)
)
@FAST
@given(data=st.data())
def test_every_message_round_trips_through_json_and_msgpack(
    direction: str, cls: type[msgspec.Struct], data: st.DataObject
) -> None:
    """Any valid message decodes back equal from its JSON text and its msgpack bytes."""
    msg = data.draw(struct_strategy(cls))
    decode = DECODERS[direction]
    assert decode(encode_json(msg), binary=False) == msg
    assert decode(encode_json(msg).decode("utf-8"), binary=False) == msg
    assert decode(encode_msgpack(msg), binary=True) == msg


@FAST
@given(op=struct_strategy(OutboxOp))
def test_every_op_payload_round_trips_inside_an_op_batch(op: OutboxOp) -> None:
    """Each outbox op type survives both formats and reports its op_type from the payload."""
    batch = OpBatch(ops=[op])
    for codec in (
        Codec.for_subprotocol(SUBPROTOCOL_JSON),
        Codec.for_subprotocol(SUBPROTOCOL_MSGPACK),
    ):
        decoded = codec.decode_node(codec.encode(batch))
        assert decoded == batch
        assert isinstance(decoded, OpBatch)
        assert decoded.ops[0].op_type.value == tag_of(op.payload)


def test_codec_frame_kinds_follow_the_subprotocol() -> None:
    """vk.v1 encodes to text frames and vk.v1.msgpack to binary frames."""
    assert Codec.for_subprotocol(SUBPROTOCOL_JSON).binary is False
    assert Codec.for_subprotocol(SUBPROTOCOL_MSGPACK).binary is True
    msg = msgspec.json.decode(b'{"type":"op_ack","applied_through_seq":3}', type=HiveMessage)
    assert isinstance(Codec.for_subprotocol(SUBPROTOCOL_JSON).encode(msg), str)
    assert isinstance(Codec.for_subprotocol(SUBPROTOCOL_MSGPACK).encode(msg), bytes)


def test_frames_of_the_previous_release_decode_with_the_new_fields_defaults() -> None:
    """``op_ack.tasks`` and ``auth.features`` are append-only: a frame without them (what a
    release before them sends) decodes to "no tasks" and "no features"."""
    ack = decode_hive_message(b'{"type":"op_ack","applied_through_seq":7}', binary=False)
    assert isinstance(ack, OpAck)
    assert ack.tasks == []
    raw = json.loads((FIXTURES / "node" / "auth.json").read_text("utf-8"))
    del raw["features"]
    auth = decode_node_message(json.dumps(raw).encode(), binary=False)
    assert isinstance(auth, Auth)
    assert auth.features == []
