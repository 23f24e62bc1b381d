"""Users of an OpenID Connect provider: found by (issuer, subject), kept in step with their claims.

The whole flow through a real provider is in tests/web/test_sso.py; these are
the mapping rules, each checked against what the database holds afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine

ISSUER = "https://id.norr.example"


def mapping(**changes: Any) -> engine.IdentityMapping:
    values: dict[str, Any] = {
        "provider": "norr",
        "issuer": ISSUER,
        "organisation": engine.ClaimMap("org", {"N": ("north",), "S": ("south",), "X": ("nowhere",)}),
        "roles": engine.ClaimMap("roles", {"buyers": ("case_handler",), "it": ("admin", "case_handler")}),
        "groups": engine.ClaimMap(
            "groups", {"buyers": ("handlers",), "approvers": ("approvers",), "cafe": ("canteen",)}
        ),
    }
    return engine.IdentityMapping(**(values | changes))


def claims(**changes: Any) -> dict[str, Any]:
    return {
        "sub": "s-1",
        "preferred_username": "kim",
        "org": "N",
        "roles": ["buyers"],
        "groups": [],
    } | changes


def membership(
    session_factory: so.sessionmaker[so.Session], username: str, org: str
) -> tuple[list[str], list[str]]:
    with session_factory() as s:
        user = engine.get_user(s, username)
        found = engine.membership_of(s, user, engine.get_organisation(s, org).id)
        assert found is not None
        return sorted(found.roles), sorted(g.key for g in found.groups)


def sign_in(session_factory: so.sessionmaker[so.Session], given: dict[str, Any], **changes: Any) -> Any:
    with session_factory.begin() as s:
        return engine.sign_in_external_identity(s, mapping(**changes), given).created


def test_hand_given_groups_and_roles_stay_mapped_ones_follow_the_claims(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.add_user(s, "setup", organisation="north", groups=["handlers", "approvers", "requesters"])
    assert sign_in(session_factory, claims(groups=["buyers"])) is True
    with session_factory.begin() as s:
        engine.add_user(s, "kim", organisation="north", roles=["auditor"], groups=["requesters"])

    assert sign_in(session_factory, claims(roles=["it"], groups=["approvers", "unmapped"])) is False
    assert membership(session_factory, "kim", "north") == (
        ["admin", "auditor", "case_handler"],
        ["approvers", "requesters"],
    )
    with session_factory() as s:
        (identity,) = s.scalars(sa.select(engine.ExternalIdentity))
        assert (identity.issuer, identity.subject, identity.user.username) == (ISSUER, "s-1", "kim")
        assert identity.last_sign_in_at is not None


def test_the_same_subject_at_another_issuer_is_another_person(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    sign_in(session_factory, claims())
    with pytest.raises(engine.ExternalIdentityError) as caught:
        sign_in(session_factory, claims(), issuer="https://id.other.example")
    assert caught.value.reason == "username_taken"


@pytest.mark.parametrize(
    ("given", "reason", "words"),
    [
        (claims(org=["N", "S"]), "several_organisations", "several organisations (north, south)"),
        (claims(org="X"), "unknown_organisation", "organisation 'nowhere', which does not exist"),
        (claims(org=None), "no_organisation", "maps to no organisation"),
        (claims(roles=[]), "no_role", "no role in North"),
        (claims(groups=["cafe"]), "unknown_group", "group(s) canteen, which North does not have"),
        (claims(sub=""), "missing_claim", "no 'sub' claim"),
        (claims(preferred_username=None), "missing_claim", "no 'preferred_username' claim"),
        (
            claims(preferred_username="north-admin"),
            "username_taken",
            "'north-admin' exists and is not linked",
        ),
    ],
)
def test_claims_that_do_not_map_are_refused_and_nothing_is_stored(
    session_factory: so.sessionmaker[so.Session], orgs: None, given: dict[str, Any], reason: str, words: str
) -> None:
    with pytest.raises(engine.ExternalIdentityError) as caught:
        sign_in(session_factory, given)
    assert caught.value.reason == reason
    assert words in str(caught.value)
    with session_factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.ExternalIdentity)) == 0
        assert s.scalar(sa.select(engine.User).where(engine.User.username == "kim")) is None


def test_default_roles_and_a_fixed_organisation(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    sign_in(
        session_factory,
        {"sub": "s-2", "preferred_username": "lee"},
        organisation=None,
        organisation_key="south",
        roles=None,
        default_roles=("requester",),
        groups=None,
    )
    assert membership(session_factory, "lee", "south") == (["requester"], [])


def test_a_deactivated_user_or_membership_is_refused(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    sign_in(session_factory, claims())
    with session_factory.begin() as s:
        (found,) = engine.get_user(s, "kim").memberships
        found.deactivated_at = engine.models.utcnow()
    with pytest.raises(engine.ExternalIdentityError, match="deactivated in North"):
        sign_in(session_factory, claims())
    with session_factory.begin() as s:
        engine.get_user(s, "kim").is_active = False
    with pytest.raises(engine.ExternalIdentityError, match="'kim' is deactivated"):
        sign_in(session_factory, claims())


def test_a_mapping_must_name_known_roles_and_one_organisation_source() -> None:
    with pytest.raises(ValueError, match="Unknown role"):
        mapping(default_roles=("superuser",))
    with pytest.raises(ValueError, match="exactly one"):
        mapping(organisation_key="north")
