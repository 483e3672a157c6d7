"""Authentication of a node connection (spec/security.md §1): key check, binding on first use,
takeover detection and blocking, then the ``auth_result`` snapshot.

:func:`authenticate` returns who the connection is (:class:`~vk_hive.gateway.identity.NodeIdentity`)
with the reply; it changes no session. The session adopts the identity and registers itself.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import msgspec
import structlog

from vk_hive.auth.api_keys import ApiKeyBlocked, verify_api_key
from vk_hive.errors import Unauthorized
from vk_hive.gateway.identity import NodeIdentity
from vk_hive.gateway.ports import GatewayDeps
from vk_hive.store.models import LinkSyncInfo, Node, NodeApiKey, NodeRegistration
from vk_hive.store.repositories import labels, node_api_keys, nodes, op_log, project_links
from vk_shared.protocol import HIVE_FEATURES, PROTOCOL_VERSION
from vk_shared.wire import Auth, AuthResult, ErrorCode, LinkedProjectInfo, SwarmLabelInfo

if TYPE_CHECKING:
    import asyncpg

__all__ = ["AuthFailure", "Authenticated", "authenticate", "link_info"]

log = structlog.get_logger("vk_hive.gateway")

BLOCK_REASON = (
    "Duplicate key use detected: multiple machines attempting to use same key within the "
    "takeover window"
)


class AuthFailure(Exception):
    """Authentication refused: ``code`` (``ErrorCode``) and a message for the node."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Authenticated:
    """An accepted ``auth``: who the node is, and the ``auth_result`` to send it."""

    identity: NodeIdentity
    result: AuthResult


def link_info(link: LinkSyncInfo) -> LinkedProjectInfo:
    return LinkedProjectInfo(
        link_id=link.link_id,
        project_id=link.project_id,
        local_project_id=link.local_project_id,
        project_name=link.project_name[:255] or "project",
        git_repo_path=link.git_repo_path[:4096],
        default_branch=link.default_branch[:255] or "main",
        source_node_id=link.source_node_id,
        source_node_name=link.source_node_name[:255] or "node",
        source_node_public_url=link.source_node_public_url,
        is_owned=link.is_owned,
    )


def _online(deps: GatewayDeps, node: Node) -> bool:
    """Whether the node has a live session: on this process (the directory), or on another hive
    process over the same database (a current session whose heartbeat is recent: a session of
    a process that died is taken for gone once its heartbeat is older than the timeout)."""
    if deps.directory.is_connected(node.id):
        return True
    if node.session_id is None or node.status not in ("online", "busy"):
        return False
    beat = node.last_heartbeat_at
    timeout = dt.timedelta(seconds=deps.settings.heartbeat_timeout_s)
    return beat is not None and beat > deps.settings.wall_now() - timeout


async def _bind(
    deps: GatewayDeps,
    conn: asyncpg.Connection,
    key: NodeApiKey,
    msg: Auth,
    session_id: uuid.UUID,
) -> Node:
    """The node this connection is (DESIGN.md §10: a key is its node).

    * An unbound key (or one whose node was deleted) creates a new node — never an existing one
      found by what the client claims (machine id, name): those are metadata.
    * A bound key is that node. The connecting instance is told apart by its machine id (by
      default generated per node data dir): the same instance reconnecting replaces its older
      session; another instance is refused while the node is online (the takeover count, and
      the block past the limit), and while it is offline it is a move.
    * A new node and a move start a new op-sequence epoch at the instance's own last acked seq,
      so no op of a new outbox is taken for one of the old outbox.
    """
    settings = deps.settings
    reg = NodeRegistration(
        name=msg.name,
        machine_id=msg.machine_id,
        capabilities=msgspec.to_builtins(msg.capabilities),
        public_url=msg.public_url,
    )
    locked = await node_api_keys.lock(conn, key.id)
    if locked is None or locked.revoked_at is not None or locked.blocked_at is not None:
        raise AuthFailure(ErrorCode.AUTH_FAILED, "API key revoked or blocked")
    bound = None if locked.node_id is None else await nodes.find_by_id(conn, locked.node_id)
    if bound is None:
        node = await nodes.create(conn, locked.organization_id, reg, session_id)
        await node_api_keys.update_node_binding(conn, locked.id, node.id, reset_takeover=True)
        epoch = await op_log.start_epoch(conn, node.id, msg.last_acked_seq)
        log.info("node.created", node_id=str(node.id), key_id=str(locked.id), epoch=epoch)
        return node
    if bound.machine_id == msg.machine_id:
        if locked.takeover_count:
            await node_api_keys.reset_takeover_count(conn, locked.id)
        return await nodes.connected(conn, bound.id, reg, session_id)
    if _online(deps, bound):
        count = await node_api_keys.increment_takeover(
            conn, locked.id, dt.timedelta(seconds=settings.takeover_window_s)
        )
        if count > settings.takeover_limit:
            await node_api_keys.block_key(conn, locked.id, BLOCK_REASON)
            log.warning("auth.key_blocked", key_id=str(locked.id), attempts=count)
            raise AuthFailure(ErrorCode.AUTH_FAILED, f"API key blocked: {BLOCK_REASON}")
        raise AuthFailure(
            ErrorCode.AUTH_FAILED,
            f"this API key belongs to node {bound.name!r}, which is online from another node "
            f"instance (another data dir or machine); stop that one first, or create a new key "
            f"for this one (attempt {count} of {settings.takeover_limit}; further attempts "
            "block the key)",
        )
    node = await nodes.connected(conn, bound.id, reg, session_id)
    await node_api_keys.reset_takeover_count(conn, locked.id)
    epoch = await op_log.start_epoch(conn, node.id, msg.last_acked_seq)
    log.info(
        "node.moved",
        node_id=str(node.id),
        from_machine_id=bound.machine_id,
        to_machine_id=msg.machine_id,
        epoch=epoch,
    )
    return node


async def authenticate(deps: GatewayDeps, msg: Auth) -> Authenticated:
    """Check ``auth`` and register the node in the database; raises :class:`AuthFailure`."""
    if msg.protocol_version != PROTOCOL_VERSION:
        raise AuthFailure(
            ErrorCode.PROTOCOL_VERSION,
            f"protocol version {msg.protocol_version} is not supported; "
            f"this hive speaks {PROTOCOL_VERSION}",
        )
    settings = deps.settings
    session_id = uuid.uuid4()
    failure: AuthFailure | None = None
    async with deps.db.transaction() as conn:
        try:
            key = await verify_api_key(conn, msg.api_key)
        except ApiKeyBlocked as exc:
            raise AuthFailure(ErrorCode.AUTH_FAILED, exc.detail) from None
        except Unauthorized as exc:
            raise AuthFailure(ErrorCode.AUTH_FAILED, exc.detail) from None
        try:
            node = await _bind(deps, conn, key, msg, session_id)
        except AuthFailure as exc:
            failure = exc  # commit the takeover count / block, then refuse
        else:
            applied = await op_log.get_applied_through(conn, node.id)
            links = await project_links.list_sync_infos_for_node(conn, node.id)
            org_labels = await labels.find_swarm_labels(conn, node.organization_id)
    if failure is not None:
        raise failure
    identity = NodeIdentity(
        node_id=node.id,
        organization_id=node.organization_id,
        name=node.name,
        public_url=node.public_url,
        executors=frozenset(msg.capabilities.executors),
        activity_cursors=MappingProxyType({c.project_id: c.seq for c in msg.activity_cursors}),
        linked_at_auth=tuple(link.project_id for link in links),
        features=frozenset(msg.features),
        session_id=session_id,
    )
    result = AuthResult(
        node_id=node.id,
        organization_id=node.organization_id,
        protocol_version=PROTOCOL_VERSION,
        linked_projects=[link_info(link) for link in links],
        swarm_labels=[
            SwarmLabelInfo(
                id=label.id,
                name=label.name[:255],
                icon=label.icon[:255],
                color=label.color[:255],
                version=label.version,
            )
            for label in org_labels
        ],
        lease_ttl_ms=max(1, int(settings.lease_ttl_s * 1000)),
        heartbeat_interval_ms=max(1, int(settings.heartbeat_interval_s * 1000)),
        applied_through_seq=applied,
        server_time=settings.wall_now(),
        features=list(HIVE_FEATURES),
    )
    return Authenticated(identity, result)
