"""Log entries: batched insert, forward/backward pagination, raw JSONL chunks, retention."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vk_node.store import Store
from vk_node.store.repositories import log_entries

from . import _seed


@pytest.mark.asyncio
async def test_pagination_forward_and_backward(store: Store) -> None:
    """Pages carry has_more, next_cursor and the total count in both directions."""
    async with store.transaction() as conn:
        _, _, _, e = await _seed.world(conn, linked=False)
        rows = await log_entries.append_many(conn, e.id, [("stdout", f"l{i}") for i in range(7)])
    ids = [r.id for r in rows]
    assert ids == sorted(ids)
    assert ids == list(range(ids[0], ids[0] + 7))  # one statement: contiguous ids
    async with store.read() as conn:
        page = await log_entries.find_paginated(conn, e.id, limit=3)
        assert [x.content for x in page.entries] == ["l0", "l1", "l2"]
        assert (page.has_more, page.next_cursor, page.total_count) == (True, ids[2], 7)
        page = await log_entries.find_paginated(conn, e.id, cursor=page.next_cursor, limit=3)
        page = await log_entries.find_paginated(conn, e.id, cursor=page.next_cursor, limit=3)
        assert [x.content for x in page.entries] == ["l6"]
        assert (page.has_more, page.next_cursor) == (False, ids[6])
        empty = await log_entries.find_paginated(conn, e.id, cursor=ids[6], limit=3)
        assert (empty.entries, empty.has_more, empty.next_cursor) == ([], False, ids[6])
        back = await log_entries.find_paginated(conn, e.id, limit=4, direction="backward")
        assert [x.content for x in back.entries] == ["l6", "l5", "l4", "l3"]
        assert back.has_more
        back = await log_entries.find_paginated(
            conn, e.id, cursor=back.next_cursor, limit=4, direction="backward"
        )
        assert [x.content for x in back.entries] == ["l2", "l1", "l0"]
        assert not back.has_more
        with pytest.raises(ValueError, match="direction"):
            await log_entries.find_paginated(conn, e.id, direction="sideways")
        tail = await log_entries.find_after_id(conn, e.id, ids[4], 10)
        assert [x.content for x in tail] == ["l5", "l6"]


@pytest.mark.asyncio
async def test_raw_chunks_session_marker_and_retention(store: Store) -> None:
    """Raw JSONL lines are kept in order; the session-invalid scan and purge work."""
    async with store.transaction() as conn:
        _, _, _, e = await _seed.world(conn, linked=False)
        await log_entries.append_log_line(conn, e.id, '{"a": 1}')
        await log_entries.append_log_line(conn, e.id, '{"error": "Session not found"}\n')
        chunks = await log_entries.find_raw_by_execution_id(conn, e.id)
        assert [c.logs for c in chunks] == ['{"a": 1}\n', '{"error": "Session not found"}\n']
        assert chunks[0].byte_size == 9
        assert await log_entries.contains_session_invalid_error(conn, e.id)
        await log_entries.append_many(
            conn, e.id, [("stdout", "old")] * 5, timestamp=datetime(2000, 1, 1, tzinfo=UTC)
        )
        await log_entries.create(conn, e.id, "stderr", "new")
        cutoff = datetime(2001, 1, 1, tzinfo=UTC)
        assert await log_entries.count_older_than(conn, cutoff) == 5
        assert await log_entries.delete_older_than(conn, cutoff, 3) == 3
        assert await log_entries.delete_older_than(conn, cutoff, 3) == 2
        assert [x.content for x in await log_entries.find_by_execution_id(conn, e.id)] == ["new"]
        with pytest.raises(ValueError, match="output type"):
            await log_entries.create(conn, e.id, "bogus", "x")
