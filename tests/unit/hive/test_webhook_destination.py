"""Which addresses a hive may send organization webhook deliveries to
(vk_hive.webhooks.destination): public addresses only unless the operator allows private
networks."""

from __future__ import annotations

import pytest

from vk_hive.webhooks.destination import DestinationRefused, check_destination

pytestmark = pytest.mark.asyncio

REFUSED = [
    "http://127.0.0.1/",
    "http://127.8.9.10:8080/x",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:127.0.0.1]:3000/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://api.localhost/",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_non_public_destinations_are_refused_by_default(url: str) -> None:
    with pytest.raises(DestinationRefused, match="VK_HIVE_WEBHOOK_ALLOW_PRIVATE_NETWORKS"):
        await check_destination(url, allow_private=False, must_resolve=False)


@pytest.mark.parametrize("url", REFUSED)
async def test_the_operator_may_allow_private_networks(url: str) -> None:
    await check_destination(url, allow_private=True, must_resolve=True)


@pytest.mark.parametrize("url", ["https://8.8.8.8/hook", "http://[2606:4700:4700::1111]:8443/"])
async def test_public_addresses_pass(url: str) -> None:
    await check_destination(url, allow_private=False, must_resolve=True)


async def test_a_name_that_does_not_resolve_passes_when_saved_but_not_before_a_try() -> None:
    url = "https://no-such-host.invalid/hook"
    await check_destination(url, allow_private=False, must_resolve=False)
    with pytest.raises(DestinationRefused, match="does not resolve"):
        await check_destination(url, allow_private=False, must_resolve=True)
