"""The task-status state machine and the two status spellings (DESIGN.md §5)."""

from __future__ import annotations

import itertools

import pytest

from vk_shared.status import (
    TRANSITIONS,
    Author,
    ExecutionStatus,
    InvalidStatus,
    NodeStatus,
    NodeTaskStatus,
    TaskStatus,
    canonicalize,
    is_legal,
    may_transition,
    to_hive,
    to_node,
    transition_author,
)

# Written out by hand from DESIGN.md §5 / spec §7, independent of vk_shared.status.
EXPECTED_AUTHOR: dict[tuple[str, str], str] = {
    ("todo", "in-progress"): "hive",
    ("in-review", "in-progress"): "hive",
    ("in-review", "done"): "hive",
    ("todo", "cancelled"): "hive",
    ("in-progress", "cancelled"): "hive",
    ("in-review", "cancelled"): "hive",
    ("done", "cancelled"): "hive",
    ("in-progress", "in-review"): "node",
    ("in-progress", "done"): "node",
}
HIVE_SPELLINGS = ["todo", "in-progress", "in-review", "done", "cancelled"]
NODE_SPELLINGS = ["todo", "inprogress", "inreview", "done", "cancelled"]

TRIPLES = list(itertools.product(HIVE_SPELLINGS, HIVE_SPELLINGS, ["hive", "node"]))


def test_enumerations_have_the_documented_values() -> None:
    """Every status enum carries exactly the wire values the contract lists."""
    assert [s.value for s in TaskStatus] == HIVE_SPELLINGS
    assert [s.value for s in NodeTaskStatus] == NODE_SPELLINGS
    assert [a.value for a in Author] == ["hive", "node"]
    assert [s.value for s in ExecutionStatus] == [
        "pending",
        "starting",
        "running",
        "completed",
        "failed",
        "cancelled",
    ]
    assert [s.value for s in NodeStatus] == ["pending", "online", "offline", "busy", "draining"]


@pytest.mark.parametrize(("frm", "to", "author"), TRIPLES)
def test_may_transition_matches_the_matrix(frm: str, to: str, author: str) -> None:
    """For every (from, to, author) triple, the author may act exactly when the matrix says so."""
    expected = EXPECTED_AUTHOR.get((frm, to)) == author
    assert may_transition(Author(author), TaskStatus(frm), TaskStatus(to)) is expected


@pytest.mark.parametrize(("frm", "to"), list(itertools.product(HIVE_SPELLINGS, HIVE_SPELLINGS)))
def test_transition_author_and_legality_match_the_matrix(frm: str, to: str) -> None:
    """Each (from, to) pair has the single expected author, or none when it is not a transition."""
    expected = EXPECTED_AUTHOR.get((frm, to))
    author = transition_author(TaskStatus(frm), TaskStatus(to))
    assert (author.value if author else None) == expected
    assert is_legal(TaskStatus(frm), TaskStatus(to)) is (expected is not None)


def test_the_transition_table_is_exactly_the_matrix() -> None:
    """TRANSITIONS lists the nine legal transitions and nothing else (no self-transitions)."""
    assert {(f.value, t.value): a.value for (f, t), a in TRANSITIONS.items()} == EXPECTED_AUTHOR
    assert all(frm != to for frm, to in TRANSITIONS)


def test_the_transition_table_is_read_only() -> None:
    """Nobody can add a transition at runtime."""
    with pytest.raises(TypeError):
        TRANSITIONS[(TaskStatus.DONE, TaskStatus.TODO)] = Author.HIVE  # type: ignore[index]


@pytest.mark.parametrize(("hive", "node"), list(zip(HIVE_SPELLINGS, NODE_SPELLINGS, strict=True)))
def test_spellings_convert_both_ways(hive: str, node: str) -> None:
    """to_node and to_hive are inverse bijections between the hive and node spellings."""
    assert to_node(TaskStatus(hive)) is NodeTaskStatus(node)
    assert to_hive(NodeTaskStatus(node)) is TaskStatus(hive)
    assert to_hive(to_node(TaskStatus(hive))) is TaskStatus(hive)


@pytest.mark.parametrize("value", HIVE_SPELLINGS + NODE_SPELLINGS)
def test_canonicalize_accepts_both_spellings(value: str) -> None:
    """Either spelling canonicalises to the hive enum member with the same meaning."""
    status = canonicalize(value)
    assert isinstance(status, TaskStatus)
    assert value in (status.value, to_node(status).value)


@pytest.mark.parametrize(
    "value",
    [
        "In-Progress",
        "INPROGRESS",
        "Todo",
        "in_progress",
        "in progress",
        "",
        " todo",
        "todo ",
        "review",
        "doing",
        "cancelled\n",
        "DONE",
    ],
)
def test_canonicalize_rejects_wrong_case_and_unknown_values(value: str) -> None:
    """Anything but the exact ten spellings raises InvalidStatus (a ValueError)."""
    with pytest.raises(InvalidStatus):
        canonicalize(value)
    assert issubclass(InvalidStatus, ValueError)


@pytest.mark.parametrize("value", [None, 1, b"todo", ["todo"]])
def test_canonicalize_rejects_non_strings(value: object) -> None:
    """Non-string input raises InvalidStatus rather than a TypeError."""
    with pytest.raises(InvalidStatus):
        canonicalize(value)  # type: ignore[arg-type]


def test_conversions_reject_the_other_spelling() -> None:
    """to_node refuses a node spelling and to_hive a hive spelling of an in-flight status."""
    with pytest.raises(InvalidStatus):
        to_node("inprogress")  # type: ignore[arg-type]
    with pytest.raises(InvalidStatus):
        to_hive("in-review")  # type: ignore[arg-type]
