"""The delivery worker: sends due webhook deliveries in the background and retries them.

Invariants:

- The worker never runs on the executor's path: an event only writes rows
  (:mod:`vk_node.webhooks.events`) and calls :meth:`DeliveryWorker.wake`; a dead or slow
  endpoint costs the executor nothing.
- Every try ends in one transaction recording it (status code, duration, error) and moving the
  delivery on: ``delivered`` on a 2xx, else ``pending`` at its next time from
  :mod:`vk_node.webhooks.schedule`, or ``failed`` when the tries are spent.
- A try is at most ``webhook_timeout_s`` long; at most :data:`CONCURRENCY` run at once, so one
  slow endpoint does not hold up the others.
- Shutdown cancels the HTTP requests in flight and records nothing for them: those deliveries
  stay ``pending`` and are tried again (same delivery id) when the node starts, as are all
  deliveries that were due while it was down. Delivery is at least once.
- Delivered and failed deliveries older than ``webhook_history_days`` are deleted at start and
  then hourly (:meth:`DeliveryWorker.prune`).
- The worker takes its wall clock as an argument, so tests drive the schedule without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
import structlog

from vk_node.settings import NodeSettings
from vk_node.store import Store
from vk_node.store.models import Webhook, WebhookDelivery
from vk_node.store.repositories import webhook_deliveries as deliveries_repo
from vk_node.store.repositories import webhooks as webhooks_repo
from vk_node.webhooks import schedule, sender
from vk_node.webhooks.payload import TEST_EVENT, encode_body, sample_body

__all__ = ["CONCURRENCY", "Clock", "DeliveryWorker"]

log = structlog.get_logger("vk_node.webhooks")

CONCURRENCY = 8
"""Most tries in flight at once."""
_IDLE_S = 30.0
"""Longest sleep between two looks at the table (a wake or a due time comes sooner)."""
_ERROR_PAUSE_S = 1.0
_PRUNE_EVERY_S = 3600.0

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryWorker:
    """Owned by the node lifespan: :meth:`start` after the store opens, :meth:`close` before it
    closes."""

    def __init__(
        self,
        store: Store,
        settings: NodeSettings,
        *,
        clock: Clock = _utcnow,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._inflight: set[UUID] = set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._posts: set[asyncio.Task[sender.Outcome]] = set()
        self._next_prune = 0.0

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client and start sending (deliveries already due go out at once)."""
        self._client = httpx.AsyncClient(
            transport=self._transport,
            follow_redirects=False,
            timeout=self.settings.webhook_timeout_s,
        )
        self._loop_task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop: cancel the requests in flight (their deliveries stay pending), let the
        bookkeeping of finished ones end, close the client."""
        self._closing = True
        self._wake.set()
        for post in list(self._posts):
            post.cancel()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self) -> None:
        """New deliveries were committed: look for due ones now."""
        self._wake.set()

    # --- the loop --------------------------------------------------------------------------

    async def prune(self) -> int:
        """Delete the settled deliveries older than ``webhook_history_days``; how many."""
        cutoff = self._clock() - timedelta(days=self.settings.webhook_history_days)
        async with self.store.transaction() as conn:
            deleted = await deliveries_repo.delete_settled_before(conn, cutoff)
        if deleted:
            log.info("webhook.history_pruned", deliveries=deleted)
        return deleted

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            self._wake.clear()
            try:
                if loop.time() >= self._next_prune:
                    self._next_prune = loop.time() + _PRUNE_EVERY_S
                    await self.prune()
                await self._dispatch_due()
                delay = await self._idle_delay()
            except Exception:
                log.exception("webhook.worker_failed")
                delay = _ERROR_PAUSE_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _dispatch_due(self) -> None:
        room = CONCURRENCY - len(self._inflight)
        if room <= 0:
            return
        async with self.store.read() as conn:
            due = await deliveries_repo.find_due(
                conn, self._clock(), limit=room + len(self._inflight)
            )
        for delivery in due:
            if room <= 0:
                break
            if delivery.id in self._inflight:
                continue
            room -= 1
            self._inflight.add(delivery.id)
            task = asyncio.create_task(self._deliver(delivery))
            self._deliveries.add(task)
            task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook.delivery_failed", error=repr(task.exception()))
        self._wake.set()

    async def _idle_delay(self) -> float:
        async with self.store.read() as conn:
            due = await deliveries_repo.next_due_at(conn)
        if due is None:
            return _IDLE_S
        wait = (due - self._clock()).total_seconds()
        if wait <= 0:
            # Due now: either in flight (a finished try wakes the loop) or just committed.
            return _IDLE_S if self._inflight else 0.0
        return min(wait, _IDLE_S)

    # --- one delivery ----------------------------------------------------------------------

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        try:
            async with self.store.read() as conn:
                hook = await webhooks_repo.find_by_id(conn, delivery.webhook_id)
            if hook is None:  # deleted meanwhile (its deliveries went with it)
                return
            attempted_at = self._clock()
            outcome = await self._try(hook, delivery.id, delivery.event, delivery.body)
            if outcome is None:  # shutting down: stays pending
                return
            attempt = delivery.attempt_count + 1
            retry_at = None
            if not outcome.delivered:
                retry_at = schedule.next_attempt_at(
                    attempt, self._clock(), self.settings.webhook_retry_delays_s
                )
            status = "delivered" if outcome.delivered else "pending" if retry_at else "failed"
            async with self.store.transaction() as conn:
                await deliveries_repo.record_attempt(
                    conn,
                    delivery.id,
                    attempt=attempt,
                    status_code=outcome.status_code,
                    duration_ms=outcome.duration_ms,
                    error=outcome.error,
                    attempted_at=attempted_at,
                    status=status,
                    next_attempt_at=retry_at,
                )
            log.info(
                "webhook.attempt",
                webhook_id=str(hook.id),
                delivery_id=str(delivery.id),
                attempt=attempt,
                status=status,
                status_code=outcome.status_code,
                error=outcome.error,
            )
        finally:
            self._inflight.discard(delivery.id)

    async def _try(
        self, hook: Webhook, delivery_id: UUID, event: str, body_text: str
    ) -> sender.Outcome | None:
        """One POST as its own task (so shutdown can cancel the request without cancelling
        bookkeeping); ``None`` when it was cancelled."""
        if self._client is None or self._closing:
            return None
        body = body_text.encode()
        headers = sender.request_headers(
            event=event, delivery_id=delivery_id, body=body, secret=hook.secret, custom=hook.headers
        )
        post = asyncio.create_task(
            sender.post(
                self._client,
                hook.url,
                body=body,
                headers=headers,
                timeout_s=self.settings.webhook_timeout_s,
            )
        )
        self._posts.add(post)
        post.add_done_callback(self._posts.discard)
        try:
            await asyncio.wait([post])
        except asyncio.CancelledError:
            post.cancel()
            raise
        return None if post.cancelled() else post.result()

    # --- test deliveries -------------------------------------------------------------------

    async def send_test(self, hook: Webhook) -> WebhookDelivery:
        """Send a ``test`` event to ``hook`` now (one try, no retries) and record it."""
        delivery_id = uuid4()
        attempted_at = self._clock()
        body = encode_body(
            sample_body(delivery_id, occurred_at=attempted_at, node_name=self.settings.name),
            hook.payload_template,
        )
        outcome = await self._try(hook, delivery_id, TEST_EVENT, body)
        if outcome is None:
            outcome = sender.Outcome(status_code=None, duration_ms=0, error="the node is stopping")
        async with self.store.transaction() as conn:
            await deliveries_repo.create(
                conn,
                delivery_id,
                webhook_id=hook.id,
                event=TEST_EVENT,
                body=body,
                next_attempt_at=None,
            )
            await deliveries_repo.record_attempt(
                conn,
                delivery_id,
                attempt=1,
                status_code=outcome.status_code,
                duration_ms=outcome.duration_ms,
                error=outcome.error,
                attempted_at=attempted_at,
                status="delivered" if outcome.delivered else "failed",
                next_attempt_at=None,
            )
            found = await deliveries_repo.find_by_id(conn, delivery_id)
        assert found is not None
        return found
