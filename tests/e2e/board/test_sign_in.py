"""Signing a real browser in and out of a real ``vk-hive serve`` with a one-time login link."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from support.cluster import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("board"), nodes_count=0, project_name="Moonshot") as c:
        yield c


def test_login_link_signs_in_once_and_sign_out_ends_the_session(
    cluster: Cluster, page: Page
) -> None:
    home = cluster.hive.url + "/"
    page.goto(home)
    expect(page).to_have_url(cluster.hive.url + "/login")
    assert "Moonshot" not in page.content()

    link = cluster.hive.login_link(cluster.email)
    page.goto(link)
    expect(page).to_have_url(home)
    expect(page.get_by_text("Moonshot").first).to_be_visible()

    # The link is spent: a second browser gets the refusal, not a session.
    other = page.context.browser
    assert other is not None
    second = other.new_context().new_page()
    second.goto(link)
    expect(second.get_by_role("heading", name="Sign-in link not valid")).to_be_visible()
    second.goto(home)
    expect(second).to_have_url(cluster.hive.url + "/login")
    second.context.close()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(cluster.hive.url + "/login")
    page.goto(home)
    expect(page).to_have_url(cluster.hive.url + "/login")
    assert "Moonshot" not in page.content()


def test_the_session_cookie_is_http_only_and_same_site(cluster: Cluster, page: Page) -> None:
    page.goto(cluster.hive.login_link(cluster.email))
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["vk_hive_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    # Scripts of the page cannot read it.
    assert "vk_hive_session" not in page.evaluate("document.cookie")
