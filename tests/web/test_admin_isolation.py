"""The 404 wall: no /admin, /password or /sso page gives anything of an organisation to anyone else.

Every rule of the app's URL map under those prefixes is enumerated, so a route
added later is covered without anyone remembering to add it here. Each URL
argument is filled from :data:`ARGUMENTS` with a thing of the organisation
``north`` (a user, a group, a parameter, an instance, a job, a process of its
own); a rule with an argument the mapping does not know fails the test: say
which of north's things it takes, and the wall covers it.

- An admin of ``south`` (signed in to south, where they are an admin) gets 404
  for every GET and POST of a rule with arguments: north's things do not exist
  for them. Pages without arguments are south's own; they must not show
  north's things.
- A case handler of ``north`` gets 404 for every GET and POST under /admin.
- /password and /sso are public by design (a password link is a bearer token, a
  provider's sign-in is for anyone): a used link of north's and an unknown
  provider are 404 for both, with nothing of north's on the page.
- North's own admin does not get 404 for the GET pages with north's things:
  the values really name something, so the 404s above mean "not yours".
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask
from werkzeug.routing import Rule

import engine
from engine.models import utcnow
from engine.seed import set_parameter
from tests.conftest import FIXTURES
from tests.web.conftest import LoginAs, WebClient

Factory = so.sessionmaker[so.Session]

PREFIXES = ("/admin", "/password", "/sso")
METHODS = ("GET", "POST")

# Names only north's things have: none of them may show on a page of south's admin.
NORTH_GROUP = "north-buyers"
NORTH_PARAMETER = "north_only_limit"
NORTH_PROCESS = "approval"
USED_TOKEN = "used-north-link-token-that-set-a-password-already"
MARKERS = (NORTH_GROUP, NORTH_PARAMETER, "north-req", "north-boss")


@dataclass(frozen=True)
class NorthThings:
    """Ids and keys of things that belong to north only."""

    user_id: int
    membership_id: int
    group_id: int
    instance_id: int
    job_id: int
    definition_id: int
    version: int
    event_id: int
    token_id: int
    account_id: int


# URL argument → north's thing, by the longest matching path prefix of the rule. A rule under
# PREFIXES whose argument is not here fails test_every_argument_is_known.
ARGUMENTS: dict[tuple[str, str], Any] = {
    ("/admin", "username"): "north-req",
    ("/admin", "user_id"): lambda t: t.user_id,
    ("/admin", "membership_id"): lambda t: t.membership_id,
    ("/admin", "group_key"): NORTH_GROUP,
    ("/admin", "group_id"): lambda t: t.group_id,
    ("/admin/groups", "key"): NORTH_GROUP,
    ("/admin/parameters", "key"): NORTH_PARAMETER,
    ("/admin/parameters", "parameter_key"): NORTH_PARAMETER,
    ("/admin", "process_id"): NORTH_PROCESS,
    ("/admin/processes", "key"): NORTH_PROCESS,
    ("/admin", "instance_id"): lambda t: t.instance_id,
    ("/admin", "job_id"): lambda t: t.job_id,
    ("/admin", "incident_id"): lambda t: t.job_id,
    ("/admin", "definition_id"): lambda t: t.definition_id,
    ("/admin", "version"): lambda t: t.version,
    ("/admin", "from_version"): lambda t: t.version,
    ("/admin", "to_version"): lambda t: t.version,
    ("/admin", "event_id"): lambda t: t.event_id,
    ("/admin/tokens", "token_id"): lambda t: t.token_id,
    ("/admin/tokens", "account_id"): lambda t: t.account_id,
    ("/password", "token"): USED_TOKEN,
    ("/sso", "key"): "no-such-provider",
    ("/sso", "provider"): "no-such-provider",
}


def _rules(app: Flask) -> list[Rule]:
    return sorted(
        (rule for rule in app.url_map.iter_rules() if rule.rule.startswith(PREFIXES)),
        key=lambda rule: (rule.rule, rule.endpoint),
    )


def _argument(rule: Rule, name: str) -> Any:
    """Return north's thing for argument *name* of *rule* (KeyError: the mapping does not know it)."""
    prefixes = [prefix for prefix, argument in ARGUMENTS if argument == name and rule.rule.startswith(prefix)]
    if not prefixes:
        raise KeyError(name)
    return ARGUMENTS[(max(prefixes, key=len), name)]


def _url(rule: Rule, things: NorthThings) -> str:
    values = {}
    for name in rule.arguments:
        value = _argument(rule, name)
        values[name] = value(things) if callable(value) else value
    built = rule.build(values, append_unknown=False)
    assert built is not None, f"{rule.rule}: cannot build it from {values}"
    return built[1]


def _methods(rule: Rule) -> list[str]:
    return [method for method in METHODS if method in (rule.methods or ())]


@pytest.fixture
def north_things(session_factory: Factory, users: None) -> NorthThings:
    """North's own process, an instance of it, a failed job, a group, a parameter, a used password link,
    a service account and an API token."""
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "approval", organisation="north")
        north = engine.get_organisation(s, "north")
        instance = engine.start_instance(s, NORTH_PROCESS, organisation="north", user="north-req")
        job = engine.Job(
            kind="timer",
            status="incident",
            organisation_id=north.id,
            instance_id=instance.id,
            due_at=utcnow(),
            attempts=3,
            last_error="north's failure",
        )
        s.add(job)
        user = engine.get_user(s, "north-req")
        membership = engine.membership_of(s, user, north.id)
        assert membership is not None
        group = engine.Group(organisation_id=north.id, key=NORTH_GROUP, name="North buyers")
        s.add(group)
        set_parameter(s, NORTH_PARAMETER, 1000, organisation_id=north.id, valid_from=dt.date(2026, 1, 1))
        s.add(
            engine.PasswordLink(
                user_id=user.id,
                token_hash=hashlib.sha256(USED_TOKEN.encode()).hexdigest(),
                created_by="north-admin",
                expires_at=utcnow() + dt.timedelta(days=7),
                used_at=utcnow(),
            )
        )
        event = engine.record_admin_action(
            s, organisation_id=north.id, actor="north-admin", action="user_added", target="user north-req"
        )
        account = engine.api_tokens.create_service_account(
            s, organisation="north", name="North's web form", actor="north-admin"
        )
        token = engine.api_tokens.create_token(
            s, username="north-req", organisation="north", name="north's token", actor="north-req"
        )
        s.flush()
        definition = s.get(engine.ProcessDefinition, instance.definition_id)
        assert definition is not None
        return NorthThings(
            user_id=user.id,
            membership_id=membership.id,
            group_id=group.id,
            instance_id=instance.id,
            job_id=job.id,
            definition_id=definition.id,
            version=definition.version,
            event_id=event.id,
            token_id=token.record.id,
            account_id=account.id,
        )


def _request(client: WebClient, method: str, url: str) -> Any:
    if method == "GET":
        return client.get(url)
    return client.post(url, data={})


def _north_state(session_factory: Factory) -> Iterator[Any]:
    """What an attack that got through would change (read from the database)."""
    with session_factory() as s:
        north = engine.get_organisation(s, "north")
        yield s.scalar(
            sa.select(sa.func.count())
            .select_from(engine.AuditEvent)
            .where(engine.AuditEvent.organisation_id == north.id)
        )
        yield sorted(
            (m.user_id, m.deactivated_at, tuple(sorted(m.roles)))
            for m in s.scalars(
                sa.select(engine.Membership).where(engine.Membership.organisation_id == north.id)
            )
        )
        yield sorted(s.scalars(sa.select(engine.Group.key).where(engine.Group.organisation_id == north.id)))
        yield s.scalar(
            sa.select(sa.func.count())
            .select_from(engine.Parameter)
            .where(engine.Parameter.organisation_id == north.id)
        )
        yield sorted(
            s.execute(
                sa.select(engine.Job.id, engine.Job.status, engine.Job.attempts).where(
                    engine.Job.organisation_id == north.id
                )
            )
        )
        yield sorted(
            s.execute(
                sa.select(engine.ProcessInstance.id, engine.ProcessInstance.status).where(
                    engine.ProcessInstance.organisation_id == north.id
                )
            )
        )
        yield sorted(
            s.execute(
                sa.select(engine.ProcessSetting.process_id, engine.ProcessSetting.use_shared).where(
                    engine.ProcessSetting.organisation_id == north.id
                )
            )
        )
        yield s.scalar(sa.select(sa.func.count()).select_from(engine.PasswordLink))
        yield (north.name, north.country, north.time_zone)


def test_every_argument_is_known(app: Flask) -> None:
    """A new rule under /admin, /password or /sso takes only arguments the wall knows how to fill."""
    unknown = [
        f"{rule.rule} ({rule.endpoint}): <{name}>"
        for rule in _rules(app)
        for name in sorted(rule.arguments)
        if not any(argument == name and rule.rule.startswith(prefix) for prefix, argument in ARGUMENTS)
    ]
    assert not unknown, (
        "URL arguments the isolation test does not know; add each to ARGUMENTS in "
        f"tests/web/test_admin_isolation.py with the thing of north's it names: {unknown}"
    )


def test_an_admin_of_another_organisation_gets_404(
    app: Flask, login_as: LoginAs, north_things: NorthThings, session_factory: Factory
) -> None:
    client = login_as("admin", "south")
    before = list(_north_state(session_factory))
    not_404: list[str] = []
    leaks: list[str] = []
    for rule in _rules(app):
        url = _url(rule, north_things)
        for method in _methods(rule):
            response = _request(client, method, url)
            body = response.get_data(as_text=True)
            if (rule.arguments or not rule.rule.startswith("/admin")) and response.status_code != 404:
                not_404.append(f"{method} {url} ({rule.endpoint}): {response.status_code}")
            if method == "GET":
                # The page names its own address (the language switch returns to it): not a leak.
                shown = body.replace(url, "")
                leaks += [f"GET {url} ({rule.endpoint}) shows {m!r}" for m in MARKERS if m in shown]
    assert not not_404, f"south's admin reached north's things: {not_404}"
    assert not leaks, f"south's admin saw north's things: {leaks}"
    assert list(_north_state(session_factory)) == before, "a request of south's admin changed north's things"


def test_a_case_handler_of_the_same_organisation_gets_404(
    app: Flask, login_as: LoginAs, north_things: NorthThings, session_factory: Factory
) -> None:
    client = login_as("case_handler", "north")
    before = list(_north_state(session_factory))
    not_404 = [
        f"{method} {url} ({rule.endpoint}): {status}"
        for rule in _rules(app)
        for url in [_url(rule, north_things)]
        for method in _methods(rule)
        for status in [_request(client, method, url).status_code]
        if status != 404
    ]
    assert not not_404, f"north's case handler reached admin pages: {not_404}"
    assert list(_north_state(session_factory)) == before, (
        "a request of north's case handler changed something"
    )


def test_the_values_name_real_things_for_their_own_admin(
    app: Flask, login_as: LoginAs, north_things: NorthThings
) -> None:
    """North's admin gets each GET page with north's things: the 404s above are about who asks."""
    client = login_as("admin", "north")
    missing = [
        f"GET {url} ({rule.endpoint})"
        for rule in _rules(app)
        if rule.rule.startswith("/admin") and "GET" in _methods(rule)
        for url in [_url(rule, north_things)]
        if client.get(url).status_code == 404
    ]
    assert not missing, f"404 for north's own admin too: the mapped values name nothing there: {missing}"


def test_the_wall_covers_the_console(app: Flask) -> None:
    """The rules enumerated include the console's sections (the enumeration is not empty by mistake)."""
    endpoints = {rule.endpoint for rule in _rules(app)}
    assert {"admin.settings", "admin.audit", "admin.audit_csv"} <= endpoints
