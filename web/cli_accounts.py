"""Admin commands of the procflow command line: users and groups.

``procflow user deactivate USERNAME [--org KEY]``, ``procflow user reactivate
USERNAME --org KEY``, ``procflow group add KEY --org KEY [--name-sv ..]
[--name-fi ..] [--name-en ..]``. Each change is an admin action in the audit
log, by the command line (actor none).
"""

from __future__ import annotations

from typing import Any

import click
import sqlalchemy as sa

import engine

from .cli import _emit, _handles_errors, _transaction, main, user


@user.command("deactivate")
@click.argument("username")
@click.option("--org", "organisation", help="Only in this organisation (default: every one they are in).")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def user_deactivate(username: str, organisation: str | None, as_json: bool) -> None:
    """Deactivate USERNAME: no sign-in there, and their claimed tasks go back to their groups."""
    results: list[dict[str, Any]] = []
    with _transaction() as session:
        found = engine.get_user(session, username)
        memberships = [
            m for m in found.memberships if organisation is None or m.organisation.key == organisation
        ]
        if not memberships:
            raise engine.NotFoundError(f"No user {username!r} in organisation {organisation!r}")
        for membership in sorted(memberships, key=lambda m: m.organisation.key):
            done = engine.accounts.deactivate_member(session, membership, actor=None)
            results.append(
                {
                    "organisation": membership.organisation.key,
                    "changed": done.changed,
                    "released_tasks": done.released_task_ids,
                }
            )
    lines = [
        f"user {username} deactivated in {r['organisation']}; tasks back to the group: {r['released_tasks']}"
        if r["changed"]
        else f"user {username} was already deactivated in {r['organisation']}"
        for r in results
    ]
    _emit(as_json, {"username": username, "deactivated": results}, "\n".join(lines))


@user.command("reactivate")
@click.argument("username")
@click.option("--org", "organisation", required=True)
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def user_reactivate(username: str, organisation: str, as_json: bool) -> None:
    """Make USERNAME active again in an organisation."""
    with _transaction() as session:
        org = engine.get_organisation(session, organisation)
        changed = engine.accounts.reactivate_member(
            session, engine.accounts.get_member(session, org.id, username), actor=None
        )
    text = f"user {username} is active in {organisation}" + ("" if changed else " (it was)")
    _emit(as_json, {"username": username, "organisation": organisation, "changed": changed}, text)


@main.group()
def group() -> None:
    """Groups (a lane names one) and their names by language."""


@group.command("add")
@click.argument("key")
@click.option("--org", "organisation", required=True)
@click.option("--name-sv")
@click.option("--name-fi")
@click.option("--name-en")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def group_add(
    key: str, organisation: str, name_sv: str | None, name_fi: str | None, name_en: str | None, as_json: bool
) -> None:
    """Add group KEY to an organisation, or change the names given of an existing one."""
    with _transaction() as session:
        org = engine.get_organisation(session, organisation)
        existing = session.scalar(
            sa.select(engine.Group).where(engine.Group.organisation_id == org.id, engine.Group.key == key)
        )
        names = dict(existing.translated_names or {}) if existing is not None else {}
        given = {"sv": name_sv, "fi": name_fi, "en": name_en}
        names.update({language: name for language, name in given.items() if name is not None})
        saved = engine.accounts.save_group(session, org.id, key, names=names, actor=None)
        payload = {
            "key": saved.key,
            "organisation": organisation,
            "names": dict(saved.translated_names),
            "created": existing is None,
        }
    text = f"group {key} {'added to' if payload['created'] else 'saved in'} {organisation}"
    _emit(as_json, payload, text)
