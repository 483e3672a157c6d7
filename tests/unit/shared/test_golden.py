"""Golden frames, the JSON Schema snapshot and docs/protocol.md stay in step with the Structs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from vk_shared.codec import (
    Frame,
    decode_hive_message,
    decode_node_message,
    decode_user_client_message,
    decode_user_server_message,
    encode_json,
    encode_msgpack,
)
from vk_shared.docgen import render
from vk_shared.schema import SNAPSHOT_PATH, build_schema, normalize, render_schema
from vk_shared.wire import (
    HIVE_MESSAGE_TYPES,
    NODE_MESSAGE_TYPES,
    USER_CLIENT_MESSAGE_TYPES,
    USER_SERVER_MESSAGE_TYPES,
    tag_of,
)

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "wire"
CASES = [
    *(("node", tag_of(cls), cls) for cls in NODE_MESSAGE_TYPES),
    *(("hive", tag_of(cls), cls) for cls in HIVE_MESSAGE_TYPES),
]
USER_CASES = [
    *(("user-server", tag_of(cls), cls) for cls in USER_SERVER_MESSAGE_TYPES),
    *(("user-client", tag_of(cls), cls) for cls in USER_CLIENT_MESSAGE_TYPES),
]
DECODERS = {"node": decode_node_message, "hive": decode_hive_message}
USER_DECODERS: dict[str, Callable[[Frame], object]] = {
    "user-server": decode_user_server_message,
    "user-client": decode_user_client_message,
}


def test_there_is_one_fixture_per_message_type_and_no_other() -> None:
    """Adding a message type without a golden fixture (or leaving a stale one) fails."""
    expected = {f"{direction}/{tag}.json" for direction, tag, _ in (*CASES, *USER_CASES)}
    present = {str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json")}
    assert present == expected


@pytest.mark.parametrize(("direction", "tag", "cls"), CASES, ids=lambda v: str(v))
def test_golden_fixture_decodes_and_re_encodes_identically(
    direction: str, tag: str, cls: type[msgspec.Struct]
) -> None:
    """Each committed frame decodes to its Struct and re-encodes to the same JSON and msgpack."""
    raw = (FIXTURES / direction / f"{tag}.json").read_bytes()
    decode = DECODERS[direction]
    msg = decode(raw, binary=False)
    assert type(msg) is cls
    assert json.loads(encode_json(msg)) == json.loads(raw)
    assert decode(encode_msgpack(msg), binary=True) == msg


@pytest.mark.parametrize(("direction", "tag", "cls"), USER_CASES, ids=lambda v: str(v))
def test_user_stream_fixture_decodes_and_re_encodes_identically(
    direction: str, tag: str, cls: type[msgspec.Struct]
) -> None:
    """Each committed frame of the user stream (/v1/ws) decodes to its Struct, from text and
    from bytes, and re-encodes to the same JSON."""
    raw = (FIXTURES / direction / f"{tag}.json").read_bytes()
    msg = USER_DECODERS[direction](raw)
    assert type(msg) is cls
    assert isinstance(msg, msgspec.Struct)
    assert json.loads(encode_json(msg)) == json.loads(raw)
    assert USER_DECODERS[direction](raw.decode()) == msg


def test_schema_snapshot_is_current() -> None:
    """The committed wire.schema.json means what the Structs mean: the same types, fields,
    constraints and descriptions (prose compared with its whitespace normalised, so how a msgspec
    release lays out docstrings does not matter)."""
    committed = json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8"))
    current = build_schema()
    stale = f"{SNAPSHOT_PATH.name} is stale; run `make docs` and commit the result"
    assert normalize(committed) == current, stale


def test_schema_snapshot_comparison_ignores_layout_but_not_meaning() -> None:
    """Re-indented prose compares equal; a changed constraint, field or description does not."""
    current = build_schema()
    auth = current["$defs"]["Auth"]
    relaid = json.loads(json.dumps(current))
    relaid["$defs"]["Auth"]["description"] = auth["description"].replace(" ", "\n    ", 2)
    assert normalize(relaid) == current
    for change in (
        lambda s: s["$defs"]["Auth"]["properties"]["api_key"].update(maxLength=513),
        lambda s: s["$defs"]["Auth"]["properties"].pop("name"),
        lambda s: s["$defs"]["Auth"].update(description="Something else."),
    ):
        changed = json.loads(json.dumps(current))
        change(changed)
        assert normalize(changed) != current


def test_the_snapshot_file_is_the_rendered_schema() -> None:
    """``make docs`` writes exactly what :func:`render_schema` renders (sorted, indented)."""
    assert json.loads(render_schema()) == build_schema()
    assert render_schema().endswith("}\n")


def test_schema_covers_both_unions_with_discriminators() -> None:
    """The schema has a discriminated entry per union whose mapping names every tag."""
    defs = build_schema()["$defs"]
    for name, types in (
        ("NodeMessage", NODE_MESSAGE_TYPES),
        ("HiveMessage", HIVE_MESSAGE_TYPES),
        ("UserServerMessage", USER_SERVER_MESSAGE_TYPES),
        ("UserClientMessage", USER_CLIENT_MESSAGE_TYPES),
    ):
        mapping = defs[name]["discriminator"]["mapping"]
        assert defs[name]["discriminator"]["propertyName"] == "type"
        assert set(mapping) == {tag_of(cls) for cls in types}


def test_protocol_doc_is_current() -> None:
    """docs/protocol.md is exactly what the doc generator renders from the Structs."""
    path = ROOT / "docs" / "protocol.md"
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    assert current == render(), "docs/protocol.md is stale; run `make docs` and commit the result"


def test_protocol_doc_documents_every_field() -> None:
    """Every message has a section and every field a description in the generated document."""
    doc = render()
    for _, tag, cls in (*CASES, *USER_CASES):
        assert f"### `{tag}` — {cls.__name__}" in doc
    assert "|  |" not in doc.replace("| `type` |", ""), "a field lacks a Meta(description=...)"
