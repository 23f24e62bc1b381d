"""Users who sign in through an OpenID Connect provider: found by (issuer, subject), kept in step.

A provider's ID token names the user (``sub``, unique at its ``iss``) and
says, in claims, which organisation they belong to and what they do there.
:class:`IdentityMapping` is how one provider's claims translate into Procflow
(fixed organisation or a claim's value; roles and groups from claim values);
:func:`sign_in_external_identity` applies it on every sign-in.

Roles and groups that a mapping names *follow the claims*: the ones the claims
give are added, the ones they no longer give are taken away. Roles and groups
an admin gave by hand that the mapping never names are left alone.

A user is linked to a provider only by (issuer, subject), never by username: a
provider account called ``alice`` does not take over a local ``alice``; the
sign-in is refused instead, and an admin decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from .admin_audit import record_admin_action
from .errors import ProcflowError
from .identity import ROLES
from .models import AuditEvent, ExternalIdentity, Group, Membership, Organisation, User, utcnow

# The audit kinds of a sign-in through a provider, and of the account it created.
SSO_SIGNED_IN = "sso_signed_in"
SSO_USER_CREATED = "sso_user_created"

_USERNAME_LENGTH = 120  # user_account.username is String(120)
_MEMBERSHIP_CACHE = "procflow.memberships"  # engine.identity.membership_of's per-session cache


class ExternalIdentityError(ProcflowError):
    """A provider signed someone in whom Procflow cannot let in (the claims do not map, the account is off).

    ``reason`` says why, for the page the user sees: ``missing_claim``,
    ``no_organisation``, ``several_organisations``, ``unknown_organisation``,
    ``no_role``, ``unknown_group``, ``username_taken``, ``deactivated``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class ClaimMap:
    """A claim and what its values mean: each value (a claim may hold one or a list) maps to targets."""

    claim: str
    values: Mapping[str, tuple[str, ...]]

    def targets(self, claims: Mapping[str, Any]) -> set[str]:
        """Return the targets of the values the claim has in *claims* (unmapped values count for nothing)."""
        raw = claims.get(self.claim)
        given = raw if isinstance(raw, list | tuple) else [] if raw is None else [raw]
        return {target for value in given for target in self.values.get(str(value), ())}

    def all_targets(self) -> set[str]:
        """Return every target the map can give: the ones that follow the claims."""
        return {target for targets in self.values.values() for target in targets}


@dataclass(frozen=True)
class IdentityMapping:
    """How one provider's claims become a Procflow user, organisation, roles and groups.

    Exactly one of ``organisation_key`` (everyone of this provider belongs to
    that organisation) and ``organisation`` (a claim whose value names it) is set.
    """

    provider: str
    issuer: str
    username_claim: str = "preferred_username"
    organisation_key: str | None = None
    organisation: ClaimMap | None = None
    roles: ClaimMap | None = None
    default_roles: tuple[str, ...] = ()
    groups: ClaimMap | None = None

    def __post_init__(self) -> None:
        if (self.organisation_key is None) == (self.organisation is None):
            raise ValueError("Give exactly one of organisation_key and organisation")
        unknown = sorted(
            ((self.roles.all_targets() if self.roles else set()) | set(self.default_roles)) - set(ROLES)
        )
        if unknown:
            raise ValueError(f"Unknown role(s) {', '.join(unknown)}; known roles: {', '.join(ROLES)}")


@dataclass(frozen=True)
class ExternalSignIn:
    """Who a provider signed in: the user, their membership of the mapped organisation, whether new."""

    user: User
    membership: Membership
    created: bool


def sign_in_external_identity(
    session: so.Session, mapping: IdentityMapping, claims: Mapping[str, Any]
) -> ExternalSignIn:
    """Find or create the user of validated ID-token *claims* and bring their membership in step with them.

    The user is the one linked to (``mapping.issuer``, ``sub``); the first sign-in
    creates them (username from ``mapping.username_claim``, display name from
    ``name``, e-mail from ``email``) and links them. The membership of the mapped
    organisation is created if needed; the roles and groups the mapping names are
    set from the claims. Records an audit event ``sso_signed_in`` (and
    ``sso_user_created`` for a new user) in the organisation, and an admin action
    ``admin.sso_membership_synced`` when roles or groups changed.

    Runs in the caller's transaction: if this raises, roll it back.

    :raises ExternalIdentityError: a needed claim is missing; the claims map to no
        organisation, to several, or to one that does not exist; they give no role;
        a mapped group does not exist; a new user's username belongs to another
        account; the user or their membership is deactivated.
    """
    subject = _text_claim(claims, "sub", mapping)
    organisation = _organisation(session, mapping, claims)
    mapped_roles = (mapping.roles.targets(claims) if mapping.roles else set()) | set(mapping.default_roles)
    mapped_groups = _groups(session, mapping, organisation, claims)

    identity = session.scalar(
        sa.select(ExternalIdentity).where(
            ExternalIdentity.issuer == mapping.issuer, ExternalIdentity.subject == subject
        )
    )
    created = identity is None
    if identity is None:
        user = _new_user(session, mapping, claims)
        identity = ExternalIdentity(user=user, issuer=mapping.issuer, subject=subject)
        session.add(identity)
    else:
        user = identity.user
        if not user.is_active:
            raise ExternalIdentityError(f"The account {user.username!r} is deactivated", reason="deactivated")
    for claim, attribute in (("name", "display_name"), ("email", "email")):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            setattr(user, attribute, value.strip()[:200])

    membership = None
    if not created:
        membership = session.scalar(
            sa.select(Membership).where(
                Membership.user_id == user.id, Membership.organisation_id == organisation.id
            )
        )
    if membership is not None and membership.deactivated_at is not None:
        raise ExternalIdentityError(
            f"The account {user.username!r} is deactivated in {organisation.name}", reason="deactivated"
        )
    if membership is None:
        membership = Membership(user=user, organisation=organisation, roles=[])
        session.add(membership)
    before = {"roles": sorted(membership.roles), "groups": sorted(g.key for g in membership.groups)}
    managed_roles = (mapping.roles.all_targets() if mapping.roles else set()) | set(mapping.default_roles)
    roles = (set(membership.roles) - managed_roles) | mapped_roles
    if not roles:
        raise ExternalIdentityError(
            f"The claims of provider {mapping.provider!r} give {user.username!r} "
            f"no role in {organisation.name}",
            reason="no_role",
        )
    membership.roles = sorted(roles)
    managed_groups = mapping.groups.all_targets() if mapping.groups else set()
    kept = [g for g in membership.groups if g.key not in managed_groups]
    membership.groups = sorted([*kept, *mapped_groups], key=lambda g: g.key)
    identity.last_sign_in_at = utcnow()
    session.info.pop(_MEMBERSHIP_CACHE, None)
    session.flush()

    after = {"roles": sorted(membership.roles), "groups": sorted(g.key for g in membership.groups)}
    actor = f"sso:{mapping.provider}"
    detail = {"provider": mapping.provider, "issuer": mapping.issuer, "subject": subject, **after}
    if created:
        _audit(session, organisation, user, SSO_USER_CREATED, detail)
    if after != before:
        record_admin_action(
            session,
            organisation_id=organisation.id,
            actor=actor,
            action="sso_membership_synced",
            target=f"user {user.username}",
            before=None if created else before,
            after=after,
        )
    _audit(session, organisation, user, SSO_SIGNED_IN, detail)
    return ExternalSignIn(user=user, membership=membership, created=created)


def _text_claim(claims: Mapping[str, Any], name: str, mapping: IdentityMapping) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ExternalIdentityError(
            f"The ID token of provider {mapping.provider!r} has no {name!r} claim", reason="missing_claim"
        )
    return value.strip()


def _organisation(session: so.Session, mapping: IdentityMapping, claims: Mapping[str, Any]) -> Organisation:
    if mapping.organisation_key is not None:
        keys = {mapping.organisation_key}
    else:
        assert mapping.organisation is not None
        keys = mapping.organisation.targets(claims)
        if not keys:
            raise ExternalIdentityError(
                f"Claim {mapping.organisation.claim!r} of provider {mapping.provider!r} "
                f"({claims.get(mapping.organisation.claim)!r}) maps to no organisation",
                reason="no_organisation",
            )
        if len(keys) > 1:
            raise ExternalIdentityError(
                f"Claim {mapping.organisation.claim!r} of provider {mapping.provider!r} maps to "
                f"several organisations ({', '.join(sorted(keys))})",
                reason="several_organisations",
            )
    (key,) = keys
    organisation = session.scalar(sa.select(Organisation).where(Organisation.key == key))
    if organisation is None:
        raise ExternalIdentityError(
            f"Provider {mapping.provider!r} maps to organisation {key!r}, which does not exist",
            reason="unknown_organisation",
        )
    return organisation


def _groups(
    session: so.Session, mapping: IdentityMapping, organisation: Organisation, claims: Mapping[str, Any]
) -> list[Group]:
    keys = mapping.groups.targets(claims) if mapping.groups else set()
    if not keys:
        return []
    groups = list(
        session.scalars(
            sa.select(Group).where(Group.organisation_id == organisation.id, Group.key.in_(sorted(keys)))
        )
    )
    missing = sorted(keys - {g.key for g in groups})
    if missing:
        raise ExternalIdentityError(
            f"Provider {mapping.provider!r} maps to group(s) {', '.join(missing)}, "
            f"which {organisation.name} does not have",
            reason="unknown_group",
        )
    return groups


def _new_user(session: so.Session, mapping: IdentityMapping, claims: Mapping[str, Any]) -> User:
    username = _text_claim(claims, mapping.username_claim, mapping)
    if len(username) > _USERNAME_LENGTH:
        raise ExternalIdentityError(
            f"Claim {mapping.username_claim!r} of provider {mapping.provider!r} is longer than "
            f"{_USERNAME_LENGTH} characters",
            reason="missing_claim",
        )
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise ExternalIdentityError(
            f"An account named {username!r} exists and is not linked to provider {mapping.provider!r}",
            reason="username_taken",
        )
    user = User(username=username, display_name=username, password_hash=None)
    session.add(user)
    return user


def _audit(
    session: so.Session, organisation: Organisation, user: User, kind: str, detail: dict[str, Any]
) -> None:
    session.add(
        AuditEvent(
            organisation_id=organisation.id,
            at=utcnow(),
            actor=user.username,
            kind=kind,
            element=f"user {user.username}"[:200],
            detail=detail,
        )
    )
    session.flush()
