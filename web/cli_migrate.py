"""Admin commands of the procflow command line: instance migration (procflow instance migrate)."""

from __future__ import annotations

from typing import Any

import click

import engine

from .cli import _emit, _handles_errors, instance


@instance.command("migrate")
@click.argument("process_id")
@click.option("--to-version", "to_version", type=int, required=True, help="The version to move to.")
@click.option(
    "--from-version",
    "from_version",
    type=int,
    help="Only instances of this version (default: every other one).",
)
@click.option(
    "--org", "organisation", help="The organisation's own versions and instances (default: shared)."
)
@click.option(
    "--dry-run", is_flag=True, help="Only tell which instances would move and why the others would not."
)
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def instance_migrate(
    process_id: str,
    to_version: int,
    from_version: int | None,
    organisation: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Move the running and waiting instances of PROCESS_ID to version --to-version.

    Each instance moves in its own transaction; one that cannot move is left as
    it is and listed with the reason. With --org the versions are the
    organisation's own and only its instances move; without, the shared
    versions and the instances of every organisation that runs them. With
    --dry-run nothing changes and "migrated" lists the instances that would move.
    """
    db = engine.create_db_engine()
    try:
        factory = engine.create_session_factory(db)
        with factory() as session:
            org_id = engine.get_organisation(session, organisation).id if organisation else None
            target = engine.find_migration_version(
                session, process_id, to_version, org_id, field_name="--to-version"
            )
            if from_version is not None:
                sources = [
                    engine.find_migration_version(
                        session, process_id, from_version, org_id, field_name="--from-version"
                    )
                ]
                engine.check_migration_pair(sources[0], target)
            else:
                sources = [
                    d
                    for d in engine.migration_versions(session, org_id or 0, include_shared=org_id is None)
                    if d.process_id == process_id and d.organisation_id == org_id and d.id != target.id
                ]
            pairs = [(source.id, source.version) for source in sources]
            result = engine.MigrationResult()
            if dry_run:
                for source in sources:
                    plan = engine.plan_migration(session, source, target, organisation_id=org_id)
                    result.migrated += [c.instance_id for c in plan.movable]
                    result.refused += [
                        (c.instance_id, c.refusal) for c in plan.refused if c.refusal is not None
                    ]
        if not dry_run:
            for source_id, _ in pairs:
                moved = engine.migrate_instances(
                    factory, source_id=source_id, target_id=target.id, actor=None, organisation_id=org_id
                )
                result.migrated += moved.migrated
                result.refused += moved.refused
    finally:
        db.dispose()
    payload: dict[str, Any] = result.as_json()
    verb = "would move" if dry_run else "moved"
    lines = [f"{verb} to version {to_version}: {payload['migrated'] or 'none'}"]
    lines += [f"refused {r['id']}: {r['reason']}" for r in payload["refused"]]
    _emit(as_json, payload, "\n".join(lines))
