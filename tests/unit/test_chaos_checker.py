"""The chaos checker (``support.chaos.check``) reports each kind of violation it is fed, and
nothing for a clean observation: it can fail."""

from __future__ import annotations

import copy
import itertools
from decimal import Decimal
from typing import Any

import pytest

from support.chaos import (
    ALL_HIVES_DOWN_S,
    HiveTask,
    Lease,
    LocalTask,
    NodeState,
    Observation,
    OpLogRow,
    OutboxRow,
    Run,
    Violation,
    check,
    generate,
)

NODE_A = "00000000-0000-0000-0000-00000000000a"
NODE_B = "00000000-0000-0000-0000-00000000000b"
TASK = "00000000-0000-0000-0000-0000000000f1"
LOCAL_A = "00000000-0000-0000-0000-0000000000c1"
LOCAL_B = "00000000-0000-0000-0000-0000000000c2"
QUIET = {"resend_from_seq": None, "pull": 0, "mismatched": 0}


def _clean() -> Observation:
    """A hive task dispatched to A (token 7, 100 → 110 s), one of A's runs, both nodes holding
    the hive's version; A's task op applied at 105 s with outcome acked."""
    hive_task = HiveTask(
        id=TASK,
        title="t",
        description="d",
        status="in-review",
        version=4,
        archived=False,
        deleted=False,
    )

    def copy_of(local_id: str) -> LocalTask:
        return LocalTask(local_id, TASK, "t", "d", "inreview", 4, False)

    return Observation(
        nodes=[
            NodeState(
                "node-a",
                NODE_A,
                [OutboxRow(1, "k1", "task.upsert", LOCAL_A, acked=True, rejected=False)],
                [copy_of(LOCAL_A)],
                dict(QUIET),
            ),
            NodeState("node-b", NODE_B, [], [copy_of(LOCAL_B)], dict(QUIET)),
        ],
        op_log={
            NODE_A: [OpLogRow("k1", 1, "task.upsert", LOCAL_A, 105.0, TASK, None, 7)],
            NODE_B: [],
        },
        leases=[Lease("as1", TASK, NODE_A, 7, 100.0, 110.0)],
        hive_tasks=[hive_task],
        runs=[
            Run("r1", "t001", "node-a", Decimal("100.5"), end=Decimal("102"), marks=[]),
            Run("r2", "t001", "node-b", Decimal("102.1"), end=Decimal("103"), marks=[]),
        ],
    )


def _kinds(violations: list[Violation]) -> set[str]:
    return {v.kind for v in violations}


def test_a_clean_observation_passes() -> None:
    """Exactly-once ops, a fenced write inside its lease, sequential runs and equal copies are
    not violations."""
    assert check(_clean()) == []


def test_overlapping_runs_are_reported() -> None:
    """A second run of the same task that starts before the first one's last mark is reported."""
    obs = _clean()
    obs.runs[0].marks = [Decimal("101"), Decimal("102.5")]
    found = check(obs)
    assert _kinds(found) == {"overlap"}, found
    assert "t001" in str(found[0])


def test_a_run_that_ends_just_before_the_next_starts_is_no_overlap() -> None:
    """Back-to-back runs within the clock margin are fine."""
    obs = _clean()
    obs.runs[1].start = Decimal("102.004")
    assert check(obs) == []


def test_a_duplicate_apply_is_reported() -> None:
    """The hive recording one idempotency key twice, or holding two shared tasks for one node
    task, breaks exactly-once."""
    obs = _clean()
    obs.op_log[NODE_A].append(OpLogRow("k1", 1, "task.upsert", LOCAL_A, 105.5, TASK, None, 7))
    assert _kinds(check(obs)) == {"exactly_once"}

    obs = _clean()
    twin = copy.deepcopy(obs.hive_tasks[0])
    obs.hive_tasks[0].source_node_id = twin.source_node_id = NODE_A
    obs.hive_tasks[0].source_task_id = twin.source_task_id = LOCAL_A
    twin.id = "00000000-0000-0000-0000-0000000000f2"
    obs.hive_tasks.append(twin)
    found = check(obs)
    assert "exists 2 times on the hive" in str(found), found


def test_lost_and_phantom_ops_are_reported() -> None:
    """An acked op the hive never recorded, one it recorded but the node never committed, and
    one left unacked are all reported."""
    obs = _clean()
    obs.op_log[NODE_A] = []
    assert "acked ops the hive never recorded" in str(check(obs))

    obs = _clean()
    obs.op_log[NODE_B] = [OpLogRow("kx", 1, "task.upsert", LOCAL_B, 105.0, None)]
    assert "never committed" in str(check(obs))

    obs = _clean()
    obs.nodes[0].outbox[0].acked = False
    assert "never acked" in str(check(obs))


def test_a_write_outside_the_lease_is_a_stale_token_write() -> None:
    """An op of a non-owner applied after its assignment was reclaimed is reported; the same op
    from the task's owner needs no lease."""
    obs = _clean()
    obs.op_log[NODE_A][0].applied_at = 112.0
    found = check(obs)
    assert _kinds(found) == {"stale_token"}, found

    obs.hive_tasks[0].owner_node_id = NODE_A
    assert check(obs) == []


def test_an_applied_op_with_another_token_is_a_stale_token_write() -> None:
    """An op applied inside the lease but carrying an older token is reported."""
    obs = _clean()
    obs.op_log[NODE_A][0].token = 6
    assert _kinds(check(obs)) == {"stale_token"}


def test_a_rejected_op_outside_the_lease_is_fine() -> None:
    """An op the hive refused (and the node recorded the rejection) is not a write."""
    obs = _clean()
    obs.op_log[NODE_A][0].applied_at = 112.0
    obs.op_log[NODE_A][0].reject_code = "no_active_assignment"
    obs.nodes[0].outbox[0].rejected = True
    assert check(obs) == []


def test_a_rejection_the_node_never_heard_of_is_reported() -> None:
    """The hive skipped an op the node holds as applied (a lost op_rejected), or the reverse."""
    obs = _clean()
    obs.op_log[NODE_A][0].reject_code = "stale_fencing_token"
    found = check(obs)
    assert _kinds(found) == {"exactly_once"}, found
    assert "the node holds as applied but the hive skipped" in str(found)

    obs = _clean()
    obs.nodes[0].outbox[0].rejected = True
    assert "the hive applied but the node holds as rejected" in str(check(obs))


def test_overlapping_leases_are_reported() -> None:
    """Two leases of one task current at the same time, or a later one with a lower token."""
    obs = _clean()
    obs.leases.append(Lease("as2", TASK, NODE_B, 8, 109.0, None))
    assert _kinds(check(obs)) == {"stale_token"}

    obs = _clean()
    obs.leases.append(Lease("as2", TASK, NODE_B, 6, 111.0, 115.0))
    assert "but is not higher" in str(check(obs))


def test_an_earlier_token_of_the_same_assignment_is_a_lease_of_its_own() -> None:
    """A reclaim gives an assignment row a new token: an op applied under the row's earlier
    token while that token was current is fine; applied after it ended, it is a stale write."""
    obs = _clean()
    obs.leases[0] = Lease("as1", TASK, NODE_A, 7, 100.0, 104.0)
    obs.leases.append(Lease("as1", TASK, NODE_B, 9, 106.0, 110.0))
    obs.op_log[NODE_A][0].applied_at = 103.0
    assert check(obs) == []

    obs.op_log[NODE_A][0].applied_at = 106.5
    found = check(obs)
    assert _kinds(found) == {"stale_token"}, found
    assert "outside the lease of that token" in str(found)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "other"),
        ("description", "other"),
        ("status", "inprogress"),
        ("remote_version", 3),
        ("archived", True),
    ],
)
def test_a_divergent_copy_is_reported(field: str, value: object) -> None:
    """A node copy differing from the hive task in any compared field is a divergence."""
    obs = _clean()
    setattr(obs.nodes[1].tasks[0], field, value)
    found = check(obs)
    assert _kinds(found) == {"divergence"}, found
    assert "node-b" in str(found[0])


def test_missing_extra_and_deleted_copies_are_reported() -> None:
    """No copy, a copy of an unknown task, and a copy still linked to a deleted task."""
    obs = _clean()
    obs.nodes[1].tasks = []
    assert _kinds(check(obs)) == {"divergence"}

    obs = _clean()
    obs.nodes[1].tasks.append(
        LocalTask("c3", "00000000-0000-0000-0000-0000000000f9", "x", None, "todo", 1, False)
    )
    assert _kinds(check(obs)) == {"divergence"}

    obs = _clean()
    obs.hive_tasks[0].deleted = True
    assert _kinds(check(obs)) == {"divergence"}


def test_a_digest_that_asks_for_something_is_reported() -> None:
    """After convergence a digest exchange must pull nothing and resend nothing."""
    obs = _clean()
    obs.nodes[0].digest = {"resend_from_seq": None, "pull": 1, "mismatched": 1}
    assert _kinds(check(obs)) == {"digest"}
    obs.nodes[0].digest = None
    assert _kinds(check(obs)) == {"digest"}


def test_schedules_are_a_function_of_the_seed() -> None:
    """The same seed gives the same schedule; faults that end get their end event."""
    one = generate(42, duration=20)
    assert one == generate(42, duration=20)
    assert one != generate(43, duration=20)
    kinds = [e.kind for e in one["events"]]
    assert kinds.count("hive_kill") == kinds.count("hive_start")
    assert kinds.count("node_kill") == kinds.count("node_start")
    assert kinds.count("cut") == kinds.count("heal")


def _down_spans(plan: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    spans: dict[str, list[tuple[float, float]]] = {name: [] for name in plan["hives"]}
    killed: dict[str, float] = {}
    for e in plan["events"]:
        if e.kind == "hive_kill":
            assert e.target not in killed, f"{e.target} killed while down"
            killed[e.target] = e.at
        elif e.kind == "hive_start":
            spans[e.target].append((killed.pop(e.target), e.at))
    assert not killed
    return spans


def test_a_two_hive_schedule_kills_either_hive_but_never_both_for_long() -> None:
    """With two hives every kill names one of them and is followed by its restart; both are down
    at once for at most ``ALL_HIVES_DOWN_S``; a lone hive may stay down past the lease TTL; the
    workload goes through either hive and each node lists both hives in an order of its own."""
    plans = [generate(seed, duration=20, hives=2) for seed in range(200)]
    assert plans[0] == generate(0, duration=20, hives=2)
    longest_both = longest_lone = 0.0
    for plan in plans:
        assert plan["hives"] == ["hive-1", "hive-2"]
        assert all(sorted(order) == plan["hives"] for order in plan["hive_order"].values())
        spans = _down_spans(plan)
        for a, b in itertools.product(spans["hive-1"], spans["hive-2"]):
            longest_both = max(longest_both, min(a[1], b[1]) - max(a[0], b[0]))
        longest_lone = max([longest_lone, *(end - at for s in spans.values() for at, end in s)])
    assert longest_both <= ALL_HIVES_DOWN_S + 1e-9
    assert longest_lone > 3.0
    events = [e for plan in plans for e in plan["events"]]
    for kinds in (("hive_kill",), ("dispatch", "hive_edit")):
        assert {e.target for e in events if e.kind in kinds} == {"hive-1", "hive-2"}
    assert {e.args.get("hive") for e in events if e.kind == "cut"} == {"hive-1", "hive-2", "all"}
    assert len({tuple(order) for plan in plans for order in plan["hive_order"].values()}) == 2


def test_one_hive_keeps_its_schedules() -> None:
    """The single-hive topology draws nothing for the second hive: its events name ``hive``, link
    faults name no hive link, and a seed gives the schedule it gave before (first events of seed 7
    as recorded)."""
    plan = generate(7, duration=20)
    assert plan["hives"] == ["hive"]
    assert {e.target for e in plan["events"] if e.kind.startswith(("hive_", "dispatch"))} <= {
        "hive"
    }
    assert all("hive" not in e.args for e in plan["events"])
    assert plan == generate(7, duration=20, hives=1)
    assert plan["skews"] == {"node-a": -12.5, "node-b": -30.0, "node-c": 0.0, "hive": -12.5}
    assert [(round(e.at, 3), e.kind, e.target, e.args) for e in plan["events"][:4]] == [
        (0.877, "dispatch", "hive", {"marks": 7, "pick": 0.821274}),
        (1.191, "cut", "node-a", {"mode": "blackhole"}),
        (1.373, "cut", "node-c", {"mode": "reset"}),
        (1.806, "dispatch", "hive", {"marks": 5, "pick": 0.585541}),
    ]
