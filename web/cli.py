"""The ``procflow`` command line: database, organisations, users, deploy, run, repair, worker.

With ``--json`` a command prints one JSON object on stdout. Errors exit with
status 1 and one line on stderr. The database comes from
``PROCFLOW_DATABASE_URL`` (default: a SQLite file in the instance folder).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlalchemy.orm as so

import engine

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)

DEMO_FILE = Path(__file__).resolve().parent.parent / "processes" / "demo.json"


@contextmanager
def _transaction() -> Iterator[so.Session]:
    db = engine.create_db_engine()
    try:
        with engine.create_session_factory(db).begin() as session:
            yield session
    finally:
        db.dispose()


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _handles_errors(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except engine.ProcflowError as exc:
            _fail(str(exc).replace("\n", " "))
        except (json.JSONDecodeError, ValueError) as exc:
            _fail(str(exc).replace("\n", " "))
        except click.ClickException:
            raise
        except Exception as exc:
            # Not an error the engine foresaw (a database that is down, a bug): still one
            # line for the user; the trace goes to the log for whoever runs with --verbose.
            log.info("%s failed", func.__name__, exc_info=True)
            _fail(f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())} (-v shows the trace)")

    return wrapper  # type: ignore[return-value]


def _load_data(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = engine.load_json(raw)
    except engine.DataError as exc:
        raise ValueError(f"--data {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"--data is not valid JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise ValueError("--data must be a JSON object")
    return data


def _emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    if as_json:
        click.echo(json.dumps(payload, default=str))
    else:
        click.echo(text)


def _task_dict(task: engine.HumanTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "instance_id": task.instance_id,
        "bpmn_id": task.bpmn_id,
        "name": task.name,
        "lane": task.lane,
        "form": task.form,
        "state": task.state,
        "assignee": task.assignee.username if task.assignee else None,
        "due_at": task.due_at.isoformat() if task.due_at else None,
    }


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what the engine does.")
def main(verbose: bool) -> None:
    """Procflow: run BPMN procurement processes."""
    if os.environ.get("PROCFLOW_LOG_FORMAT"):
        # The worker and the other commands log like the web app (JSON lines when asked for).
        from web.logging_setup import configure_logging

        configure_logging(level=logging.INFO if verbose else None)
        return
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@_handles_errors
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version."""
    database = engine.create_db_engine()
    try:
        engine.upgrade_database(database)
    finally:
        database.dispose()
    click.echo("database is up to date")


@main.group()
def org() -> None:
    """Organisations."""


@org.command("add")
@click.argument("key")
@click.option("--name", required=True)
@_handles_errors
def org_add(key: str, name: str) -> None:
    """Add (or rename) organisation KEY."""
    with _transaction() as session:
        engine.add_organisation(session, key, name=name)
    click.echo(f"organisation {key} saved")


@main.group()
def user() -> None:
    """Users."""


@user.command("add")
@click.argument("username")
@click.option("--org", "organisation", required=True)
@click.option("--role", "roles", multiple=True, type=click.Choice(engine.ROLES))
@click.option("--group", "groups", multiple=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--name", "display_name")
@click.option("--email")
@_handles_errors
def user_add(
    username: str,
    organisation: str,
    roles: tuple[str, ...],
    groups: tuple[str, ...],
    password_stdin: bool,
    display_name: str | None,
    email: str | None,
) -> None:
    """Add USERNAME to an organisation with roles and groups."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password_stdin and not password:
        raise ValueError("--password-stdin given but standard input held no password")
    with _transaction() as session:
        engine.add_user(
            session,
            username,
            organisation=organisation,
            roles=roles,
            groups=groups,
            password=password,
            display_name=display_name,
            email=email,
        )
    click.echo(f"user {username} saved")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--org", "organisation")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def deploy(paths: tuple[str, ...], organisation: str | None, as_json: bool) -> None:
    """Deploy process bundles (folders of BPMN, DMN and form files)."""
    results: list[engine.DeployedProcess] = []
    with _transaction() as session:
        for path in paths:
            results.extend(engine.deploy_path(session, path, organisation=organisation))
    # Each process of a bundle carries the bundle's warnings: print each once.
    warnings = list(dict.fromkeys(w for r in results for w in r.warnings))
    payload = {
        "deployed": [
            {
                "process_id": r.process_id,
                "version": r.version,
                "organisation": r.organisation,
                "changed": r.changed,
            }
            for r in results
        ],
        "warnings": [w.as_dict() for w in warnings],
    }
    text = "\n".join(
        [
            *(
                f"{r.process_id} v{r.version}{'' if r.changed else ' (unchanged)'} "
                f"for {r.organisation or 'all organisations'}"
                for r in results
            ),
            *(
                f"warning: {w.where()}: {w.message}" if w.where() else f"warning: {w.message}"
                for w in warnings
            ),
        ]
    )
    _emit(as_json, payload, text)


@main.command()
@click.argument("process_id")
@click.option("--org", "organisation", required=True)
@click.option("--user", "username", required=True)
@click.option("--data")
@click.option("--business-key")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def start(
    process_id: str,
    organisation: str,
    username: str,
    data: str | None,
    business_key: str | None,
    as_json: bool,
) -> None:
    """Start PROCESS_ID and run it to its first wait state."""
    with _transaction() as session:
        instance = engine.start_instance(
            session,
            process_id,
            organisation=organisation,
            user=username,
            data=_load_data(data),
            business_key=business_key,
        )
        tasks = [_task_dict(t) for t in engine.list_tasks(session, instance_id=instance.id)]
        payload = {"instance_id": instance.id, "status": instance.status, "tasks": tasks}
    _emit(
        as_json, payload, f"instance {instance.id} {instance.status}; open tasks: {[t['id'] for t in tasks]}"
    )


@main.command()
@click.option("--instance", "instance_id", type=int)
@click.option("--user", "username")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def tasks(instance_id: int | None, username: str | None, as_json: bool) -> None:
    """List open human tasks (those USERNAME may work on, with --user)."""
    with _transaction() as session:
        rows = [_task_dict(t) for t in engine.list_tasks(session, instance_id=instance_id, user=username)]
    text = "\n".join(f"{t['id']}\tinstance {t['instance_id']}\t{t['bpmn_id']}\t{t['name']}" for t in rows)
    _emit(as_json, {"tasks": rows}, text or "no open tasks")


@main.command()
@click.argument("task_id", type=int)
@click.option("--user", "username", required=True)
@click.option("--data")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def complete(task_id: int, username: str, data: str | None, as_json: bool) -> None:
    """Complete human task TASK_ID with form data."""
    with _transaction() as session:
        instance = engine.complete_task(session, task_id, user=username, data=_load_data(data))
        tasks = [_task_dict(t) for t in engine.list_tasks(session, instance_id=instance.id)]
        payload = {"instance_id": instance.id, "status": instance.status, "tasks": tasks}
    _emit(
        as_json, payload, f"instance {instance.id} {instance.status}; open tasks: {[t['id'] for t in tasks]}"
    )


@main.command()
@click.argument("instance_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def show(instance_id: int, as_json: bool) -> None:
    """Show an instance: status, data, open tasks and audit trail."""
    with _transaction() as session:
        instance = engine.get_instance(session, instance_id)
        payload = {
            "id": instance.id,
            "process_id": instance.process_id,
            "version": instance.definition.version,
            "status": instance.status,
            "error": instance.error_message,
            "data": engine.instance_data(session, instance),
            "tasks": [_task_dict(t) for t in engine.list_tasks(session, instance_id=instance.id, state=None)],
            "events": [
                {
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "kind": e.kind,
                    "element": e.element,
                    "detail": e.detail,
                }
                for e in engine.instance_events(session, instance.id)
            ],
        }
    lines = [f"instance {instance_id} ({payload['process_id']} v{payload['version']}): {payload['status']}"]
    if payload["error"]:
        lines.append(f"error: {payload['error']}")
    lines += [f"  {e['at']} {e['kind']} {e['element'] or ''} {e['actor'] or ''}" for e in payload["events"]]
    _emit(as_json, payload, "\n".join(lines))


@main.command()
@click.option("--org", "organisation", help="Only this organisation's instances (its key).")
@click.option("--status", type=click.Choice(engine.INSTANCE_STATUSES))
@click.option("--process", "process_id", help="Only instances of this process id.")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def instances(organisation: str | None, status: str | None, process_id: str | None, as_json: bool) -> None:
    """List process instances, newest first."""
    with _transaction() as session:
        organisation_id = engine.get_organisation(session, organisation).id if organisation else None
        found = engine.list_instances(
            session, organisation_id=organisation_id, status=status, process_id=process_id
        )
        rows: list[dict[str, Any]] = [
            {
                "id": i.id,
                "process_id": i.process_id,
                "version": i.definition.version,
                "status": i.status,
                "title": i.title,
                "business_key": i.business_key,
                "started_at": i.created_at.isoformat(),
            }
            for i in found
        ]
    text = "\n".join(
        f"{r['id']}\t{r['process_id']} v{r['version']}\t{r['status']}\t{r['title']}"
        + (f" [{r['business_key']}]" if r["business_key"] else "")
        for r in rows
    )
    _emit(as_json, {"instances": rows}, text or "no instances")


@main.group()
def instance() -> None:
    """Repair one instance: retry, correct its data, move it back."""


def _emit_instance(session: so.Session, as_json: bool, instance: engine.ProcessInstance) -> None:
    tasks = [_task_dict(t) for t in engine.list_tasks(session, instance_id=instance.id)]
    payload = {"instance_id": instance.id, "status": instance.status, "tasks": tasks}
    text = f"instance {instance.id} {instance.status}; open tasks: {[t['id'] for t in tasks]}"
    if instance.error_message:
        text += f"\nerror: {instance.error_message}"
    _emit(as_json, payload, text)


@instance.command("retry")
@click.argument("instance_id", type=int)
@click.option("--user", "username", help="An admin of the instance's organisation (default: the system).")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def instance_retry(instance_id: int, username: str | None, as_json: bool) -> None:
    """Run the failed step of instance INSTANCE_ID again."""
    with _transaction() as session:
        _emit_instance(session, as_json, engine.retry_instance(session, instance_id, user=username))


@instance.command("set-data")
@click.argument("instance_id", type=int)
@click.option("--user", "username", required=True, help="An admin of the instance's organisation.")
@click.option("--data", required=True, help="A JSON object of the fields to set.")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def instance_set_data(instance_id: int, username: str, data: str, as_json: bool) -> None:
    """Merge fields into the data of instance INSTANCE_ID (its failed step's, else its open steps')."""
    fields = _load_data(data)
    with _transaction() as session:
        updated = engine.set_instance_data(session, instance_id, user=username, data=fields)
        _emit_instance(session, as_json, updated)


@instance.command("reset")
@click.argument("instance_id", type=int)
@click.option("--to", "to", required=True, help="The BPMN id of the earlier step.")
@click.option("--user", "username", required=True, help="An admin of the instance's organisation.")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def instance_reset(instance_id: int, to: str, username: str, as_json: bool) -> None:
    """Move instance INSTANCE_ID back to an earlier step, which runs again from there."""
    with _transaction() as session:
        _emit_instance(session, as_json, engine.reset_instance(session, instance_id, to=to, user=username))


@main.command("send-message")
@click.argument("name")
@click.option("--org", "organisation", required=True)
@click.option("--data")
@click.option("--user", "username")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def send_message(name: str, organisation: str, data: str | None, username: str | None, as_json: bool) -> None:
    """Deliver message NAME (correlated by its payload) or start a process on it."""
    with _transaction() as session:
        reached = engine.send_message(
            session, name, _load_data(data), organisation=organisation, user=username
        )
        payload = {"instances": [{"instance_id": i.id, "status": i.status} for i in reached]}
    _emit(as_json, payload, f"delivered to instance(s) {[i['instance_id'] for i in payload['instances']]}")


@main.command()
@click.option("--once", is_flag=True, help="Run every due job, then exit.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
@click.option(
    "--lease-seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds the worker holds each job it takes; a dead worker's jobs go to another worker "
    "after that long; make it longer than the slowest job. [default: 300]",
)
@_handles_errors
def worker(once: bool, interval: float, lease_seconds: float | None) -> None:
    """Run timers, outbox e-mails and scheduled starts from the job table."""
    lease_time = None if lease_seconds is None else dt.timedelta(seconds=lease_seconds)
    database = engine.create_db_engine()
    factory = engine.create_session_factory(database)
    try:
        if once:
            summary = engine.run_due_jobs(factory, lease_time=lease_time)
            click.echo(
                f"ran {summary.ran} job(s), {summary.failed} failed, {summary.incidents} new incident(s)"
            )
        else:
            engine.run_worker(factory, interval=interval, lease_time=lease_time)
    finally:
        database.dispose()


@main.group()
def demo() -> None:
    """Demo organisations, users and parameters."""


@demo.command("load")
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def demo_load(path: str | None, as_json: bool) -> None:
    """Load demo organisations, users and parameters (default: processes/demo.json); print the logins."""
    data = engine.read_seed_file(path or DEMO_FILE)
    with _transaction() as session:
        users = engine.load_seed(session, data)
    lines = [f"loaded {len(data['organisations'])} organisations and {len(users)} memberships; demo logins:"]
    for u in users:
        roles = ", ".join(u["roles"])
        lines.append(f"  {u['username']:<22} {u['password']:<16} {u['organisation']:<16} {roles}")
    fields = ("username", "password", "organisation", "roles", "groups")
    _emit(as_json, {"users": [{k: u.get(k) for k in fields} for u in users]}, "\n".join(lines))


GUNICORN_CONFIG = Path(__file__).resolve().parent / "gunicorn.conf.py"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--production",
    is_flag=True,
    help="Run gunicorn with web/gunicorn.conf.py (workers, timeouts; PROCFLOW_BIND, PROCFLOW_WORKERS ...).",
)
@click.option("--workers", type=click.IntRange(min=1), help="With --production: worker processes.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, production: bool, workers: int | None) -> None:
    """Serve the web app (database from PROCFLOW_DATABASE_URL, secret from PROCFLOW_SECRET_KEY).

    Without --production this is Werkzeug's threaded server, enough for trying
    Procflow out. With --production gunicorn serves it with the settings of
    web/gunicorn.conf.py; --host/--port, when given, win over PROCFLOW_BIND.
    """
    from web import ConfigurationError, create_app
    from web.config import load_config

    if production:
        try:
            load_config()  # refuse here, in one line, what every worker would refuse
        except ConfigurationError as exc:
            _fail(str(exc))
            return
        command = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG)]
        explicit = {
            name
            for name in ("host", "port")
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        }
        if explicit:
            command += ["--bind", f"{host}:{port}"]
        if workers:
            command += ["--workers", str(workers)]
        sys.stdout.flush()
        sys.stderr.flush()
        # gunicorn takes this process's place: signals from a supervisor reach its master directly.
        os.execv(sys.executable, command)
    if workers:
        _fail("--workers needs --production")
    from werkzeug.serving import run_simple

    try:
        app = create_app()
    except ConfigurationError as exc:
        _fail(str(exc))
        return
    click.echo(f"Procflow web app on http://{host}:{port}/")
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


# The admin commands live beside this module and add themselves to the groups above.
from . import cli_accounts, cli_cases, cli_demo, cli_migrate, cli_params, cli_reports, cli_tokens  # noqa: E402,F401
