"""``/api/v1/messages`` and ``/api/v1/contact-intake``: messages into the organisation's cases.

A message reaches the cases waiting for it whose correlation values match (a
process's correlation properties say which payload values those are), or
starts a case of a process that starts on it. The contact intake is the one
the purchasing body's web form calls: only a service account's token may use it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from flask import g
from flask_smorest import Blueprint

import engine

from ..db import db_session
from .auth import authenticate
from .problems import init_blueprint
from .schemas import contact_schema, delivered_schema, message_schema

bp = Blueprint("api_v1_messages", __name__, url_prefix="/api/v1", description="Messages and contact intake.")
bp.before_request(authenticate)
init_blueprint(bp)

CONTACT_MESSAGE = "contact_received"


@bp.route("/messages", methods=["POST"])
@bp.arguments(message_schema, as_kwargs=True)
@bp.response(202, delivered_schema)
def send_message(name: str, payload: dict[str, Any], correlation: dict[str, Any]) -> Any:
    """Send message ``name`` with ``payload``; ``correlation`` values are added to it and win.

    :raises NotFoundError: (404) nothing waits for the message and no process starts on it.
    :raises DataError: (400) a payload key is reserved, the payload nests too deep, or a
        correlation property cannot be read from it (a key it names is missing).
    """
    reached = engine.send_message(
        db_session(),
        name,
        {**payload, **correlation},
        organisation=g.organisation.key,
        user=g.user.username,
    )
    return {"instances": [instance.id for instance in reached]}


@bp.route("/contact-intake", methods=["POST"])
@bp.arguments(contact_schema)
@bp.response(202, delivered_schema)
def receive_contact(contact: dict[str, Any]) -> Any:
    """Deliver a contact from the purchasing body's web form as message ``contact_received``.

    Only a service account's token (scope ``write``) may call it. Without a
    ``contact_ref`` the case makes one; replies correlate on it.

    :raises PermissionDeniedError: (403) the token is a person's, not a service account's.
    :raises NotFoundError: (404) the organisation runs no process that starts on ``contact_received``.
    """
    db = db_session()
    if engine.api_tokens.service_account_of(db, g.api_token) is None:
        raise engine.PermissionDeniedError("The contact intake takes a service account's token only")
    if not contact.get("contact_ref"):
        # The customer's replies correlate on the reference: a contact from the form always has one.
        contact = {
            **contact,
            "contact_ref": f"WEB-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}",
        }
    reached = engine.send_message(
        db, CONTACT_MESSAGE, contact, organisation=g.organisation.key, user=g.user.username
    )
    return {"instances": [instance.id for instance in reached]}
