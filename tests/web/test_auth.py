"""Sign-in, sign-out, sessions, CSRF, throttling of failed sign-ins, language and organisation switches."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from flask import Flask

import engine
import engine.sign_in_throttle
from tests.web.conftest import PASSWORD, LoginAs, WebClient
from web import create_app
from web.db import database


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


A = {"REMOTE_ADDR": "198.51.100.7"}
B = {"REMOTE_ADDR": "203.0.113.9"}
T0 = dt.datetime(2027, 2, 1, 8, 0, tzinfo=dt.UTC)


def _sign_in(client: WebClient, password: str, address: dict[str, str], username: str = "north-req") -> Any:
    client.fetch_csrf_token()
    return client.post("/login", data={"username": username, "password": password}, environ_base=address)


def test_wrong_passwords_from_one_address_do_not_lock_the_user_out_from_another(
    client: WebClient, users: None
) -> None:
    with time_machine.travel(T0, tick=False):
        for _ in range(3):
            assert _sign_in(client, "guess", A).status_code == 401
        # From A the next attempt must wait, even with the right password (it is not even checked) ...
        blocked = _sign_in(client, PASSWORD, A)
        assert blocked.status_code == 429
        assert "Too many failed sign-ins. Try again in 2 seconds." in blocked.get_data(as_text=True)
        assert blocked.headers["Retry-After"] == "2"
        # ... while the real user, from B, signs in at once.
        assert _sign_in(client, PASSWORD, B).status_code == 303
        client.post("/logout")
        # Another user from A is not held up either.
        assert _sign_in(client, PASSWORD, A, username="north-boss").status_code == 303


def test_each_further_failure_doubles_the_wait(client: WebClient, users: None) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        for _ in range(3):
            assert _sign_in(client, "guess", A).status_code == 401
        for wait in (2, 4, 8, 16):
            traveller.shift(wait - 1)
            early = _sign_in(client, "guess", A)
            assert early.status_code == 429 and early.headers["Retry-After"] == "1"
            traveller.shift(1)
            assert _sign_in(client, "guess", A).status_code == 401
        traveller.shift(31)
        assert _sign_in(client, PASSWORD, A).status_code == 429
        traveller.shift(1)
        assert _sign_in(client, PASSWORD, A).status_code == 303
        client.post("/logout")
        # The successful sign-in forgot the failures: three more are free again.
        for _ in range(3):
            assert _sign_in(client, "guess", A).status_code == 401


def test_the_throttle_is_shared_by_every_web_process(app: Flask, db_url: str, users: None) -> None:
    other_process = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test-secret"})
    other_process.test_client_class = WebClient
    first: WebClient = app.test_client()  # type: ignore[assignment]
    second: WebClient = other_process.test_client()  # type: ignore[assignment]
    try:
        with time_machine.travel(T0, tick=False):
            for _ in range(3):
                assert _sign_in(first, "guess", A).status_code == 401
            assert _sign_in(second, PASSWORD, A).status_code == 429
    finally:
        database(other_process).dispose()


def test_one_address_trying_many_usernames_is_throttled(
    client: WebClient, users: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine.sign_in_throttle, "FREE_FAILURES_PER_ADDRESS", 4)
    with time_machine.travel(T0, tick=False):
        for name in ("anna", "bert", "cecilia", "david"):
            assert _sign_in(client, "guess", A, username=name).status_code == 401
        assert _sign_in(client, PASSWORD, A).status_code == 429
        assert _sign_in(client, PASSWORD, B).status_code == 303


def test_the_throttle_message_is_translated(client: WebClient, users: None) -> None:
    with time_machine.travel(T0, tick=False):
        client.post("/language", data={"lang": "sv"})
        for _ in range(3):
            _sign_in(client, "guess", A)
        swedish = _sign_in(client, PASSWORD, A).get_data(as_text=True)
        client.post("/language", data={"lang": "fi"})
        finnish = _sign_in(client, PASSWORD, A).get_data(as_text=True)
    assert "För många misslyckade inloggningar. Försök igen om 2 sekunder." in swedish
    assert "Liian monta epäonnistunutta kirjautumista. Yritä uudelleen 2 sekunnin päästä." in finnish


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
