"""Protocol version, WebSocket subprotocol names and size limits of the node ↔ hive channel.

A breaking wire change is a new protocol version negotiated by subprotocol; additive changes (new
optional fields, new message tags) keep the version.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DIGEST_BUCKETS",
    "FEATURES",
    "FEATURE_ACK_TASKS",
    "FEATURE_LABEL_OPS",
    "FEATURE_PROGRESS_OPS",
    "HIVE_FEATURES",
    "MAX_ASSIGNMENT_IDS",
    "MAX_DIGEST_BUCKETS",
    "MAX_DIGEST_PULL_ENTITIES",
    "MAX_FRAME_BYTES",
    "MAX_ID_LENGTH",
    "MAX_LOG_CONTENT_BYTES",
    "MAX_LOG_ENTRIES_PER_OP",
    "MAX_NAME_LENGTH",
    "MAX_OPS_PER_BATCH",
    "MAX_TASK_TEXT_BYTES",
    "MAX_TEXT_LENGTH",
    "MAX_USER_FRAME_BYTES",
    "MAX_USER_LOG_LINES",
    "OP_BATCH_SIZE",
    "PROTOCOL_VERSION",
    "RESEND_PAGE_SIZE",
    "SUBPROTOCOLS",
    "SUBPROTOCOL_JSON",
    "SUBPROTOCOL_MSGPACK",
    "USER_WS_PATH",
    "WS_PATH",
]

PROTOCOL_VERSION: Final = 1
"""Sent in ``auth``/``auth_result``; a mismatch is an authentication failure."""

# --- features (``auth.features``): additive behaviour a node opts into -------------------------

FEATURE_ACK_TASKS: Final = "ack_tasks"
"""The node takes the shared ids and versions of its task ops from ``op_ack.tasks`` and cursor
advances from ``activity_skipped``: the hive does not echo the activity events of the node's own
ops back to it."""

FEATURES: Final[tuple[str, ...]] = (FEATURE_ACK_TASKS,)
"""Every feature this release of the protocol knows (what a current node announces)."""

# --- hive features (``auth_result.features``): ops a node may send only to a hive that knows them

FEATURE_PROGRESS_OPS: Final = "progress_ops"
"""The hive applies ``progress.append`` ops (milestones of a run)."""

FEATURE_LABEL_OPS: Final = "label_ops"
"""The hive applies ``label.upsert`` ops (labels created or edited on a node)."""

HIVE_FEATURES: Final[tuple[str, ...]] = (FEATURE_PROGRESS_OPS, FEATURE_LABEL_OPS)
"""Every hive feature this release knows (what a current hive announces)."""

SUBPROTOCOL_JSON: Final = "vk.v1"
"""WebSocket subprotocol for JSON text frames."""

SUBPROTOCOL_MSGPACK: Final = "vk.v1.msgpack"
"""WebSocket subprotocol for MessagePack binary frames."""

SUBPROTOCOLS: Final[tuple[str, ...]] = (SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON)
"""Supported subprotocols, most preferred first."""

WS_PATH: Final = "/v1/nodes/ws"
"""Path of the node control channel on the hive."""

USER_WS_PATH: Final = "/v1/ws"
"""Path of the user activity stream on the hive (browsers and API clients, JSON text frames)."""

# --- frame and field limits (enforced by the codec / the Struct field constraints) ------------

MAX_FRAME_BYTES: Final = 4 * 1024 * 1024
"""Largest frame either side accepts; longer frames are rejected before decoding."""

MAX_TASK_TEXT_BYTES: Final = 50 * 1024
"""Upper bound for a task's title plus description (checked by the hive on apply; each field is
also capped individually at this length on the wire)."""

MAX_NAME_LENGTH: Final = 255
"""Short human-readable strings: node names, project names, branch names, executor names."""

MAX_ID_LENGTH: Final = 255
"""Opaque identifiers that are not UUIDs: machine ids, idempotency keys, error codes."""

MAX_TEXT_LENGTH: Final = 4096
"""Free-form short text: reasons, error messages, URLs, paths."""

MAX_LOG_CONTENT_BYTES: Final = 256 * 1024
"""Content of one log entry."""

MAX_USER_FRAME_BYTES: Final = 64 * 1024
"""Largest frame a user stream client may send (its messages are a few hundred bytes); a longer
one is answered with ``error{frame_too_large}`` without being parsed."""

MAX_USER_LOG_LINES: Final = 500
"""Most lines one ``log_lines`` message carries."""

# --- batching ---------------------------------------------------------------------------------

OP_BATCH_SIZE: Final = 50
"""Default number of outbox ops a node puts in one ``op_batch``."""

MAX_OPS_PER_BATCH: Final = 500
"""Most ops one ``op_batch`` may carry (also the re-stream page size)."""

RESEND_PAGE_SIZE: Final = 500
"""Page size when re-streaming the outbox from ``digest_result.resend_from_seq``."""

MAX_LOG_ENTRIES_PER_OP: Final = 500
"""Most log entries one ``logs.append`` op may carry."""

MAX_ASSIGNMENT_IDS: Final = 1000
"""Most assignment ids in one ``lease_renew``."""

DIGEST_BUCKETS: Final = 64
"""Number of hash buckets in a ``digest`` (DESIGN.md §6)."""

MAX_DIGEST_BUCKETS: Final = 4096
"""Largest bucket count a ``digest`` may declare."""

MAX_DIGEST_PULL_ENTITIES: Final = 10_000
"""Most entity ids one ``digest_result`` may name for pulling."""
