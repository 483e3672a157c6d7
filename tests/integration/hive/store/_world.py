"""Builders for the rows most store tests need (imported as ``integration.hive.store._world``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from vk_hive.store.db import Database
from vk_hive.store.models import Node, NodeRegistration, ProjectNodeLink, SwarmProject
from vk_hive.store.repositories import nodes


async def make_org(conn: asyncpg.Connection, name: str = "acme") -> uuid.UUID:
    """Organizations belong to the tenancy code; tests insert the bare row."""
    org_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO organizations (name, slug) VALUES ($1, $2) RETURNING id",
        name,
        f"{name}-{uuid.uuid4().hex[:8]}",
    )
    return org_id


async def make_user(conn: asyncpg.Connection, username: str = "alice") -> uuid.UUID:
    user_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO users (email, username, first_name) VALUES ($1, $2, $3) RETURNING id",
        f"{username}-{uuid.uuid4().hex[:6]}@example.com",
        username,
        username.title(),
    )
    return user_id


async def make_node(conn: asyncpg.Connection, org_id: uuid.UUID, name: str) -> Node:
    return await nodes.create(
        conn,
        org_id,
        NodeRegistration(name=name, machine_id=f"m-{name}", capabilities={"executors": ["SCRIPT"]}),
    )


@dataclass
class World:
    db: Database
    org_id: uuid.UUID
    user_id: uuid.UUID
    node: Node
    other_node: Node
    project: SwarmProject
    link: ProjectNodeLink
    other_link: ProjectNodeLink
