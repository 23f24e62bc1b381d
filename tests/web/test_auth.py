"""Sign-in, sign-out, sessions, CSRF, rate limiting, language and organisation switches."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.web.conftest import PASSWORD, LoginAs, WebClient


def test_login_page_has_the_fields_scripts_rely_on(client: WebClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    for name in ("username", "password", "csrf_token"):
        assert f'name="{name}"' in page


def test_anonymous_visitors_are_sent_to_sign_in(client: WebClient) -> None:
    response = client.get("/tasks/1")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/tasks/1")


def test_sign_in_and_out(client: WebClient, users: None) -> None:
    response = client.post(
        "/login", data={"username": "north-req", "password": PASSWORD, "next": "/processes/"}
    )
    assert (response.status_code, response.headers["Location"]) == (303, "/processes/")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    inbox = client.get("/")
    assert inbox.status_code == 200 and "North" in inbox.get_data(as_text=True)
    client.fetch_csrf_token()
    assert client.post("/logout").status_code == 303
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(
    client: WebClient, users: None
) -> None:
    wrong = client.post("/login", data={"username": "north-req", "password": "nope"})
    unknown = client.post("/login", data={"username": "nobody", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong username or password." in wrong.get_data(as_text=True)
    assert 'value="north-req"' in wrong.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_external_next_urls_are_ignored(client: WebClient, users: None) -> None:
    response = client.post(
        "/login", data={"username": "north-req", "password": PASSWORD, "next": "//evil.example"}
    )
    assert response.headers["Location"] == "/"


def test_login_without_csrf_token_is_refused(client: WebClient, users: None) -> None:
    response = client.post("/login", data={"username": "north-req", "password": PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)


def test_failed_logins_are_rate_limited_per_username(client: WebClient, users: None) -> None:
    for _ in range(5):
        assert client.post("/login", data={"username": "north-req", "password": "guess"}).status_code == 401
    blocked = client.post("/login", data={"username": "north-req", "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    # Another username from the same address is not blocked yet.
    assert client.post("/login", data={"username": "north-boss", "password": PASSWORD}).status_code == 303


def test_successful_logins_do_not_count_towards_the_limit(client: WebClient, users: None) -> None:
    for _ in range(7):
        client.fetch_csrf_token()
        assert client.post("/login", data={"username": "north-req", "password": PASSWORD}).status_code == 303
        client.post("/logout")


def test_a_deactivated_user_is_signed_out(login_as: LoginAs, app: Flask, session_factory: object) -> None:
    import engine

    client = login_as("requester")
    with session_factory.begin() as s:  # type: ignore[attr-defined]
        engine.get_user(s, "north-req").is_active = False
    assert client.get("/").status_code == 302


def test_language_switch_is_remembered(client: WebClient, users: None) -> None:
    response = client.post("/language", data={"lang": "sv", "next": "/login"})
    assert (response.status_code, response.headers["Location"]) == (303, "/login")
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="sv">' in page and "Logga in" in page
    client.post("/language", data={"lang": "fi"})
    assert "Kirjaudu sisään" in client.get("/login").get_data(as_text=True)


def test_unknown_language_is_a_bad_request(client: WebClient) -> None:
    assert client.post("/language", data={"lang": "xx"}).status_code == 400


def test_browser_language_is_used_without_a_choice(client: WebClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "fi-FI,fi;q=0.9"}).get_data(as_text=True)
    assert '<html lang="fi">' in page


@pytest.mark.parametrize("header", ["Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options"])
def test_security_headers(client: WebClient, header: str) -> None:
    assert header in client.get("/login").headers


def test_switching_to_an_organisation_one_is_not_a_member_of_is_not_found(login_as: LoginAs) -> None:
    client = login_as("requester")
    assert client.post("/organisation", data={"organisation": "south"}).status_code == 404


def test_switching_organisation(login_as: LoginAs, session_factory: object) -> None:
    import engine

    with session_factory.begin() as s:  # type: ignore[attr-defined]
        engine.add_user(s, "north-req", organisation="south", roles=["requester"])
    client = login_as("requester")
    assert "Switch to South" in client.get("/").get_data(as_text=True)
    assert client.post("/organisation", data={"organisation": "south"}).status_code == 303
    assert "South" in client.get("/").get_data(as_text=True).split("<main")[0]
