"""Storage conversions of the node store (UUID BLOBs, UTC millisecond timestamps, row decoding)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import msgspec

from vk_node.store.codec import decode_row, ts_from_db, ts_to_db, uuid_from_db, uuid_to_db
from vk_node.store.migrate import split_statements


def test_uuid_round_trips_through_blob_and_text() -> None:
    """A UUID survives its 16-byte BLOB form and is also read from hyphenated TEXT."""
    u = uuid4()
    assert len(uuid_to_db(u)) == 16
    assert uuid_from_db(uuid_to_db(u)) == u
    assert uuid_from_db(str(u)) == u


def test_timestamps_are_utc_milliseconds() -> None:
    """Timestamps are stored as UTC 'YYYY-MM-DD HH:MM:SS.fff' and read back aware."""
    local = datetime(2024, 5, 6, 9, 8, 7, 654321, tzinfo=timezone(timedelta(hours=2)))
    assert ts_to_db(local) == "2024-05-06 07:08:07.654"
    assert ts_from_db("2024-05-06 07:08:07.654") == datetime(
        2024, 5, 6, 7, 8, 7, 654000, tzinfo=UTC
    )
    assert ts_from_db("2024-05-06 07:08:07") == datetime(2024, 5, 6, 7, 8, 7, tzinfo=UTC)


class _Row(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    at: datetime | None
    flag: bool
    tags: list[str]


def test_decode_row_converts_blobs_timestamps_booleans_and_json() -> None:
    """decode_row turns a raw row into a Struct with UUID, aware datetime, bool and JSON fields."""
    u = uuid4()
    row = {"id": u.bytes, "at": "2024-01-02 03:04:05.006", "flag": 1, "tags": '["a"]'}
    assert decode_row(_Row, row, json=("tags",)) == _Row(
        id=u, at=datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), flag=True, tags=["a"]
    )


def test_split_statements_ignores_comment_only_tails() -> None:
    """Comments after the last statement do not become statements."""
    assert split_statements("SELECT 1;\n-- done\n") == ["SELECT 1;"]
