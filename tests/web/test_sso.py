"""Single sign-on through a real OpenID Connect provider, over real HTTP: app → provider → callback.

The provider (tests/web/oidc_provider.py, Authlib's server components) and the
app each listen on 127.0.0.1; a ``requests`` session plays the browser and
follows the redirects between them. What was stored is read back from the
database in fresh sessions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask

import engine
from engine.models import utcnow
from tests.web.conftest import PASSWORD
from tests.web.oidc_provider import OIDCTestProvider, ProviderUser, running_provider
from web import ConfigurationError, create_app
from web.config import load_config
from web.db import database

MAPPING: dict[str, Any] = {
    "organisation": {"claim": "org", "map": {"Region Norr": "north", "Region Syd": "south"}},
    "roles": {
        "claim": "roles",
        "map": {"procflow-buyers": "case_handler", "procflow-admins": ["admin", "case_handler"]},
        "default": ["requester"],
    },
    "groups": {"claim": "groups", "map": {"buyers": "handlers", "approvers": "approvers"}},
}


def anna() -> ProviderUser:
    return ProviderUser(
        "u-anna",
        {
            "preferred_username": "anna.lind",
            "name": "Anna Lind",
            "email": "anna.lind@norr.example",
            "org": "Region Norr",
            "roles": ["procflow-buyers"],
            "groups": ["buyers", "canteen"],
        },
    )


PROVIDER_USERS = [
    anna(),
    ProviderUser("u-sven", {"preferred_username": "sven", "name": "Sven Syd", "org": "Region Syd"}),
    ProviderUser("u-vast", {"preferred_username": "vera", "name": "Vera Väst", "org": "Region Väst"}),
    ProviderUser(
        "u-clash", {"preferred_username": "north-admin", "name": "Not the admin", "org": "Region Norr"}
    ),
]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def provider() -> Iterator[OIDCTestProvider]:
    with running_provider([ProviderUser(u.subject, dict(u.claims)) for u in PROVIDER_USERS]) as running:
        yield running


@pytest.fixture
def app(db_url: str, provider: OIDCTestProvider) -> Iterator[Flask]:
    """The app with the test provider, and a second provider nobody answers for."""
    gone = {
        "key": "gone",
        "name": {"en": "Closed ID", "sv": "Stängd ID", "fi": "Suljettu ID"},
        "issuer": f"http://127.0.0.1:{_closed_port()}",
        "client_id": "x",
        "client_secret": "y",
        "organisation": "north",
        "roles": {"default": ["requester"]},
    }
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "test-secret",
            "SESSION_COOKIE_SECURE": False,
            "OIDC_PROVIDERS": json.dumps([provider.setting(**MAPPING), gone]),
        }
    )
    yield app
    database(app).dispose()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def sign_in_through_provider(http: requests.Session, live_server: str, **params: str) -> requests.Response:
    """Press "Sign in with Region Norr ID": every redirect followed, app → provider → app."""
    return http.get(f"{live_server}/sso/norr/login", params=params, timeout=30)


def signed_in(http: requests.Session, live_server: str) -> bool:
    """Whether the browser's cookies sign it in (the inbox answers instead of sending it to sign in)."""
    return http.get(f"{live_server}/", allow_redirects=False, timeout=30).status_code == 200


def stored(session_factory: so.sessionmaker[so.Session], username: str) -> dict[str, Any] | None:
    with session_factory() as s:
        user = s.scalar(sa.select(engine.User).where(engine.User.username == username))
        if user is None:
            return None
        identities = s.scalars(
            sa.select(engine.ExternalIdentity).where(engine.ExternalIdentity.user_id == user.id)
        )
        return {
            "display_name": user.display_name,
            "email": user.email,
            "password_hash": user.password_hash,
            "identities": [(i.issuer, i.subject) for i in identities],
            "memberships": {
                m.organisation.key: (sorted(m.roles), sorted(g.key for g in m.groups))
                for m in user.memberships
            },
        }


def audit_kinds(
    session_factory: so.sessionmaker[so.Session], organisation: str
) -> list[tuple[str, str | None]]:
    with session_factory() as s:
        org = engine.get_organisation(s, organisation)
        return [
            (e.kind, e.actor)
            for e in s.scalars(
                sa.select(engine.AuditEvent)
                .where(engine.AuditEvent.organisation_id == org.id, engine.AuditEvent.kind.like("%sso%"))
                .order_by(engine.AuditEvent.id)
            )
        ]


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def assert_clear_failure(response: requests.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert "Single sign-on did not work" in response.text
    assert message in response.text, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text


# -- the flow that works -------------------------------------------------------------------------


def test_first_sign_in_creates_the_user_in_the_mapped_organisation_with_mapped_roles_and_groups(
    live_server: str, http: requests.Session, provider: OIDCTestProvider, session_factory: Any
) -> None:
    provider.auto_user = "u-anna"
    response = sign_in_through_provider(http, live_server, next="/processes/")

    assert response.status_code == 200
    assert urlsplit(response.url).path == "/processes/"
    assert [urlsplit(r.url).netloc for r in response.history] == [
        urlsplit(live_server).netloc,
        urlsplit(provider.issuer).netloc,
        urlsplit(live_server).netloc,
    ]
    assert signed_in(http, live_server)
    assert stored(session_factory, "anna.lind") == {
        "display_name": "Anna Lind",
        "email": "anna.lind@norr.example",
        "password_hash": None,
        "identities": [(provider.issuer, "u-anna")],
        # "canteen" maps to no group; the default role comes with the mapped one.
        "memberships": {"north": (["case_handler", "requester"], ["handlers"])},
    }
    assert audit_kinds(session_factory, "north") == [
        ("sso_user_created", "anna.lind"),
        ("admin.sso_membership_synced", "sso:norr"),
        ("sso_signed_in", "anna.lind"),
    ]

    # The authorization request carried PKCE (S256), a state and a nonce; the token request the verifier.
    (authorization,) = provider.authorization_requests
    assert authorization["response_type"] == "code"
    assert authorization["code_challenge_method"] == "S256"
    assert authorization["state"] and authorization["nonce"]
    assert set(authorization["scope"].split()) == {"openid", "profile", "email"}
    assert authorization["redirect_uri"] == f"{live_server}/sso/norr/callback"
    (token_request,) = provider.token_requests
    assert _s256(token_request["code_verifier"]) == authorization["code_challenge"]
    assert "client_secret" not in token_request  # sent with HTTP Basic authentication


def test_every_sign_in_brings_roles_and_groups_in_step_with_the_claims_and_keeps_hand_given_ones(
    live_server: str, http: requests.Session, provider: OIDCTestProvider, session_factory: Any
) -> None:
    provider.auto_user = "u-anna"
    sign_in_through_provider(http, live_server)
    with session_factory.begin() as s:
        # An admin gives a group the mapping does not manage, and a role it does not manage.
        engine.add_user(s, "anna.lind", organisation="north", roles=["auditor"], groups=["requesters"])
    http.cookies.clear()

    # At the provider she moves to the admins and the approvers, and her username changes.
    claims = provider.users["u-anna"].claims
    claims.update(
        roles=["procflow-admins"], groups=["approvers"], preferred_username="anna.l", name="Anna L."
    )
    response = sign_in_through_provider(http, live_server)

    assert response.status_code == 200 and urlsplit(response.url).path == "/"
    assert stored(session_factory, "anna.l") is None  # the same account, found by subject
    assert stored(session_factory, "anna.lind")["memberships"] == {
        "north": (["admin", "auditor", "case_handler", "requester"], ["approvers", "requesters"])
    }
    assert stored(session_factory, "anna.lind")["display_name"] == "Anna L."
    assert http.get(f"{live_server}/admin/", timeout=30).status_code != 404  # the admin role works at once


def test_the_organisation_claim_picks_the_organisation(
    live_server: str, http: requests.Session, provider: OIDCTestProvider, session_factory: Any
) -> None:
    provider.auto_user = "u-sven"
    response = sign_in_through_provider(http, live_server)

    assert response.status_code == 200 and urlsplit(response.url).path == "/"
    assert stored(session_factory, "sven")["memberships"] == {"south": (["requester"], [])}
    assert audit_kinds(session_factory, "north") == []


def test_local_accounts_still_sign_in_beside_the_provider_buttons(
    live_server: str, http: requests.Session
) -> None:
    page = http.get(f"{live_server}/login", timeout=30)
    assert 'href="/sso/norr/login?next=/"' in page.text
    assert "Sign in with Region Norr ID" in page.text and "Sign in with Closed ID" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    response = http.post(
        f"{live_server}/login",
        data={"csrf_token": token, "username": "north-req", "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200 and urlsplit(response.url).path == "/"


def test_the_buttons_are_in_the_users_language(live_server: str, http: requests.Session) -> None:
    page = http.get(f"{live_server}/login", headers={"Accept-Language": "sv"}, timeout=30)
    assert "Logga in med Stängd ID" in page.text


# -- failures: a clear page, and nobody signed in --------------------------------------------------


def test_an_unmapped_organisation_is_refused(
    live_server: str, http: requests.Session, provider: OIDCTestProvider, session_factory: Any
) -> None:
    provider.auto_user = "u-vast"
    response = sign_in_through_provider(http, live_server)

    assert_clear_failure(response, 403, "does not belong to an organisation that uses Procflow")
    assert "Region Väst" in response.text  # the reason names the claim's value
    assert not signed_in(http, live_server)
    assert stored(session_factory, "vera") is None


def test_a_provider_account_never_takes_over_a_local_one_of_the_same_name(
    live_server: str, http: requests.Session, provider: OIDCTestProvider, session_factory: Any
) -> None:
    provider.auto_user = "u-clash"
    response = sign_in_through_provider(http, live_server)

    assert_clear_failure(response, 403, "exists but is not linked to Region Norr ID")
    assert not signed_in(http, live_server)
    assert stored(session_factory, "north-admin")["identities"] == []


def test_a_deactivated_membership_cannot_sign_in(
    live_server: str, http: requests.Session, provider: OIDCTestProvider, session_factory: Any
) -> None:
    provider.auto_user = "u-anna"
    sign_in_through_provider(http, live_server)
    with session_factory.begin() as s:
        user = engine.get_user(s, "anna.lind")
        (membership,) = user.memberships
        membership.deactivated_at = utcnow()
    http.cookies.clear()

    response = sign_in_through_provider(http, live_server)
    assert_clear_failure(response, 403, "Your Procflow account is deactivated")
    assert not signed_in(http, live_server)


def test_the_provider_refusing_is_said_plainly(
    live_server: str, http: requests.Session, provider: OIDCTestProvider
) -> None:
    provider.auto_user = "u-anna"
    provider.refuse = True
    response = sign_in_through_provider(http, live_server)

    assert_clear_failure(response, 400, "Region Norr ID did not sign you in.")
    assert "access_denied" in response.text
    assert not signed_in(http, live_server)


def _provider_answer(http: requests.Session, live_server: str) -> str:
    """Go to the provider and back up to (not into) the callback; return the callback URL."""
    to_provider = http.get(f"{live_server}/sso/norr/login", allow_redirects=False, timeout=30)
    assert to_provider.status_code == 302
    back = http.get(to_provider.headers["Location"], allow_redirects=False, timeout=30)
    assert back.status_code == 302
    return str(back.headers["Location"])


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_a_wrong_state_is_refused(
    live_server: str, http: requests.Session, provider: OIDCTestProvider, session_factory: Any
) -> None:
    provider.auto_user = "u-anna"
    callback = _provider_answer(http, live_server)

    response = http.get(_with_query(callback, state="forged-state"), timeout=30)
    assert_clear_failure(response, 400, "This sign-in was not started here")
    assert not signed_in(http, live_server)
    assert stored(session_factory, "anna.lind") is None


def test_a_callback_carried_to_another_browser_is_refused(
    live_server: str, http: requests.Session, provider: OIDCTestProvider, session_factory: Any
) -> None:
    provider.auto_user = "u-anna"
    callback = _provider_answer(http, live_server)

    with requests.Session() as other_browser:
        response = other_browser.get(callback, timeout=30)
        assert_clear_failure(response, 400, "This sign-in was not started here")
        assert not signed_in(other_browser, live_server)
    assert stored(session_factory, "anna.lind") is None


def test_a_callback_is_good_once(
    live_server: str, http: requests.Session, provider: OIDCTestProvider
) -> None:
    provider.auto_user = "u-anna"
    callback = _provider_answer(http, live_server)
    assert http.get(callback, timeout=30).status_code == 200
    http.cookies.clear()

    response = http.get(callback, timeout=30)
    assert_clear_failure(response, 400, "This sign-in was not started here")


@pytest.mark.parametrize(
    ("misbehaviour", "reason"),
    [
        ({"nonce_override": "a-nonce-from-another-sign-in"}, "nonce"),
        ({"audience_override": "another-client"}, "azp"),  # aud lacks this client: azp would have to say so
        ({"sign_with_unknown_key": True}, "signature"),
    ],
)
def test_an_id_token_that_does_not_verify_is_refused(
    live_server: str,
    http: requests.Session,
    provider: OIDCTestProvider,
    session_factory: Any,
    misbehaviour: dict[str, Any],
    reason: str,
) -> None:
    provider.auto_user = "u-anna"
    for name, value in misbehaviour.items():
        setattr(provider, name, value)
    response = sign_in_through_provider(http, live_server)

    assert_clear_failure(response, 400, "The answer from Region Norr ID could not be verified")
    assert reason in response.text.lower()
    assert not signed_in(http, live_server)
    assert stored(session_factory, "anna.lind") is None


def test_a_provider_that_does_not_answer_gets_a_clear_page(live_server: str, http: requests.Session) -> None:
    response = http.get(f"{live_server}/sso/gone/login", timeout=30)
    assert_clear_failure(response, 502, "Closed ID cannot be used right now")


def test_an_unknown_provider_is_not_found(live_server: str, http: requests.Session) -> None:
    assert http.get(f"{live_server}/sso/nobody/login", timeout=30).status_code == 404
    assert http.get(f"{live_server}/sso/nobody/callback?code=x&state=y", timeout=30).status_code == 404


# -- the setting, checked when the app starts ------------------------------------------------------

GOOD = {
    "key": "norr",
    "name": "Region Norr",
    "issuer": "https://id.norr.example",
    "client_id": "procflow",
    "client_secret": "secret",
    "organisation": "north",
    "roles": {"default": ["requester"]},
}


def _load(providers: Any) -> dict[str, Any]:
    return load_config({"TESTING": True, "OIDC_PROVIDERS": providers}, environ={})


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"client_secret": None}, "provider 'norr', field 'client_secret': missing"),
        ({"key": "Norr Region"}, "provider 'Norr Region', field 'key'"),
        ({"issuer": "http://id.norr.example"}, "provider 'norr', field 'issuer': must be an https URL"),
        ({"scopes": ["profile"]}, "provider 'norr', field 'scopes': must include 'openid'"),
        ({"client_secert": "typo"}, "provider 'norr', field 'client_secert': unknown field"),
        ({"organisation": None}, "provider 'norr', field 'organisation': missing"),
        ({"organisation": {"claim": "org", "map": {}}}, "field 'organisation.map'"),
        (
            {"roles": {"claim": "roles", "map": {"it": "superuser"}}},
            "provider 'norr', field 'roles.map.it': unknown role 'superuser'",
        ),
        ({"groups": {"claim": "", "map": {"a": "b"}}}, "provider 'norr', field 'groups.claim'"),
    ],
)
def test_a_misconfigured_provider_stops_the_start_naming_provider_and_field(
    change: dict[str, Any], expected: str
) -> None:
    entry = {k: v for k, v in (GOOD | change).items() if v is not None}
    with pytest.raises(ConfigurationError) as caught:
        _load(json.dumps([entry]))
    assert str(caught.value).startswith("PROCFLOW_OIDC_PROVIDERS: ")
    assert expected in str(caught.value)


def test_the_setting_from_a_file_and_its_mistakes(tmp_path: Path) -> None:
    path = tmp_path / "providers.json"
    path.write_text(json.dumps([GOOD]), encoding="utf-8")
    (provider,) = _load(f"@{path}")["OIDC_PROVIDERS"]
    assert (provider.key, provider.discovery_url) == (
        "norr",
        "https://id.norr.example/.well-known/openid-configuration",
    )
    assert "secret" not in repr(provider)

    path.write_text("[{", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"providers.json\) is not valid JSON: .* line 1"):
        _load(f"@{path}")
    with pytest.raises(ConfigurationError, match="cannot read"):
        _load(f"@{tmp_path / 'missing.json'}")
    with pytest.raises(ConfigurationError, match="provider 'norr', field 'key': used twice"):
        _load([GOOD, GOOD])
    with pytest.raises(ConfigurationError, match="must be a JSON list"):
        _load('{"key": "norr"}')


def test_the_environment_variable_is_read() -> None:
    config = load_config({"TESTING": True}, environ={"PROCFLOW_OIDC_PROVIDERS": json.dumps([GOOD])})
    assert [p.key for p in config["OIDC_PROVIDERS"]] == ["norr"]
    assert load_config({"TESTING": True}, environ={})["OIDC_PROVIDERS"] == ()
