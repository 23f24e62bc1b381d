"""``procflow token ...`` and ``procflow service-account ...``: API tokens and service accounts.

``procflow token create USERNAME --org KEY [--scope read|write] [--expires-days N]
[--name TEXT] [--json]`` prints the token once (``{"token": ..., "expires_at": ...}``);
``procflow token revoke ID --org KEY``; ``procflow service-account add NAME --org KEY
[--role ROLE]... [--group KEY]...``. Each is an admin action in the audit log, by the
command line (actor none).
"""

from __future__ import annotations

import click

import engine

from .cli import _emit, _handles_errors, _transaction, main


@main.group()
def token() -> None:
    """Bearer tokens of the REST API (/api/v1)."""


@token.command("create")
@click.argument("username")
@click.option("--org", "organisation", required=True)
@click.option("--scope", type=click.Choice(engine.api_tokens.SCOPES), default="read", show_default=True)
@click.option(
    "--expires-days",
    type=click.IntRange(1, engine.api_tokens.MAX_VALID_DAYS),
    default=engine.api_tokens.DEFAULT_VALID_DAYS,
    show_default=True,
)
@click.option("--name", default="command line", show_default=True, help="Where the token is used.")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def token_create(
    username: str, organisation: str, scope: str, expires_days: int, name: str, as_json: bool
) -> None:
    """Make a token for USERNAME in an organisation and print it (shown this once only)."""
    with _transaction() as session:
        issued = engine.api_tokens.create_token(
            session,
            username=username,
            organisation=organisation,
            name=name,
            scopes=[scope],
            valid_days=expires_days,
            actor=None,
        )
        token_id = issued.record.id
    expires_at = issued.expires_at.isoformat()
    _emit(
        as_json,
        {"token": issued.token, "expires_at": expires_at, "id": token_id, "scopes": issued.record.scopes},
        f"{issued.token}\n(token {token_id} of {username} in {organisation}, "
        f"{' and '.join(issued.record.scopes)}, until {expires_at}; it is not shown again)",
    )


@token.command("revoke")
@click.argument("token_id", type=int)
@click.option("--org", "organisation", required=True)
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def token_revoke(token_id: int, organisation: str, as_json: bool) -> None:
    """Revoke token TOKEN_ID of an organisation: it stops working at once."""
    with _transaction() as session:
        org = engine.get_organisation(session, organisation)
        record = engine.api_tokens.revoke_token(session, token_id, organisation_id=org.id, actor=None)
        revoked_at = record.revoked_at.isoformat() if record.revoked_at else None
    _emit(as_json, {"id": token_id, "revoked_at": revoked_at}, f"token {token_id} revoked")


@main.group("service-account")
def service_account() -> None:
    """Service accounts: systems that call the API for an organisation."""


@service_account.command("add")
@click.argument("name")
@click.option("--org", "organisation", required=True)
@click.option("--role", "roles", multiple=True, type=click.Choice(engine.ROLES), default=("requester",))
@click.option("--group", "groups", multiple=True)
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def service_account_add(
    name: str, organisation: str, roles: tuple[str, ...], groups: tuple[str, ...], as_json: bool
) -> None:
    """Add a service account NAME; make its tokens with `procflow token create <its username>`."""
    with _transaction() as session:
        account = engine.api_tokens.create_service_account(
            session, organisation=organisation, name=name, roles=roles, groups=groups, actor=None
        )
        username = account.user.username
    _emit(
        as_json,
        {"id": account.id, "name": name, "username": username},
        f"service account {name} added as user {username}",
    )
