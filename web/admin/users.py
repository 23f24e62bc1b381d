"""Admin console: the organisation's users and groups.

Users: list and search, add (with a one-time link to set a password, shown
once and e-mailed), change name and e-mail address, roles and groups,
deactivate (their claimed tasks go back to their groups) and reactivate, a new
password link. Groups: list, add, names in Swedish, Finnish and English,
members, delete (not while tasks wait for the group).

Every change is an admin action in the audit log (engine/accounts.py). A user
or group of another organisation is 404. Bad input re-renders the form with
422 and the message beside its field.
"""

from __future__ import annotations

from typing import Any

from flask import abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

import engine

from ..db import db_session
from . import bp


def role_labels() -> dict[str, str]:
    """Return each role's name in the user's language, in the order of ``engine.ROLES``."""
    labels = {
        "admin": _("Administrator"),
        "process_owner": _("Process owner"),
        "case_handler": _("Case handler"),
        "requester": _("Requester"),
        "auditor": _("Auditor"),
    }
    return {role: labels.get(role, role) for role in engine.ROLES}


def language_labels() -> dict[str, str]:
    """Return the name of each language groups are named in, in the user's language."""
    return {"sv": _("Swedish"), "fi": _("Finnish"), "en": _("English")}


def _message(field: str, message: str) -> str:
    """The page's text for the engine's *message* about *field*, in the user's language."""
    if field == "username":
        if "taken" in message:
            return _("This username is taken: choose another.")
        return _("Use 1 to 120 letters, digits, “.”, “_”, “@” or “-”, starting with a letter or digit.")
    if field == "key":
        if "already" in message:
            return _("The organisation has a group with this key already.")
        return _("Use 1 to 120 letters, digits, “.”, “_” or “-”, starting with a letter or digit.")
    if field == "email":
        return _("This is not an e-mail address.")
    if field == "roles":
        return _("Choose roles from the list.")
    if field == "groups":
        return _("Choose groups from the list.")
    if field == "member":
        return _("The organisation has no user with this username.")
    return _("Use at most %(count)s characters.", count=200)


def _errors(exc: engine.FormValidationError) -> dict[str, str]:
    return {field: _message(field, messages[0]) for field, messages in exc.errors.items()}


def _actor() -> str:
    username: str = g.user.username
    return username


def _groups() -> list[engine.accounts.GroupRow]:
    return engine.accounts.list_groups(db_session(), g.organisation.id)


# -- users -----------------------------------------------------------------------------------------


@bp.route("/users")
def users() -> str:
    """List the organisation's users: search (``q``), ``status``, ``group``, and pages of 50 (``page``)."""
    status = request.args.get("status", "all")
    if status not in engine.accounts.USER_STATUSES:
        status = "all"
    search = request.args.get("q", "").strip()[:200]
    group = request.args.get("group", "").strip() or None
    page_number = max(request.args.get("page", 1, type=int) or 1, 1)
    found = engine.accounts.list_members(
        db_session(),
        g.organisation.id,
        search=search,
        status=status,
        group=group,
        offset=(page_number - 1) * engine.accounts.USERS_PAGE_SIZE,
    )
    pages = max(1, -(-found.total // engine.accounts.USERS_PAGE_SIZE))
    return render_template(
        "admin/users.html",
        found=found,
        search=search,
        status=status,
        group=group,
        groups=_groups(),
        page_number=page_number,
        pages=pages,
        role_labels=role_labels(),
    )


def _new_form(values: dict[str, Any], errors: dict[str, str]) -> str:
    return render_template(
        "admin/users_new.html", values=values, errors=errors, groups=_groups(), role_labels=role_labels()
    )


@bp.route("/users/new", methods=["GET"])
def users_new() -> str:
    """Show the form that adds a user."""
    return _new_form({"roles": ["case_handler"], "groups": []}, {})


@bp.route("/users/new", methods=["POST"])
def users_create() -> str | tuple[str, int]:
    """Add the user and show, once, the link that sets their password (also e-mailed to them).

    The link is shown in this response, not after a redirect, so that it is
    never in a URL of the admin's browser history.
    """
    values = {
        "username": request.form.get("username", ""),
        "display_name": request.form.get("display_name", ""),
        "email": request.form.get("email", ""),
        "roles": request.form.getlist("roles"),
        "groups": request.form.getlist("groups"),
    }
    session = db_session()
    try:
        membership = engine.accounts.create_member(
            session,
            g.organisation.id,
            username=values["username"],
            display_name=values["display_name"],
            email=values["email"],
            roles=values["roles"],
            groups=values["groups"],
            actor=_actor(),
        )
    except engine.FormValidationError as exc:
        return _new_form(values, _errors(exc)), 422
    return _show_link(membership, new=True)


def _show_link(membership: engine.Membership, *, new: bool) -> str:
    issued = engine.password_links.issue_password_link(
        db_session(), membership, actor=_actor(), organisation_name=g.organisation.name
    )
    return render_template(
        "admin/users_link.html",
        member=membership,
        new=new,
        issued=issued,
        url=url_for("password_links.set_password", token=issued.token, _external=True),
    )


def _detail(membership: engine.Membership, errors: dict[str, str] | None = None, **values: Any) -> str:
    session = db_session()
    return render_template(
        "admin/users_detail.html",
        member=membership,
        user=membership.user,
        groups=_groups(),
        member_groups={group.key for group in membership.groups},
        claimed=engine.accounts.claimed_tasks(session, membership),
        latest_link=engine.password_links.latest_link(session, membership.user),
        now=engine.models.utcnow(),
        errors=errors or {},
        values=values,
        done=request.args.get("done", ""),
        role_labels=role_labels(),
        is_me=membership.user_id == g.user.id,
    )


def _member(username: str) -> engine.Membership:
    return engine.accounts.get_member(db_session(), g.organisation.id, username)


def _done(username: str, what: str) -> Response:
    return redirect(url_for("admin.users_detail", username=username, done=what), code=303)


@bp.route("/users/<username>")
def users_detail(username: str) -> str:
    """Show one user of the organisation: details, roles, groups, claimed tasks, password, status.

    :raises NotFound: (404) the organisation has no such user.
    """
    return _detail(_member(username))


@bp.route("/users/<username>/details", methods=["POST"])
def users_details(username: str) -> Response | tuple[str, int]:
    """Change the user's display name and e-mail address.

    :raises NotFound: (404) the organisation has no such user.
    """
    membership = _member(username)
    display_name = request.form.get("display_name", "")
    email = request.form.get("email", "")
    try:
        engine.accounts.update_member_details(
            db_session(), membership, display_name=display_name, email=email, actor=_actor()
        )
    except engine.FormValidationError as exc:
        return _detail(membership, _errors(exc), display_name=display_name, email=email), 422
    return _done(username, "details")


@bp.route("/users/<username>/roles", methods=["POST"])
def users_roles(username: str) -> Response | tuple[str, int]:
    """Give the user exactly the checked roles.

    :raises NotFound: (404) the organisation has no such user.
    """
    membership = _member(username)
    try:
        engine.accounts.set_member_roles(
            db_session(), membership, request.form.getlist("roles"), actor=_actor()
        )
    except engine.FormValidationError as exc:
        return _detail(membership, _errors(exc)), 422
    except engine.PermissionDeniedError:
        return _detail(membership, {"roles": _("You cannot take away your own administrator role.")}), 422
    return _done(username, "roles")


@bp.route("/users/<username>/groups", methods=["POST"])
def users_groups(username: str) -> Response | tuple[str, int]:
    """Make the user a member of exactly the checked groups.

    :raises NotFound: (404) the organisation has no such user.
    """
    membership = _member(username)
    try:
        engine.accounts.set_member_groups(
            db_session(), membership, request.form.getlist("groups"), actor=_actor()
        )
    except engine.FormValidationError as exc:
        return _detail(membership, _errors(exc)), 422
    return _done(username, "groups")


@bp.route("/users/<username>/deactivate", methods=["POST"])
def users_deactivate(username: str) -> Response | tuple[str, int]:
    """Deactivate the user in this organisation; their claimed tasks go back to their groups.

    :raises NotFound: (404) the organisation has no such user.
    """
    membership = _member(username)
    try:
        engine.accounts.deactivate_member(db_session(), membership, actor=_actor())
    except engine.PermissionDeniedError:
        return _detail(
            membership, {"status": _("You cannot deactivate yourself: ask another administrator.")}
        ), 422
    return _done(username, "deactivated")


@bp.route("/users/<username>/reactivate", methods=["POST"])
def users_reactivate(username: str) -> Response:
    """Make the user active in this organisation again.

    :raises NotFound: (404) the organisation has no such user.
    """
    engine.accounts.reactivate_member(db_session(), _member(username), actor=_actor())
    return _done(username, "reactivated")


@bp.route("/users/<username>/password-link", methods=["POST"])
def users_password_link(username: str) -> str:
    """Make a new one-time link to set the user's password and show it once (older links stop working).

    :raises NotFound: (404) the organisation has no such user, or they are deactivated here.
    """
    membership = _member(username)
    if membership.deactivated_at is not None:
        abort(404)
    return _show_link(membership, new=False)


# -- groups ----------------------------------------------------------------------------------------


def _names_from_form() -> dict[str, str | None]:
    return {
        language: request.form.get(f"name_{language}", "")
        for language in engine.accounts.GROUP_NAME_LANGUAGES
    }


def _groups_page(values: dict[str, Any], errors: dict[str, str]) -> str:
    return render_template(
        "admin/groups.html",
        groups=_groups(),
        values=values,
        errors=errors,
        languages=language_labels(),
        done=request.args.get("done", ""),
    )


@bp.route("/groups")
def groups() -> str:
    """List the organisation's groups, with a form to add one."""
    return _groups_page({}, {})


@bp.route("/groups", methods=["POST"])
def groups_create() -> Response | tuple[str, int]:
    """Add a group with its names in Swedish, Finnish and English."""
    key = request.form.get("key", "")
    names = _names_from_form()
    try:
        engine.accounts.save_group(
            db_session(), g.organisation.id, key, names=names, actor=_actor(), create=True
        )
    except engine.FormValidationError as exc:
        return _groups_page({"key": key, **{f"name_{k}": v for k, v in names.items()}}, _errors(exc)), 422
    return redirect(url_for("admin.groups_detail", group_key=key.strip(), done="added"), code=303)


def _group(group_key: str) -> engine.Group:
    return engine.accounts.get_group(db_session(), g.organisation.id, group_key)


def _group_page(group: engine.Group, errors: dict[str, str] | None = None, **values: Any) -> str:
    session = db_session()
    (row,) = [r for r in engine.accounts.list_groups(session, g.organisation.id) if r.key == group.key]
    return render_template(
        "admin/groups_detail.html",
        group=group,
        row=row,
        members=engine.accounts.group_members(session, group),
        languages=language_labels(),
        errors=errors or {},
        values=values,
        done=request.args.get("done", ""),
    )


@bp.route("/groups/<group_key>")
def groups_detail(group_key: str) -> str:
    """Show one group: its names, its members, and forms to change them.

    :raises NotFound: (404) the organisation has no such group.
    """
    return _group_page(_group(group_key))


@bp.route("/groups/<group_key>", methods=["POST"])
def groups_save(group_key: str) -> Response | tuple[str, int]:
    """Change the group's names.

    :raises NotFound: (404) the organisation has no such group.
    """
    group = _group(group_key)
    names = _names_from_form()
    try:
        engine.accounts.save_group(
            db_session(), g.organisation.id, group.key, names=names, actor=_actor(), create=False
        )
    except engine.FormValidationError as exc:
        return _group_page(group, _errors(exc), **{f"name_{k}": v for k, v in names.items()}), 422
    return redirect(url_for("admin.groups_detail", group_key=group.key, done="names"), code=303)


@bp.route("/groups/<group_key>/members", methods=["POST"])
def groups_add_member(group_key: str) -> Response | tuple[str, int]:
    """Add the organisation's user named in the form to the group.

    :raises NotFound: (404) the organisation has no such group.
    """
    group = _group(group_key)
    username = request.form.get("username", "").strip()
    try:
        engine.accounts.add_group_member(db_session(), group, username, actor=_actor())
    except engine.NotFoundError:
        return _group_page(group, {"member": _message("member", "")}, username=username), 422
    return redirect(url_for("admin.groups_detail", group_key=group.key, done="member_added"), code=303)


@bp.route("/groups/<group_key>/members/<username>/remove", methods=["POST"])
def groups_remove_member(group_key: str, username: str) -> Response:
    """Take the user out of the group.

    :raises NotFound: (404) the organisation has no such group or user.
    """
    group = _group(group_key)
    engine.accounts.remove_group_member(db_session(), group, username, actor=_actor())
    return redirect(url_for("admin.groups_detail", group_key=group.key, done="member_removed"), code=303)


@bp.route("/groups/<group_key>/delete", methods=["POST"])
def groups_delete(group_key: str) -> Response | tuple[str, int]:
    """Delete the group, unless open tasks wait for it.

    :raises NotFound: (404) the organisation has no such group.
    """
    group = _group(group_key)
    try:
        engine.accounts.delete_group(db_session(), group, actor=_actor())
    except engine.InvalidStateError:
        return _group_page(
            group, {"delete": _("Open tasks wait for this group: it cannot be deleted until they are done.")}
        ), 422
    return redirect(url_for("admin.groups", done="deleted"), code=303)
