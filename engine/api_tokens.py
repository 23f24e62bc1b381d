"""Bearer tokens of the REST API, and service accounts: who calls ``/api/v1`` and with what rights.

A token belongs to one user in one organisation. It is a random string shown
once when it is made (:func:`create_token`) and stored only as its SHA-256;
it has an expiry and scopes: ``read`` (GET) and ``write`` (everything that
changes something; a write token also reads). What the token's user may do is
decided at each call by their membership there (roles, groups, active), as for
the same person signed in — a token never grants more than its user has.

A service account (:func:`create_service_account`) is a system that calls the
API for an organisation (the purchasing body's web form, an e-procurement
platform): its own user without a password, so it cannot sign in, with the
roles an admin gave it. Removing it revokes its tokens.

Making and revoking tokens and service accounts are admin actions in the audit
log (``admin.api_token_created`` ...), whoever does them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so

from .accounts import deactivate_member
from .admin_audit import record_admin_action
from .errors import FormValidationError, NotFoundError, ProcflowError
from .identity import ROLES, add_user, get_organisation, get_user, membership_of
from .models import ApiToken, Membership, ServiceAccount, User, utcnow

SCOPES = ("read", "write")
DEFAULT_VALID_DAYS = 90
MAX_VALID_DAYS = 366
TOKEN_PREFIX = "pf_"
# How stale ``last_used_at`` may get before a call writes it again: not one write per call.
LAST_USED_RESOLUTION = dt.timedelta(minutes=5)
_SERVICE_USER = re.compile(r"[^a-z0-9]+")


class TokenRejectedError(ProcflowError):
    """A bearer token is unknown, expired, revoked, or its user may no longer act in its organisation.

    The message says which, for the caller's log; the API answers 401 to all alike.
    """


@dataclass(frozen=True)
class IssuedToken:
    """A token just made: the secret (shown once, never stored) and its row."""

    token: str
    record: ApiToken

    @property
    def expires_at(self) -> dt.datetime:
        """Return when the token stops working."""
        return self.record.expires_at


def token_hash(token: str) -> str:
    """Return the SHA-256 (hex) under which *token* is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def checked_scopes(scopes: Iterable[str]) -> list[str]:
    """Return *scopes* as stored: ``write`` implies ``read``.

    :raises FormValidationError: (field ``scopes``) none, or one that is neither ``read`` nor ``write``.
    """
    chosen = set(scopes)
    unknown = sorted(chosen - set(SCOPES))
    if unknown or not chosen:
        raise FormValidationError(
            {"scopes": [f"Choose read or write (not {', '.join(unknown) or 'nothing'})."]}
        )
    if "write" in chosen:
        chosen.add("read")
    return [scope for scope in SCOPES if scope in chosen]


def _checked_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise FormValidationError({"name": ["Give the token a name that says where it is used."]})
    if len(name) > 200:
        raise FormValidationError({"name": ["At most 200 characters."]})
    return name


def _checked_days(valid_days: int) -> int:
    if not 1 <= valid_days <= MAX_VALID_DAYS:
        raise FormValidationError({"valid_days": [f"A whole number of days from 1 to {MAX_VALID_DAYS}."]})
    return valid_days


def _active_membership(session: so.Session, user: User, organisation_id: int) -> Membership | None:
    membership = membership_of(session, user, organisation_id)
    if membership is None or membership.deactivated_at is not None or not user.is_active:
        return None
    return membership


def create_token(
    session: so.Session,
    *,
    username: str,
    organisation: str,
    name: str,
    scopes: Iterable[str] = ("read",),
    valid_days: int = DEFAULT_VALID_DAYS,
    actor: str | None,
) -> IssuedToken:
    """Make a token for *username* in *organisation*; the secret is in the result only.

    *actor* is who makes it (the user themself, an admin, ``None``: the command line).
    Audited as ``admin.api_token_created`` (never with the secret). Runs in the caller's transaction.

    :raises NotFoundError: no such organisation, or the user is not an active member of it.
    :raises FormValidationError: no name, unknown scopes, or *valid_days* outside 1..``MAX_VALID_DAYS``;
        names each field.
    """
    org = get_organisation(session, organisation)
    try:
        user = get_user(session, username)
    except NotFoundError:
        raise NotFoundError(f"No user {username!r} in organisation {organisation!r}") from None
    if _active_membership(session, user, org.id) is None:
        raise NotFoundError(f"No user {username!r} in organisation {organisation!r}")
    errors: dict[str, list[str]] = {}
    checks = (
        ("name", lambda: _checked_name(name)),
        ("scopes", lambda: checked_scopes(scopes)),
        ("valid_days", lambda: _checked_days(valid_days)),
    )
    values: dict[str, object] = {}
    for field, check in checks:
        try:
            values[field] = check()
        except FormValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise FormValidationError(errors)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    record = ApiToken(
        organisation_id=org.id,
        user_id=user.id,
        name=values["name"],
        token_hash=token_hash(secret),
        hint=secret[: len(TOKEN_PREFIX) + 6],
        scopes=values["scopes"],
        created_at=now,
        created_by=actor,
        expires_at=now + dt.timedelta(days=valid_days),
    )
    record.user = user
    session.add(record)
    session.flush()
    record_admin_action(
        session,
        organisation_id=org.id,
        actor=actor,
        action="api_token_created",
        target=f"token {record.hint}… of {user.username}",
        after={"name": record.name, "scopes": record.scopes, "expires_at": record.expires_at.isoformat()},
    )
    return IssuedToken(secret, record)


def list_tokens(session: so.Session, *, organisation_id: int, user_id: int | None = None) -> list[ApiToken]:
    """Return the organisation's tokens (only *user_id*'s when given), newest first, revoked ones too."""
    stmt = (
        sa.select(ApiToken)
        .options(so.joinedload(ApiToken.user))
        .where(ApiToken.organisation_id == organisation_id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    if user_id is not None:
        stmt = stmt.where(ApiToken.user_id == user_id)
    return list(session.scalars(stmt))


def revoke_token(
    session: so.Session, token_id: int, *, organisation_id: int, user_id: int | None = None, actor: str | None
) -> ApiToken:
    """Revoke token *token_id* of the organisation (only if it is *user_id*'s, when given); it stops at once.

    Revoking a revoked token changes nothing. Audited as ``admin.api_token_revoked``.

    :raises NotFoundError: no such token in the organisation (or not the user's).
    """
    record = session.get(ApiToken, token_id)
    if (
        record is None
        or record.organisation_id != organisation_id
        or (user_id is not None and record.user_id != user_id)
    ):
        raise NotFoundError(f"No token {token_id}")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        record.revoked_by = actor
        session.flush()
        record_admin_action(
            session,
            organisation_id=organisation_id,
            actor=actor,
            action="api_token_revoked",
            target=f"token {record.hint}… of {record.user.username}",
            before={"name": record.name, "scopes": record.scopes},
        )
    return record


def authenticate_token(session: so.Session, token: str) -> tuple[ApiToken, Membership]:
    """Return the token *token* and its user's membership in the token's organisation.

    Notes when it was used (at most every ``LAST_USED_RESOLUTION``).

    :raises TokenRejectedError: unknown, revoked or expired, or the user is no longer an
        active member of the organisation.
    """
    record = session.scalar(
        sa.select(ApiToken)
        .options(so.joinedload(ApiToken.user))
        .where(ApiToken.token_hash == token_hash(token))
    )
    if record is None:
        raise TokenRejectedError("Unknown token")
    now = utcnow()
    if record.revoked_at is not None:
        raise TokenRejectedError(f"Token {record.hint}… was revoked")
    if record.expires_at <= now:
        raise TokenRejectedError(f"Token {record.hint}… expired at {record.expires_at:%Y-%m-%d %H:%M} UTC")
    membership = _active_membership(session, record.user, record.organisation_id)
    if membership is None:
        raise TokenRejectedError(f"The user of token {record.hint}… may no longer act in its organisation")
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
        record.last_used_at = now
    return record, membership


def _service_username(organisation_key: str, name: str) -> str:
    slug = _SERVICE_USER.sub("-", name.lower()).strip("-")[:40] or "system"
    return f"service.{organisation_key}.{slug}.{secrets.token_hex(3)}"


def create_service_account(
    session: so.Session,
    *,
    organisation: str,
    name: str,
    roles: Iterable[str] = ("requester",),
    groups: Iterable[str] = (),
    actor: str | None,
) -> ServiceAccount:
    """Add a service account to *organisation*: a user without a password, with *roles* and *groups*.

    Audited as ``admin.service_account_created``. Runs in the caller's transaction.

    :raises NotFoundError: no such organisation.
    :raises FormValidationError: no name (field ``name``), or an unknown role (field ``roles``).
    """
    org = get_organisation(session, organisation)
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    if not name or len(name) > 200:
        errors["name"] = ["Give the service account a name of at most 200 characters."]
    chosen = sorted(set(roles))
    unknown = sorted(set(chosen) - set(ROLES))
    if unknown or not chosen:
        errors["roles"] = [f"Choose roles among {', '.join(ROLES)}."]
    if errors:
        raise FormValidationError(errors)
    user = add_user(
        session,
        _service_username(org.key, name),
        organisation=org.key,
        roles=chosen,
        groups=list(groups),
        display_name=name,
    )
    user.notify_by_email = False
    account = ServiceAccount(organisation_id=org.id, user_id=user.id, name=name, created_by=actor)
    account.user = user
    session.add(account)
    session.flush()
    record_admin_action(
        session,
        organisation_id=org.id,
        actor=actor,
        action="service_account_created",
        target=f"service account {name}",
        after={"username": user.username, "roles": chosen, "groups": sorted(set(groups))},
    )
    return account


def list_service_accounts(session: so.Session, *, organisation_id: int) -> list[ServiceAccount]:
    """Return the organisation's service accounts, active ones first, by name."""
    stmt = (
        sa.select(ServiceAccount)
        .options(so.joinedload(ServiceAccount.user))
        .where(ServiceAccount.organisation_id == organisation_id)
        .order_by(ServiceAccount.deactivated_at.is_not(None), ServiceAccount.name, ServiceAccount.id)
    )
    return list(session.scalars(stmt))


def get_service_account(session: so.Session, account_id: int, *, organisation_id: int) -> ServiceAccount:
    """Return service account *account_id* of the organisation.

    :raises NotFoundError: no such service account there.
    """
    account = session.get(ServiceAccount, account_id)
    if account is None or account.organisation_id != organisation_id:
        raise NotFoundError(f"No service account {account_id}")
    return account


def service_account_of(session: so.Session, token: ApiToken) -> ServiceAccount | None:
    """Return the active service account whose token *token* is, or ``None`` (a person's token)."""
    return session.scalar(
        sa.select(ServiceAccount).where(
            ServiceAccount.user_id == token.user_id,
            ServiceAccount.organisation_id == token.organisation_id,
            ServiceAccount.deactivated_at.is_(None),
        )
    )


def remove_service_account(session: so.Session, account: ServiceAccount, *, actor: str | None) -> None:
    """Remove a service account: its tokens are revoked and its membership deactivated (kept for history).

    Audited as ``admin.service_account_removed``. Removing a removed account changes nothing.
    """
    if account.deactivated_at is not None:
        return
    now = utcnow()
    account.deactivated_at = now
    session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == account.user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=actor)
    )
    membership = membership_of(session, account.user, account.organisation_id)
    if membership is not None:
        deactivate_member(session, membership, actor=actor)
    session.flush()
    record_admin_action(
        session,
        organisation_id=account.organisation_id,
        actor=actor,
        action="service_account_removed",
        target=f"service account {account.name}",
        before={"username": account.user.username},
    )
