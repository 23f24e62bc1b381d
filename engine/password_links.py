"""One-time links to set a password: how a user an admin added gets into Procflow.

An admin makes a link for a user (:func:`issue_password_link`): a random token
of 32 bytes, stored only as its SHA-256, valid for ``LINK_VALID_FOR``. The
token is returned once, for the admin to see, and e-mailed to the user
through the outbox when they have an address. Making a new link ends the
user's older unused ones. Using the link (:func:`set_password_with_link`)
sets the password and spends the link, once, whichever process serves it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so

from .admin_audit import record_admin_action
from .errors import FormValidationError, NotFoundError
from .identity import _hasher
from .models import Job, Membership, OutboxMessage, PasswordLink, User, utcnow
from .notifications import _organisation_locale, base_url

LINK_VALID_FOR = dt.timedelta(days=7)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
# Say nothing of why a link does not work (unknown, used, expired): whoever holds a guess learns nothing.
INVALID_LINK = "This link to set a password is not valid"

# The e-mail with the link, in each language the app speaks (the worker sends it; no Flask here).
_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "subject": "Set your Procflow password ({organisation})",
        "body": "Hello {name},\n\n{organisation} has given you a Procflow account: your username is "
        "{username}.\n\n"
        "Set your password here (the link works once, until {expires} UTC):\n{url}\n\n"
        "If you did not expect this e-mail, you can ignore it.\n",
    },
    "sv": {
        "subject": "Välj ditt lösenord till Procflow ({organisation})",
        "body": "Hej {name}!\n\n{organisation} har skapat ett Procflow-konto åt dig: ditt användarnamn är "
        "{username}.\n\nVälj ditt lösenord här (länken fungerar en gång, till {expires} UTC):\n{url}\n\n"
        "Om du inte väntade dig det här meddelandet kan du bortse från det.\n",
    },
    "fi": {
        "subject": "Aseta Procflow-salasanasi ({organisation})",
        "body": "Hei {name},\n\n{organisation} on luonut sinulle Procflow-tunnuksen: käyttäjätunnuksesi on "
        "{username}.\n\nAseta salasanasi tästä (linkki toimii kerran, {expires} UTC asti):\n{url}\n\n"
        "Jos et odottanut tätä viestiä, voit jättää sen huomiotta.\n",
    },
}


@dataclass(frozen=True)
class IssuedLink:
    """A link just made: its token (shown once, never stored), its expiry, and where it was e-mailed."""

    token: str
    expires_at: dt.datetime
    emailed_to: str | None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def password_link_path(token: str) -> str:
    """Return the path of the page that sets a password with *token* (the web serves it)."""
    return f"/password/{token}"


def issue_password_link(
    session: so.Session,
    membership: Membership,
    *,
    actor: str | None,
    organisation_name: str,
) -> IssuedLink:
    """Make a new one-time link for the member's user and e-mail it to them if they have an address.

    The user's older unused links stop working. The e-mail (an outbox message and
    its ``outbox`` job) is in the user's language, else the organisation's (as
    for task e-mails); its link starts with ``PROCFLOW_BASE_URL``.
    Audited as ``admin.password_link_issued``. Runs in the caller's transaction.
    """
    user = membership.user
    now = utcnow()
    session.execute(
        sa.update(PasswordLink)
        .where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None), PasswordLink.expires_at > now)
        .values(expires_at=now)
    )
    token = secrets.token_urlsafe(32)
    expires_at = now + LINK_VALID_FOR
    session.add(
        PasswordLink(
            user_id=user.id,
            token_hash=_token_hash(token),
            created_at=now,
            created_by=actor,
            expires_at=expires_at,
        )
    )
    emailed_to = None
    if user.email:
        chosen = user.language or _organisation_locale(session, membership.organisation_id)[0]
        text = _TEXTS[chosen if chosen in _TEXTS else "en"]
        values = {
            "name": user.display_name or user.username,
            "username": user.username,
            "organisation": organisation_name,
            "expires": f"{expires_at:%Y-%m-%d %H:%M}",
            "url": base_url() + password_link_path(token),
        }
        message = OutboxMessage(
            organisation_id=membership.organisation_id,
            recipient=user.email,
            subject=text["subject"].format(**values),
            body=text["body"].format(**values),
            created_at=now,
        )
        session.add(message)
        session.flush()
        session.add(
            Job(
                kind="outbox",
                organisation_id=membership.organisation_id,
                due_at=now,
                payload={"outbox_message_id": message.id},
            )
        )
        emailed_to = user.email
    session.flush()
    record_admin_action(
        session,
        organisation_id=membership.organisation_id,
        actor=actor,
        action="password_link_issued",
        target=f"user {user.username}",
        after={"expires_at": expires_at, "emailed_to": emailed_to},
    )
    return IssuedLink(token=token, expires_at=expires_at, emailed_to=emailed_to)


def latest_link(session: so.Session, user: User) -> PasswordLink | None:
    """Return the user's newest password link (used, expired or not), if any."""
    return session.scalar(
        sa.select(PasswordLink)
        .where(PasswordLink.user_id == user.id)
        .order_by(PasswordLink.created_at.desc(), PasswordLink.id.desc())
        .limit(1)
    )


def _active_link(session: so.Session, token: str) -> PasswordLink:
    link = session.scalar(sa.select(PasswordLink).where(PasswordLink.token_hash == _token_hash(token)))
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        raise NotFoundError(INVALID_LINK)
    active = session.scalar(
        sa.select(sa.func.count())
        .select_from(Membership)
        .where(Membership.user_id == link.user_id, Membership.deactivated_at.is_(None))
    )
    if not active or not link.user.is_active:
        raise NotFoundError(INVALID_LINK)
    return link


def password_link_user(session: so.Session, token: str) -> User:
    """Return the user whose password *token* may set.

    :raises NotFoundError: (``INVALID_LINK``, the same for every reason) the link is
        unknown, used or expired, or its user has no active membership.
    """
    return _active_link(session, token).user


def check_new_password(password: str, repeated: str, *, username: str) -> None:
    """Check a new password and its repetition.

    :raises FormValidationError: naming the field (``password``, ``repeat``):
        too short or too long, the username itself, or the two differ.
    """
    errors: dict[str, list[str]] = {}
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = [f"Use at least {MIN_PASSWORD_LENGTH} characters"]
    elif len(password) > MAX_PASSWORD_LENGTH:
        errors["password"] = [f"Use at most {MAX_PASSWORD_LENGTH} characters"]
    elif password.strip().lower() == username.lower():
        errors["password"] = ["Do not use your username as your password"]
    if not errors and password != repeated:
        errors["repeat"] = ["The two passwords differ"]
    if errors:
        raise FormValidationError(errors)


def set_password_with_link(session: so.Session, token: str, password: str, repeated: str) -> User:
    """Set the password of the link's user and spend the link; return the user.

    Spending is one conditional UPDATE (``used_at`` still NULL): of two uses at
    once, in any processes, one wins and the other gets ``NotFoundError``.
    Recorded in the audit log of each organisation the user is active in
    (``admin.password_set``, by the user). Runs in the caller's transaction.

    :raises NotFoundError: (``INVALID_LINK``) see :func:`password_link_user`.
    :raises FormValidationError: the password is refused (see :func:`check_new_password`).
    """
    link = _active_link(session, token)
    user = link.user
    check_new_password(password, repeated, username=user.username)
    now = utcnow()
    spent = session.execute(
        sa.update(PasswordLink)
        .where(PasswordLink.id == link.id, PasswordLink.used_at.is_(None), PasswordLink.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFoundError(INVALID_LINK)
    user.password_hash = _hasher.hash(password)
    session.flush()
    organisation_ids = session.scalars(
        sa.select(Membership.organisation_id).where(
            Membership.user_id == user.id, Membership.deactivated_at.is_(None)
        )
    )
    for organisation_id in organisation_ids:
        record_admin_action(
            session,
            organisation_id=organisation_id,
            actor=user.username,
            action="password_set",
            target=f"user {user.username}",
            after={"with_link_made_by": link.created_by},
        )
    return user
