"""The admin console's users and groups pages, and the one-time password link page."""

from __future__ import annotations

import re

import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine import accounts
from tests.web.conftest import PASSWORD, LoginAs, WebClient

NEW_PASSWORD = "a long enough secret"
_LINK = re.compile(r'id="password-link" type="text" readonly value="http://localhost(/password/[^"]+)"')


def _org(s: so.Session, key: str = "north") -> int:
    return engine.get_organisation(s, key).id


def _add_user(client: WebClient, **form: object) -> str:
    """Add a user through the page; return the path of their password link."""
    response = client.post("/admin/users/new", data={"roles": ["case_handler"], **form})
    assert response.status_code == 200, response.get_data(as_text=True)
    match = _LINK.search(response.get_data(as_text=True))
    assert match, "the page shows no link"
    return match.group(1)


def test_only_admins_see_the_users_and_groups_pages(login_as: LoginAs) -> None:
    client = login_as("case_handler")
    for path in ("/admin/users", "/admin/groups", "/admin/users/north-req", "/admin/groups/requesters"):
        assert client.get(path).status_code == 404
    assert client.post("/admin/users/north-req/deactivate").status_code == 404
    client = login_as("admin")
    page = client.get("/admin/users").get_data(as_text=True)
    assert "north-boss" in page and "south-boss" not in page
    assert client.get("/admin/groups").status_code == 200


def test_another_organisations_users_and_groups_are_404(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session]
) -> None:
    client = login_as("admin", "south")
    for path in ("/admin/users/north-req", "/admin/groups/requesters"):
        # south has a group "requesters" of its own: north's user is still not in it
        assert client.get(path).status_code == (404 if "users" in path else 200)
    for path in (
        "/admin/users/north-req/deactivate",
        "/admin/users/north-req/roles",
        "/admin/users/north-req/groups",
        "/admin/users/north-req/password-link",
        "/admin/users/north-req/details",
    ):
        assert client.post(path, data={"roles": ["admin"]}).status_code == 404, path
    response = client.post("/admin/groups/requesters/members", data={"username": "north-req"})
    assert response.status_code == 422
    assert "The organisation has no user with this username." in response.get_data(as_text=True)
    with session_factory() as s:
        assert accounts.get_member(s, _org(s), "north-req").deactivated_at is None
        assert "south" not in str(s.scalars(sa.select(engine.PasswordLink)).all())


def test_add_a_user_set_the_password_and_sign_in(
    login_as: LoginAs, client: WebClient, session_factory: so.sessionmaker[so.Session]
) -> None:
    admin = login_as("admin")
    link = _add_user(
        admin,
        username="alice",
        display_name="Alice Andersson",
        email="alice@north.example",
        groups=["approvers"],
    )
    with session_factory() as s:
        member = accounts.get_member(s, _org(s), "alice")
        assert [g.key for g in member.groups] == ["approvers"] and member.roles == ["case_handler"]
        message = s.scalars(sa.select(engine.OutboxMessage)).one()
        assert message.recipient == "alice@north.example" and link in message.body
    # The link page, as alice (signed out).
    admin.post("/logout")
    client.csrf_token = None
    page = client.get(link)
    assert page.status_code == 200 and "alice" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    refused = client.post(link, data={"password": "short", "repeat": "short"})
    assert refused.status_code == 422
    assert "Use at least 12 characters." in refused.get_data(as_text=True)
    differ = client.post(link, data={"password": NEW_PASSWORD, "repeat": "something else"})
    assert differ.status_code == 422 and "The two passwords differ." in differ.get_data(as_text=True)
    done = client.post(link, data={"password": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert done.status_code == 200 and "Your password is set" in done.get_data(as_text=True)
    assert client.post("/login", data={"username": "alice", "password": NEW_PASSWORD}).status_code == 303
    client.fetch_csrf_token()  # signing in starts a new session
    # Used: the same clear page as for any link that does not work, with 404.
    for path in (link, "/password/made-up"):
        gone = client.get(path)
        assert gone.status_code == 404 and "This link does not work" in gone.get_data(as_text=True)
    assert client.post(link, data={"password": "x" * 20, "repeat": "x" * 20}).status_code == 404


def test_bad_new_user_re_renders_with_the_message_beside_the_field(login_as: LoginAs) -> None:
    client = login_as("admin")
    response = client.post(
        "/admin/users/new", data={"username": "south-req", "email": "nope", "display_name": "Kept"}
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert (
        '<small id="username-error" class="field-error">This username is taken: choose another.</small>'
        in page
    )
    assert 'value="Kept"' in page
    response = client.post("/admin/users/new", data={"username": "bob", "email": "nope"})
    assert '<small id="email-error" class="field-error">This is not an e-mail address.</small>' in (
        response.get_data(as_text=True)
    )


def test_roles_groups_and_deactivation_from_the_user_page(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session]
) -> None:
    client = login_as("admin")
    response = client.post("/admin/users/north-req/roles", data={"roles": ["requester", "auditor"]})
    assert response.status_code == 303 and response.headers["Location"].endswith("done=roles")
    assert client.post("/admin/users/north-req/groups", data={"groups": ["approvers"]}).status_code == 303
    assert client.post("/admin/users/north-req/groups", data={"groups": ["nope"]}).status_code == 422
    mine = client.post("/admin/users/north-admin/roles", data={"roles": ["auditor"]})
    assert mine.status_code == 422
    assert "You cannot take away your own administrator role." in mine.get_data(as_text=True)
    assert client.post("/admin/users/north-admin/deactivate").status_code == 422
    page = client.post("/admin/users/north-req/deactivate", follow_redirects=True).get_data(as_text=True)
    assert "The user was deactivated." in page and "Reactivate" in page
    with session_factory() as s:
        member = accounts.get_member(s, _org(s), "north-req")
        assert member.roles == ["auditor", "requester"] and [g.key for g in member.groups] == ["approvers"]
        assert member.deactivated_at is not None
        kinds = [e.kind for e in s.scalars(sa.select(engine.AuditEvent).order_by(engine.AuditEvent.id))]
        assert kinds == ["admin.roles_changed", "admin.groups_changed", "admin.user_deactivated"]
    listing = client.get("/admin/users?status=deactivated").get_data(as_text=True)
    assert "north-req" in listing and "north-boss" not in listing


def test_a_deactivated_user_is_signed_out_and_cannot_sign_in(
    login_as: LoginAs, client: WebClient, app: object, session_factory: so.sessionmaker[so.Session]
) -> None:
    handler = login_as("case_handler")
    assert handler.get("/").status_code == 200
    with session_factory.begin() as s:
        accounts.deactivate_member(s, accounts.get_member(s, _org(s), "north-handler"), actor="north-admin")
    assert handler.get("/").status_code == 302  # signed out on the next request
    handler.csrf_token = None
    response = handler.post("/login", data={"username": "north-handler", "password": PASSWORD})
    assert response.status_code == 401


def test_groups_add_rename_members_and_delete(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session]
) -> None:
    client = login_as("admin")
    response = client.post(
        "/admin/groups",
        data={"key": "buyers", "name_sv": "Inköpare", "name_fi": "Ostajat", "name_en": "Buyers"},
    )
    assert response.status_code == 303 and response.headers["Location"].endswith(
        "/admin/groups/buyers?done=added"
    )
    taken = client.post("/admin/groups", data={"key": "buyers"})
    assert taken.status_code == 422
    assert "The organisation has a group with this key already." in taken.get_data(as_text=True)
    bad = client.post("/admin/groups", data={"key": "no spaces", "name_en": "Kept name"})
    assert bad.status_code == 422 and 'value="Kept name"' in bad.get_data(as_text=True)
    assert (
        client.post("/admin/groups/buyers", data={"name_sv": "Beställare", "name_en": "Buyers"}).status_code
        == 303
    )
    assert client.post("/admin/groups/buyers/members", data={"username": "north-req"}).status_code == 303
    client.post("/language", data={"lang": "sv", "next": "/admin/groups"})
    page = client.get("/admin/groups/buyers").get_data(as_text=True)
    assert "Beställare" in page and "north-req" in page
    assert client.post("/admin/groups/buyers/members/north-req/remove").status_code == 303
    assert client.post("/admin/groups/buyers/members/south-req/remove").status_code == 404
    assert client.post("/admin/groups/buyers/delete").status_code == 303
    assert client.get("/admin/groups/buyers").status_code == 404
    with session_factory() as s:
        kinds = [e.kind for e in s.scalars(sa.select(engine.AuditEvent).order_by(engine.AuditEvent.id))]
        assert kinds == [
            "admin.group_added",
            "admin.group_changed",
            "admin.groups_changed",
            "admin.groups_changed",
            "admin.group_deleted",
        ]


def test_users_list_searches_and_pages(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session]
) -> None:
    with session_factory.begin() as s:
        for n in range(accounts.USERS_PAGE_SIZE + 5):
            accounts.create_member(s, _org(s), username=f"clerk{n:03d}", actor=None)
    client = login_as("admin")
    first = client.get("/admin/users?q=clerk").get_data(as_text=True)
    assert "55 users" in first and "clerk049" in first and "clerk050" not in first
    second = client.get("/admin/users?q=clerk&page=2").get_data(as_text=True)
    assert "clerk050" in second and "clerk054" in second and "clerk049" not in second
    assert "north-req" not in second
