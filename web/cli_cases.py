"""``procflow cases``: the case list from the command line.

``procflow cases [--org KEY] [--user USERNAME] [--q TEXT] [--limit N] [--json]``
lists cases newest first, as the /cases page does (:func:`engine.cases.case_page`):
with ``--user``, that user's cases (started by them or where they completed a
task), else every case. Without ``--org``: every organisation the user is a
member of, or, without ``--user`` either, every organisation. JSON:
``{"cases": [{"id", "process_id", "title", "status", "started_at", "organisation"}], "more": bool}``
(``more``: some organisation has cases past ``--limit``).
"""

from __future__ import annotations

from typing import Any

import click
import sqlalchemy as sa

import engine

from .cli import _emit, _handles_errors, _transaction, main


@main.command("cases")
@click.option("--org", "organisation", help="Organisation key (default: every one, or every one of --user).")
@click.option(
    "--user", "username", help="Only this user's cases: started by them or where they completed a task."
)
@click.option("--q", "text", help="Text in the title, business key, a searchable field, or the case number.")
@click.option(
    "--limit",
    type=click.IntRange(1, engine.cases.MAX_PAGE),
    default=100,
    show_default=True,
    help="At most this many cases per organisation.",
)
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def cases(
    organisation: str | None, username: str | None, text: str | None, limit: int, as_json: bool
) -> None:
    """List cases, newest first."""
    found: list[dict[str, Any]] = []
    more = False
    with _transaction() as session:
        user = engine.get_user(session, username) if username else None
        if organisation is not None:
            organisations = [engine.get_organisation(session, organisation)]
            if user is not None and engine.membership_of(session, user, organisations[0].id) is None:
                raise engine.NotFoundError(f"No user {username!r} in organisation {organisation!r}")
        elif user is not None:
            organisations = sorted((m.organisation for m in user.memberships), key=lambda o: o.key)
        else:
            organisations = list(
                session.scalars(sa.select(engine.Organisation).order_by(engine.Organisation.key))
            )
        for org in organisations:
            where = engine.cases.CaseFilter(
                text=text or None, participant_id=user.id if user is not None else None
            )
            page = engine.cases.case_page(
                session, organisation_id=org.id, where=where, limit=limit, with_fields=False
            )
            more = more or page.next_cursor is not None
            found += [
                {
                    "id": row.instance_id,
                    "process_id": row.process_id,
                    "title": row.title,
                    "status": row.status,
                    "started_at": row.started_at.isoformat(),
                    "organisation": org.key,
                }
                for row in page.rows
            ]
    lines = [
        f"#{c['id']}\t{c['organisation']}\t{c['status']}\t{c['started_at'][:16]}\t{c['process_id']}\t{c['title']}"
        for c in found
    ] or ["no cases"]
    if more:
        lines.append(f"(more than {limit} cases in an organisation: narrow with --q or raise --limit)")
    _emit(as_json, {"cases": found, "more": more}, "\n".join(lines))
