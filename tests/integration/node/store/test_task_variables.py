"""Task variables: inheritance up the parent chain, system variables, ${VAR} expansion."""

from __future__ import annotations

import pytest

from vk_node.store import Conflict, Store
from vk_node.store.repositories import labels, task_variables
from vk_node.store.repositories.task_variables import expand

from . import _seed


@pytest.mark.asyncio
async def test_nearest_definition_wins_up_the_chain(store: Store) -> None:
    """A subtask sees its ancestors' variables; the nearest definition overrides farther ones."""
    async with store.transaction() as conn:
        p = await _seed.project(conn, linked=False)
        root = await _seed.task(conn, p, title="root")
        mid = await _seed.task(conn, p, title="mid", parent=root.id)
        leaf = await _seed.task(conn, p, title="leaf", parent=mid.id)
        await task_variables.create(conn, root.id, "ENV", "prod")
        await task_variables.create(conn, root.id, "REGION", "eu")
        await task_variables.create(conn, mid.id, "ENV", "staging")
        await task_variables.upsert_for_task(conn, leaf.id, "OWNER", "me")
        await task_variables.upsert_for_task(conn, leaf.id, "OWNER", "you")
        assert await task_variables.find_inherited(conn, leaf.id) == {
            "ENV": "staging",
            "REGION": "eu",
            "OWNER": "you",
        }
        assert await task_variables.find_inherited(conn, root.id) == {"ENV": "prod", "REGION": "eu"}
        with pytest.raises(Conflict):
            await task_variables.create(conn, root.id, "ENV", "again")
        with pytest.raises(Conflict):
            await task_variables.create(conn, root.id, "lower", "x")


@pytest.mark.asyncio
async def test_system_variables_are_overridden_by_user_variables(store: Store) -> None:
    """resolve() gives system variables, user variables win, and expand() substitutes once."""
    async with store.transaction() as conn:
        p = await _seed.project(conn, linked=False, name="proj")
        parent = await _seed.task(conn, p, title="parent")
        child = await _seed.task(conn, p, title="child", parent=parent.id)
        bug = await labels.create(conn, __import__("uuid").uuid4(), name="bug")
        await labels.attach(conn, child.id, bug.id)
        await task_variables.create(conn, parent.id, "TASK_TITLE", "overridden")
        resolved = await task_variables.resolve(conn, child.id)
    assert resolved["TASK_ID"] == str(child.id)
    assert resolved["PARENT_TASK_ID"] == str(parent.id)
    assert resolved["IS_SUBTASK"] == "true"
    assert resolved["PROJECT_TITLE"] == "proj"
    assert resolved["TASK_LABEL"] == "bug"
    assert resolved["TASK_TITLE"] == "overridden"
    text = "Fix ${TASK_TITLE} in ${PROJECT_TITLE} (${UNKNOWN}) $TASK_ID"
    assert expand(text, resolved) == "Fix overridden in proj (${UNKNOWN}) $TASK_ID"
    assert expand("${A}", {"A": "${B}", "B": "no"}) == "${B}"


@pytest.mark.asyncio
async def test_variable_names_are_upper_case_identifiers_of_any_length(store: Store) -> None:
    """One-letter names are valid; names with lower case, spaces or a leading digit are refused."""
    async with store.transaction() as conn:
        p = await _seed.project(conn, linked=False)
        t = await _seed.task(conn, p)
        for name in ("V", "A1", "MY_VAR_2"):
            await task_variables.create(conn, t.id, name, "ok")
        for bad in ("", "1A", "_A", "Ab", "A B", "A-B"):
            with pytest.raises(Conflict):
                await task_variables.create(conn, t.id, bad, "x")
        assert set(await task_variables.find_inherited(conn, t.id)) == {"V", "A1", "MY_VAR_2"}
