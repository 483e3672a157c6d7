"""Organizations, members and invitations: role rules and guards."""

from __future__ import annotations

import uuid

import pytest

from .conftest import Hive


@pytest.mark.asyncio
async def test_last_admin_and_self_guards(hive: Hive) -> None:
    """An admin cannot demote or remove themself; the last admin cannot be demoted; promoting a
    member then lets the roles change."""
    alice, bob = await hive.user(), await hive.user()
    org = await hive.org_with(alice, bob)
    base = f"/v1/organizations/{org}/members"
    r = await hive.client.patch(
        f"{base}/{alice.user_id}/role", json={"role": "member"}, headers=alice.headers
    )
    assert r.status_code == 409
    r = await hive.client.delete(f"{base}/{alice.user_id}", headers=alice.headers)
    assert r.status_code == 409
    r = await hive.client.patch(
        f"{base}/{bob.user_id}/role", json={"role": "admin"}, headers=alice.headers
    )
    assert r.status_code == 200
    assert {m["user_id"]: m["role"] for m in r.json()}[str(bob.user_id)] == "admin"
    r = await hive.client.patch(
        f"{base}/{alice.user_id}/role", json={"role": "member"}, headers=bob.headers
    )
    assert r.status_code == 200
    r = await hive.client.patch(
        f"{base}/{bob.user_id}/role", json={"role": "member"}, headers=alice.headers
    )
    assert r.status_code == 403
    r = await hive.client.delete(f"{base}/{alice.user_id}", headers=bob.headers)
    assert r.status_code == 204
    r = await hive.client.get(f"/v1/organizations/{org}", headers=alice.headers)
    assert r.status_code == 403


@pytest.mark.asyncio
async def test_personal_org_is_protected(hive: Hive) -> None:
    """A personal organization cannot be deleted, invite, or change members: well-formed requests
    that contradict what the organization is (409 conflict)."""
    alice = await hive.user()
    org = alice.personal_org_id
    r = await hive.client.delete(f"/v1/organizations/{org}", headers=alice.headers)
    assert (r.status_code, r.json()["code"]) == (409, "conflict")
    r = await hive.client.post(
        f"/v1/organizations/{org}/invitations",
        json={"email": "b@example.com"},
        headers=alice.headers,
    )
    assert (r.status_code, r.json()["code"]) == (409, "conflict")


@pytest.mark.asyncio
async def test_invitation_accept_requires_matching_email_and_works_once(hive: Hive) -> None:
    """An invitation is visible by token, refused to a user with another email, accepted by the
    invitee (who becomes a member with the invited role) and cannot be accepted twice."""
    alice = await hive.user()
    org = await hive.org_with(alice)
    invitee = await hive.user("Invitee@Example.com")
    stranger = await hive.user()
    r = await hive.client.post(
        f"/v1/organizations/{org}/invitations",
        json={"email": "invitee@example.com", "role": "admin"},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    dup = await hive.client.post(
        f"/v1/organizations/{org}/invitations",
        json={"email": "INVITEE@example.com"},
        headers=alice.headers,
    )
    assert dup.status_code == 409
    shown = await hive.client.get(f"/v1/invitations/{token}")
    assert shown.json()["status"] == "pending"
    assert "token" not in shown.json()
    r = await hive.client.post(f"/v1/invitations/{token}/accept", headers=stranger.headers)
    assert r.status_code == 403
    r = await hive.client.post(f"/v1/invitations/{token}/accept", headers=invitee.headers)
    assert r.status_code == 200, r.text
    assert r.json()["user_role"] == "admin"
    r = await hive.client.post(f"/v1/invitations/{token}/accept", headers=invitee.headers)
    assert r.status_code == 409
    members = await hive.client.get(f"/v1/organizations/{org}/members", headers=invitee.headers)
    assert {m["email"] for m in members.json()} == {alice.email, "Invitee@Example.com"}


@pytest.mark.asyncio
async def test_expired_invitation_is_marked_and_refused(hive: Hive) -> None:
    """Accepting an invitation past its expiry marks it expired and refuses with 409."""
    alice = await hive.user()
    org = await hive.org_with(alice)
    bob = await hive.user()
    r = await hive.client.post(
        f"/v1/organizations/{org}/invitations", json={"email": bob.email}, headers=alice.headers
    )
    token = r.json()["token"]
    async with hive.db.acquire() as conn:
        await conn.execute(
            "UPDATE organization_invitations SET expires_at = now() - interval '1 s' WHERE id = $1",
            uuid.UUID(r.json()["id"]),
        )
    r = await hive.client.post(f"/v1/invitations/{token}/accept", headers=bob.headers)
    assert r.status_code == 409
    listed = await hive.client.get(f"/v1/organizations/{org}/invitations", headers=alice.headers)
    assert listed.json()[0]["status"] == "expired"


@pytest.mark.asyncio
async def test_create_rename_delete_organization(hive: Hive) -> None:
    """The creator is admin; admins rename and delete; a deleted org is 404."""
    alice = await hive.user()
    r = await hive.client.post(
        "/v1/organizations", json={"name": "Acme", "slug": "acme"}, headers=alice.headers
    )
    assert r.status_code == 201
    org = r.json()
    assert org["user_role"] == "admin"
    dup = await hive.client.post(
        "/v1/organizations", json={"name": "Acme", "slug": "acme"}, headers=alice.headers
    )
    assert dup.status_code == 409
    r = await hive.client.patch(
        f"/v1/organizations/{org['id']}", json={"name": "Acme 2"}, headers=alice.headers
    )
    assert r.json()["name"] == "Acme 2"
    assert (
        await hive.client.delete(f"/v1/organizations/{org['id']}", headers=alice.headers)
    ).status_code == 204
    assert (
        await hive.client.get(f"/v1/organizations/{org['id']}", headers=alice.headers)
    ).status_code == 404


@pytest.mark.asyncio
async def test_an_invitation_email_with_a_control_character_is_refused(hive: Hive) -> None:
    """The email pattern means the same to the server as to the OpenAPI document: a control
    character (U+001F, U+0085: whitespace only to Python) is refused with 400, a non-ASCII
    address is accepted."""
    alice = await hive.user()
    org = await hive.org_with(alice)
    url = f"/v1/organizations/{org}/invitations"
    for email in ("a\x1fb@example.com", "a@exa\x85mple.com", "a b@example.com"):
        r = await hive.client.post(url, json={"email": email}, headers=alice.headers)
        assert (r.status_code, r.json()["code"]) == (400, "validation_failed"), email
    r = await hive.client.post(url, json={"email": "jürgen@bücher.example"}, headers=alice.headers)
    assert r.status_code == 201, r.text
