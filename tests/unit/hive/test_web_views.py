"""The board's pure pieces: the moves a task page offers (in Python and in its module) are the
status machine's, the status history, relative ages and the static files' digest."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path

from vk_hive.store.models import ActivityEvent
from vk_hive.web import STATIC_DIR, _age, static_digest
from vk_hive.web.views import COLUMNS, _history, legal_moves
from vk_shared.status import TaskStatus, is_legal


def test_the_offered_moves_are_the_legal_transitions_in_column_order() -> None:
    order = [status for status, _ in COLUMNS]
    for frm in TaskStatus:
        moves = legal_moves(frm)
        assert moves == [to for to in order if is_legal(frm, to)]
    assert legal_moves(TaskStatus.CANCELLED) == []
    assert legal_moves(TaskStatus.IN_REVIEW) == [
        TaskStatus.IN_PROGRESS,
        TaskStatus.DONE,
        TaskStatus.CANCELLED,
    ]


def test_the_task_modules_table_of_moves_is_the_status_machine() -> None:
    """``static/task.js`` redraws the move buttons after a live change from its own table: it
    must say exactly what :func:`legal_moves` says."""
    source = (STATIC_DIR / "task.js").read_text()
    block = re.search(r"const LEGAL = \{(.*?)\n\};", source, re.S)
    assert block is not None
    entries = re.findall(r'^\s*"?([a-z-]+)"?: (\[[^\]]*\]),', block.group(1), re.M)
    table = {frm: json.loads(moves) for frm, moves in entries}
    assert table == {s.value: [m.value for m in legal_moves(s)] for s in TaskStatus}
    titles = dict(re.findall(r'^\s*"?([a-z-]+)"?: "([A-Za-z ]+)",', source, re.M))
    assert {k: v for k, v in titles.items() if k in table} == {s.value: t for s, t in COLUMNS}


def _event(seq: int, event_type: str, status: str, version: int) -> ActivityEvent:
    return ActivityEvent(
        seq=seq,
        event_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        assignee_user_id=None,
        event_type=event_type,
        payload={"task": {"status": status, "version": version, "title": "t"}},
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seq),
        swarm_project_id=None,
    )


def test_the_history_names_each_status_change_once() -> None:
    history = _history(
        [
            _event(1, "task.created", "todo", 1),
            _event(2, "task.updated", "in-progress", 2),
            _event(3, "task.updated", "in-progress", 3),
            _event(4, "task.updated", "in-review", 4),
        ]
    )
    assert [(h.previous, h.status, h.version) for h in history] == [
        (None, "todo", 1),
        ("todo", "in-progress", 2),
        (None, "in-progress", 3),
        ("in-progress", "in-review", 4),
    ]
    stringly = _event(1, "task.updated", "done", 2)
    stringly.payload["task"]["version"] = "2"  # not a version: left out, not guessed
    assert _history([stringly])[0].version is None


def test_ages_read_like_a_person_would_say_them() -> None:
    now = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    assert _age(None, now) == "never"
    assert _age(now - dt.timedelta(seconds=12), now) == "12 s ago"
    assert _age(now - dt.timedelta(minutes=3, seconds=5), now) == "3 min ago"
    assert _age(now - dt.timedelta(hours=2), now) == "2 h ago"
    assert _age(now - dt.timedelta(days=4), now) == "4 d ago"
    assert _age(now + dt.timedelta(seconds=5), now) == "0 s ago"  # a clock ahead of ours


def test_the_static_digest_follows_names_and_contents(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("one")
    first = static_digest(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert static_digest(tmp_path) == first
    (tmp_path / "a.js").write_text("two")
    second = static_digest(tmp_path)
    assert second != first
    (tmp_path / "a.js").rename(tmp_path / "b.js")
    assert static_digest(tmp_path) not in (first, second)
    assert re.fullmatch(r"[0-9a-f]{12}", static_digest())
