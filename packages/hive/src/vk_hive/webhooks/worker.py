"""The delivery worker of one hive process: claims due deliveries, sends them, records every try.

Invariants:

- Events only write rows (:mod:`.events`); nothing on a node's op path waits for an endpoint.
- Every hive process runs a worker over the shared table; a delivery is claimed by one process
  at a time (:func:`~vk_hive.store.repositories.webhooks.claim_due`: ``FOR UPDATE SKIP LOCKED``,
  and the claim holds it past the try's deadline), so several processes never send the same
  try. A process that dies mid-try leaves the delivery due again once the hold ends: delivery
  is at least once (receivers drop repeats by ``X-VK-Delivery``).
- Every try ends in one transaction recording it and moving the delivery on: ``delivered`` on
  a 2xx, else ``pending`` at its next time (:func:`vk_shared.webhooks.next_attempt_at`), or
  ``failed`` when the tries are spent.
- At most :data:`CONCURRENCY` tries run at once per process, each at most
  ``webhook_timeout_s``.
- Settled deliveries older than ``webhook_history_days`` are deleted hourly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid

import httpx
import structlog
from prometheus_client import Counter

from vk_hive.settings import HiveSettings
from vk_hive.store.db import Database
from vk_hive.store.models import OrganizationWebhook, WebhookDelivery
from vk_hive.store.repositories import webhooks as webhooks_repo
from vk_hive.tenancy import repository as tenancy_repo
from vk_hive.webhooks import sender
from vk_hive.webhooks.payload import TEST_EVENT, OrganizationInfo, encode_body, sample_body
from vk_shared.webhooks import max_attempts, next_attempt_at

__all__ = ["CONCURRENCY", "DeliveryWorker"]

log = structlog.get_logger("vk_hive.webhooks")

CONCURRENCY = 8
POLL_S = 2.0
"""How often a worker looks for due deliveries (events of other processes, retries, graces)."""
_CLAIM_MARGIN_S = 30.0
_PRUNE_EVERY_S = 3600.0


class DeliveryWorker:
    """Owned by the hive lifespan: :meth:`start` after migrations, :meth:`close` before the
    database closes."""

    def __init__(
        self,
        db: Database,
        settings: HiveSettings,
        *,
        tries: Counter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._db = db
        self._tries_counter = tries
        self._settings = settings
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._tries: set[asyncio.Task[None]] = set()
        self._next_prune = 0.0

    @property
    def _max_attempts(self) -> int:
        return max_attempts(self._settings.webhook_retry_delays_s)

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            transport=self._transport,
            follow_redirects=False,
            timeout=self._settings.webhook_timeout_s,
        )
        self._loop_task = asyncio.create_task(self._run(), name="webhook-deliveries")

    async def close(self) -> None:
        """Stop: cancel tries in flight (their deliveries become due again after the hold)."""
        self._closing = True
        self._wake.set()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        for task in list(self._tries):
            task.cancel()
        if self._tries:
            await asyncio.gather(*self._tries, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self) -> None:
        """Deliveries were committed: look for due ones now."""
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            self._wake.clear()
            try:
                if loop.time() >= self._next_prune:
                    self._next_prune = loop.time() + _PRUNE_EVERY_S
                    await self.prune()
                await self.dispatch_due()
            except Exception as exc:
                log.warning("webhook.worker_failed", error=type(exc).__name__, message=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)

    async def prune(self) -> int:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=self._settings.webhook_history_days)
        async with self._db.acquire() as conn:
            deleted = await webhooks_repo.delete_settled_before(conn, cutoff)
        if deleted:
            log.info("webhook.history_pruned", deliveries=deleted)
        return deleted

    async def dispatch_due(self) -> int:
        """Claim what is due (up to the free slots) and start its tries; how many started."""
        room = CONCURRENCY - len(self._tries)
        if room <= 0 or self._closing:
            return 0
        hold = dt.timedelta(seconds=self._settings.webhook_timeout_s + _CLAIM_MARGIN_S)
        async with self._db.transaction() as conn:
            superseded, failed = await webhooks_repo.settle_stale(conn, self._max_attempts)
            claimed = await webhooks_repo.claim_due(
                conn, limit=room, hold=hold, max_attempts=self._max_attempts
            )
        if superseded or failed:
            log.info("webhook.settled_without_try", superseded=superseded, failed=failed)
        for delivery, hook in claimed:
            task = asyncio.create_task(self._try(delivery, hook))
            self._tries.add(task)
            task.add_done_callback(self._tries.discard)
        return len(claimed)

    async def _post(
        self, hook: OrganizationWebhook, delivery_id: uuid.UUID, event: str, body: str
    ) -> sender.Outcome:
        assert self._client is not None, "the worker is not started"
        raw = body.encode()
        return await sender.post(
            self._client,
            hook.url,
            body=raw,
            headers=sender.headers_for(
                event=event,
                delivery_id=delivery_id,
                body=raw,
                secret=hook.secret,
                custom=hook.headers,
            ),
            timeout_s=self._settings.webhook_timeout_s,
            allow_private=self._settings.webhook_allow_private_networks,
        )

    async def _try(self, delivery: WebhookDelivery, hook: OrganizationWebhook) -> None:
        outcome = await self._post(hook, delivery.id, delivery.event, delivery.body)
        attempt = delivery.attempt_count
        retry_at = (
            None
            if outcome.error is None
            else next_attempt_at(
                attempt, dt.datetime.now(dt.UTC), self._settings.webhook_retry_delays_s
            )
        )
        async with self._db.transaction() as conn:
            await webhooks_repo.record_try(
                conn,
                delivery.id,
                attempt=attempt,
                status_code=outcome.status_code,
                duration_ms=outcome.duration_ms,
                error=outcome.error,
                next_attempt_at=retry_at,
            )
        if self._tries_counter is not None:
            outcome_label = (
                "delivered" if outcome.error is None else ("retry" if retry_at else "failed")
            )
            self._tries_counter.labels(delivery.event, outcome_label).inc()
        if retry_at is not None and not self._closing:
            delay = (retry_at - dt.datetime.now(dt.UTC)).total_seconds()
            asyncio.get_running_loop().call_later(max(delay, 0.0), self.wake)
        self.wake()  # a slot is free
        log.info(
            "webhook.try",
            delivery_id=str(delivery.id),
            webhook_id=str(hook.id),
            event_name=delivery.event,
            attempt=attempt,
            status_code=outcome.status_code,
            delivered=outcome.error is None,
            error=outcome.error,
        )

    async def send_test(self, hook: OrganizationWebhook) -> WebhookDelivery:
        """One try now of a sample body (event ``test``, the shape of the webhook's first
        event), recorded with the other deliveries; no retries, even for an inactive webhook."""
        delivery_id = uuid.uuid4()
        async with self._db.acquire() as conn:
            org = await tenancy_repo.get_organization(conn, hook.organization_id)
        body = encode_body(
            sample_body(
                hook.events[0] if hook.events else "task_finished",
                delivery_id,
                occurred_at=dt.datetime.now(dt.UTC),
                organization=OrganizationInfo(
                    id=hook.organization_id, name=org.name if org is not None else ""
                ),
            ),
            hook.payload_template,
        )
        outcome = await self._post(hook, delivery_id, TEST_EVENT, body)
        async with self._db.transaction() as conn:
            await webhooks_repo.create_delivery(
                conn,
                delivery_id,
                webhook_id=hook.id,
                event=TEST_EVENT,
                body=body,
                status="delivered" if outcome.error is None else "failed",
                attempt_count=1,
            )
            await webhooks_repo.record_try(
                conn,
                delivery_id,
                attempt=1,
                status_code=outcome.status_code,
                duration_ms=outcome.duration_ms,
                error=outcome.error,
                next_attempt_at=None,
            )
            (recorded,) = await webhooks_repo.list_deliveries_by_ids(conn, [delivery_id])
        return recorded
