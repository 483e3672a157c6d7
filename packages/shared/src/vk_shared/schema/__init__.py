"""JSON Schema (2020-12) of both message unions of the node channel and both of the user stream
(``/v1/ws``); the committed snapshot is ``wire.schema.json``.

Regenerate with ``make docs`` (``python -m vk_shared.schema``); a test fails when the snapshot is
stale, so every wire change shows up as a reviewable schema diff.

The snapshot records what the protocol means — types, fields, constraints, descriptions — not how
a msgspec release happens to render it: :func:`normalize` collapses the whitespace of every
``description`` and ``title`` (msgspec versions indent docstring continuation lines differently),
and both the snapshot and the comparison use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from vk_shared.protocol import PROTOCOL_VERSION, SUBPROTOCOLS
from vk_shared.wire import HiveMessage, NodeMessage, UserClientMessage, UserServerMessage

__all__ = ["SNAPSHOT_PATH", "build_schema", "normalize", "render_schema"]

SNAPSHOT_PATH = Path(__file__).with_name("wire.schema.json")
"""The committed snapshot."""

_REF = "#/$defs/{name}"
_PROSE = frozenset({"description", "title"})


def build_schema() -> dict[str, Any]:
    """The schema document: ``$defs`` holds every struct plus ``NodeMessage`` / ``HiveMessage``
    (the node channel) and ``UserServerMessage`` / ``UserClientMessage`` (the user stream)."""
    (node, hive, user_server, user_client), components = msgspec.json.schema_components(
        [NodeMessage, HiveMessage, UserServerMessage, UserClientMessage], ref_template=_REF
    )
    defs = dict(components)
    defs["NodeMessage"] = node
    defs["HiveMessage"] = hive
    defs["UserServerMessage"] = user_server
    defs["UserClientMessage"] = user_client
    schema: dict[str, Any] = normalize(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"vk-swarm control channel, protocol version {PROTOCOL_VERSION}",
            "description": (
                "Every frame is one NodeMessage (node to hive) or HiveMessage (hive to node); "
                f"subprotocols: {', '.join(SUBPROTOCOLS)}. The user activity stream (/v1/ws) "
                "carries UserServerMessage (hive to client) and UserClientMessage (client to "
                "hive) in $defs."
            ),
            "anyOf": [
                {"$ref": _REF.format(name="NodeMessage")},
                {"$ref": _REF.format(name="HiveMessage")},
            ],
            "$defs": defs,
        }
    )
    return schema


def normalize(schema: Any) -> Any:
    """A copy of ``schema`` whose prose (``description``, ``title``) has its whitespace collapsed
    to single spaces; everything else is kept as it is."""
    if isinstance(schema, dict):
        return {
            key: " ".join(value.split())
            if key in _PROSE and isinstance(value, str)
            else normalize(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [normalize(item) for item in schema]
    return schema


def render_schema() -> str:
    """The schema as stable, sorted, indented JSON text (what the snapshot contains)."""
    return json.dumps(build_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
