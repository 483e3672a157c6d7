"""The delivery worker on a real SQLite store, sending to a real HTTP server on 127.0.0.1: the
default retry schedule driven by a test clock (no waiting), and pending deliveries picked up by a
worker started later (what a node restart does)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from support.webhook_receiver import Receiver, verify_signature
from vk_node.settings import NodeSettings, load_settings
from vk_node.store import Store
from vk_node.store.models import WebhookDelivery
from vk_node.store.repositories import webhook_deliveries as deliveries_repo
from vk_node.store.repositories import webhooks as webhooks_repo
from vk_node.webhooks.worker import DeliveryWorker

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _settings(tmp_path: Path) -> NodeSettings:
    return load_settings(env={"VK_NODE_DATA_DIR": str(tmp_path / "data")}).settings


async def _pending(store: Store, url: str, secret: str | None = None) -> UUID:
    delivery_id = uuid4()
    async with store.transaction() as conn:
        hook = await webhooks_repo.create(conn, uuid4(), name="h", url=url, secret=secret)
        await deliveries_repo.create(
            conn,
            delivery_id,
            webhook_id=hook.id,
            event="executor_finish",
            body='{"event": "executor_finish"}',
            next_attempt_at=T0,
        )
    return delivery_id


async def _after_try(store: Store, delivery_id: UUID, count: int) -> WebhookDelivery:
    for _ in range(1000):
        async with store.read() as conn:
            found = await deliveries_repo.find_by_id(conn, delivery_id)
        assert found is not None
        if found.attempt_count >= count:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"try {count} was not recorded: {found}")


@pytest.mark.asyncio
async def test_the_default_schedule_retries_after_5_15_and_40_seconds_then_fails(
    store: Store, tmp_path: Path
) -> None:
    """With the default delays and an endpoint answering 500, each failed try schedules the
    next exactly 5 s, 15 s, then 40 s later on the worker's clock, and the tries are recorded at
    exactly those times (a wake one second early sends nothing); after the fourth try the
    delivery is ``failed``."""
    clock = Clock(T0)
    settings = _settings(tmp_path)
    assert settings.webhook_retry_delays_s == (5.0, 15.0, 40.0)
    with Receiver(default_status=500) as receiver:
        delivery_id = await _pending(store, receiver.url)
        worker = DeliveryWorker(store, settings, clock=clock)
        await worker.start()
        try:
            found = await _after_try(store, delivery_id, 1)
            for attempt, delay in ((1, 5), (2, 15), (3, 40)):
                assert found.status == "pending", found
                assert found.next_attempt_at == clock.now + timedelta(seconds=delay)
                clock.now += timedelta(seconds=delay - 1)
                worker.wake()  # not due yet: a try now would be recorded at this time
                clock.now += timedelta(seconds=1)
                worker.wake()
                found = await _after_try(store, delivery_id, attempt + 1)
            assert found.status == "failed"
            assert found.next_attempt_at is None
            assert [(a.attempt, a.status_code) for a in found.attempts] == [
                (1, 500), (2, 500), (3, 500), (4, 500),
            ]  # fmt: skip
            assert [a.attempted_at for a in found.attempts] == [
                T0, T0 + timedelta(seconds=5), T0 + timedelta(seconds=20),
                T0 + timedelta(seconds=60),
            ]  # fmt: skip
        finally:
            await worker.close()
        assert len(receiver.received) == 4


@pytest.mark.asyncio
async def test_a_worker_started_later_sends_the_pending_deliveries(
    store: Store, tmp_path: Path
) -> None:
    """A delivery whose endpoint was down stays pending after its worker closes; a new worker
    on the same store (a restarted node) sends it once it is due, with the same delivery id and
    a valid signature."""
    clock = Clock(T0)
    settings = _settings(tmp_path)
    with Receiver() as receiver:
        port = receiver.port
    delivery_id = await _pending(store, f"http://127.0.0.1:{port}/hook", secret="k")
    first = DeliveryWorker(store, settings, clock=clock)
    await first.start()
    found = await _after_try(store, delivery_id, 1)
    await first.close()
    assert found.status == "pending"
    assert found.attempts[0].status_code is None
    with Receiver(port) as receiver:
        clock.now = T0 + timedelta(minutes=10)
        second = DeliveryWorker(store, settings, clock=clock)
        await second.start()
        try:
            found = await _after_try(store, delivery_id, 2)
        finally:
            await second.close()
        [got] = receiver.received
    assert found.status == "delivered"
    assert got.headers["x-vk-delivery"] == str(delivery_id)
    assert verify_signature(got.body, "k", got.headers["x-vk-signature"])


@pytest.mark.asyncio
async def test_settled_deliveries_older_than_the_history_are_deleted(
    store: Store, tmp_path: Path
) -> None:
    """Pruning deletes delivered and failed deliveries (with their tries) last changed more than
    ``webhook_history_days`` ago on the worker's clock, and keeps pending ones and newer ones."""
    settings = _settings(tmp_path)
    ids = {status: uuid4() for status in ("delivered", "failed", "pending")}
    async with store.transaction() as conn:
        hook = await webhooks_repo.create(conn, uuid4(), name="h", url="http://127.0.0.1:9/")
        for status, delivery_id in ids.items():
            await deliveries_repo.create(
                conn, delivery_id, webhook_id=hook.id, event="test", body="{}", next_attempt_at=None
            )
            await deliveries_repo.record_attempt(
                conn,
                delivery_id,
                attempt=1,
                status_code=500,
                duration_ms=1,
                error="HTTP 500",
                attempted_at=T0,
                status=status,
                next_attempt_at=None,
            )
    now = datetime.now(UTC)
    clock = Clock(now + timedelta(days=settings.webhook_history_days - 1))
    assert await DeliveryWorker(store, settings, clock=clock).prune() == 0
    clock.now = now + timedelta(days=settings.webhook_history_days + 1)
    assert await DeliveryWorker(store, settings, clock=clock).prune() == 2
    async with store.read() as conn:
        left = await deliveries_repo.find_for_webhook(conn, hook.id, limit=10)
        [(tries,)] = await conn.execute_fetchall("SELECT count(*) FROM webhook_delivery_attempts")
    assert [d.id for d in left] == [ids["pending"]]
    assert tries == 1
