"""Admin console: the organisation's API tokens (revoke any) and its service accounts (add, token, remove).

A service account is a system that calls the REST API for the organisation,
such as the purchasing body's web form sending contacts to ``/api/v1/contact-intake``.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

import engine

from ..db import db_session
from ..token_settings import token_errors, token_form_values
from . import bp
from .users import role_labels


def _page(status: int = 200, **values: Any) -> tuple[str, int]:
    db = db_session()
    accounts = engine.api_tokens.list_service_accounts(db, organisation_id=g.organisation.id)
    labels = role_labels()
    account_roles = {
        account.id: ", ".join(labels.get(role, role) for m in account.user.memberships for role in m.roles)
        for account in accounts
    }
    page = render_template(
        "admin/tokens.html",
        tokens=engine.api_tokens.list_tokens(db, organisation_id=g.organisation.id),
        accounts=accounts,
        account_roles=account_roles,
        roles=engine.ROLES,
        role_labels=labels,
        default_days=engine.api_tokens.DEFAULT_VALID_DAYS,
        max_days=engine.api_tokens.MAX_VALID_DAYS,
        now=engine.models.utcnow(),
        **values,
    )
    return page, status


@bp.route("/tokens")
def tokens() -> tuple[str, int]:
    """Every token of the organisation, and its service accounts."""
    return _page()


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
def tokens_revoke(token_id: int) -> Response:
    """Revoke any token of the organisation.

    :raises NotFound: (404) no such token in the organisation.
    """
    try:
        engine.api_tokens.revoke_token(
            db_session(), token_id, organisation_id=g.organisation.id, actor=g.user.username
        )
    except engine.NotFoundError:
        abort(404)
    flash(_("The token was revoked: it no longer works."), "success")
    return redirect(url_for("admin.tokens"), code=303)


@bp.route("/tokens/service-accounts", methods=["POST"])
def tokens_add_service_account() -> Any:
    """Add a service account (form: ``name``, ``roles``)."""
    try:
        account = engine.api_tokens.create_service_account(
            db_session(),
            organisation=g.organisation.key,
            name=request.form.get("name", ""),
            roles=request.form.getlist("roles"),
            actor=g.user.username,
        )
    except engine.FormValidationError as exc:
        errors = token_errors(exc)
        if "name" in exc.errors:
            errors["name"] = _("Give the service account a name (at most 200 characters).")
        return _page(422, account_errors=errors, account_form=request.form)
    flash(_("The service account %(name)s was added. Make it a token below.", name=account.name), "success")
    return redirect(url_for("admin.tokens"), code=303)


def _account(account_id: int) -> engine.models.ServiceAccount:
    try:
        return engine.api_tokens.get_service_account(
            db_session(), account_id, organisation_id=g.organisation.id
        )
    except engine.NotFoundError:
        abort(404)


@bp.route("/tokens/service-accounts/<int:account_id>/tokens", methods=["POST"])
def tokens_service_account_token(account_id: int) -> tuple[str, int]:
    """Make a token for a service account and show it once.

    :raises NotFound: (404) no such active service account in the organisation.
    """
    account = _account(account_id)
    if account.deactivated_at is not None:
        abort(404)
    name, scopes, days = token_form_values()
    try:
        issued = engine.api_tokens.create_token(
            db_session(),
            username=account.user.username,
            organisation=g.organisation.key,
            name=name,
            scopes=scopes,
            valid_days=days if days is not None else 0,
            actor=g.user.username,
        )
    except engine.FormValidationError as exc:
        return _page(422, token_errors=token_errors(exc), token_form=request.form, token_account=account.id)
    return _page(201, issued=issued)


@bp.route("/tokens/service-accounts/<int:account_id>/remove", methods=["POST"])
def tokens_remove_service_account(account_id: int) -> Response:
    """Remove a service account: its tokens stop working.

    :raises NotFound: (404) no such service account in the organisation.
    """
    account = _account(account_id)
    engine.api_tokens.remove_service_account(db_session(), account, actor=g.user.username)
    flash(
        _("The service account %(name)s was removed; its tokens no longer work.", name=account.name),
        "success",
    )
    return redirect(url_for("admin.tokens"), code=303)
