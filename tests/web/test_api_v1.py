"""The REST API /api/v1: tokens (expired, revoked, scope, other organisation), operations, problem details."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask.testing import FlaskClient

import engine
from engine import api_tokens
from engine.models import ApiToken
from tests.conftest import PROCESSES
from tests.web.conftest import PURCHASE, LoginAs, WebClient, open_task

REQUEST = {"subject": "Laptops", "category": "goods", "estimated_value": 1200.5, "needed_by": "2027-03-31"}
PROBLEM = "application/problem+json"

MakeToken = Callable[..., str]


@pytest.fixture
def make_token(session_factory: so.sessionmaker[so.Session], users: None) -> MakeToken:
    """Make a token for *username* in *org* through the engine and return the secret."""

    def make(username: str = "north-req", org: str = "north", scopes: tuple[str, ...] = ("write",)) -> str:
        with session_factory.begin() as s:
            return api_tokens.create_token(
                s, username=username, organisation=org, name="test", scopes=scopes, actor=None
            ).token

    return make


class Api:
    """Calls /api/v1 with one token."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(f"/api/v1{path}", headers=self.headers, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        if hasattr(self.client, "csrf_token"):
            kwargs["csrf"] = False  # the API takes no CSRF token: it accepts no cookie
        return self.client.post(f"/api/v1{path}", headers=self.headers, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.client.patch(f"/api/v1{path}", headers=self.headers, **kwargs)


@pytest.fixture
def api(client: WebClient, make_token: MakeToken) -> Callable[..., Api]:
    def for_user(
        username: str = "north-req", org: str = "north", scopes: tuple[str, ...] = ("write",)
    ) -> Api:
        return Api(client, make_token(username, org, scopes))

    return for_user


def _problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body: dict[str, Any] = response.json
    assert body["status"] == status and body["title"] and body["instance"]
    if code is not None:
        assert body["code"] == code and body["type"] == f"urn:procflow:problem:{code}"
    return body


# -- tokens ------------------------------------------------------------------------------------


def test_no_token_and_the_session_cookie_are_refused(login_as: LoginAs) -> None:
    client = login_as("requester")  # a signed-in browser session: not accepted on /api/v1
    body = _problem(client.get("/api/v1/tasks"), 401, "token-required")
    assert "Bearer" in body["detail"]
    assert client.get("/api/v1/tasks").headers["WWW-Authenticate"].startswith("Bearer")
    _problem(
        client.get("/api/v1/tasks", headers={"Authorization": "Bearer pf_nonsense"}), 401, "invalid-token"
    )
    _problem(client.get("/api/v1/tasks", headers={"Authorization": "Basic abc"}), 401, "token-required")


def test_an_expired_token_is_refused(
    api: Callable[..., Api], session_factory: so.sessionmaker[so.Session], start: Callable[..., int]
) -> None:
    caller = api()
    assert caller.get("/tasks").status_code == 200
    with session_factory.begin() as s:
        s.execute(sa.update(ApiToken).values(expires_at=engine.models.utcnow() - dt.timedelta(seconds=1)))
    body = _problem(caller.get("/tasks"), 401, "invalid-token")
    assert "expired" in body["detail"]


def test_a_revoked_token_is_refused_at_once(
    api: Callable[..., Api], session_factory: so.sessionmaker[so.Session]
) -> None:
    caller = api()
    assert caller.get("/processes").status_code == 200
    with session_factory.begin() as s:
        (record,) = s.scalars(sa.select(ApiToken))
        api_tokens.revoke_token(s, record.id, organisation_id=record.organisation_id, actor="north-admin")
    assert "revoked" in _problem(caller.get("/processes"), 401, "invalid-token")["detail"]


def test_a_deactivated_users_token_stops_working(
    api: Callable[..., Api], session_factory: so.sessionmaker[so.Session]
) -> None:
    caller = api()
    with session_factory.begin() as s:
        org = engine.get_organisation(s, "north")
        engine.accounts.deactivate_member(s, engine.accounts.get_member(s, org.id, "north-req"), actor=None)
    _problem(caller.get("/tasks"), 401, "invalid-token")


def test_a_read_token_cannot_write(
    api: Callable[..., Api], session_factory: so.sessionmaker[so.Session], start: Callable[..., int]
) -> None:
    task = open_task(session_factory, start())
    reader = api(scopes=("read",))
    assert reader.get(f"/tasks/{task.id}").status_code == 200
    response = reader.post(f"/tasks/{task.id}/complete", json={"data": REQUEST})
    body = _problem(response, 403, "insufficient-scope")
    assert "write" in body["detail"] and 'scope="write"' in response.headers["WWW-Authenticate"]
    assert open_task(session_factory, task.instance_id).state == "ready"


def test_another_organisations_things_are_404(
    api: Callable[..., Api], session_factory: so.sessionmaker[so.Session], start: Callable[..., int]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    south = api("south-admin", "south")
    for path in (
        f"/instances/{instance_id}",
        f"/tasks/{task.id}",
        f"/instances/{instance_id}/attachments",
    ):
        _problem(south.get(path), 404, "not-found")
    for path in (f"/tasks/{task.id}/claim", f"/tasks/{task.id}/complete", f"/instances/{instance_id}/cancel"):
        _problem(south.post(path, json={"data": REQUEST}), 404, "not-found")
    assert south.get("/tasks").json["items"] == []
    with session_factory() as s:
        assert engine.get_instance(s, instance_id).status == "running"


def test_token_validation_names_each_field(session_factory: so.sessionmaker[so.Session], users: None) -> None:
    with session_factory.begin() as s, pytest.raises(engine.FormValidationError) as refused:
        api_tokens.create_token(
            s,
            username="north-req",
            organisation="north",
            name=" ",
            scopes=["admin"],
            valid_days=0,
            actor=None,
        )
    assert set(refused.value.errors) == {"name", "scopes", "valid_days"}
    with session_factory.begin() as s, pytest.raises(engine.NotFoundError):
        api_tokens.create_token(s, username="south-req", organisation="north", name="x", actor=None)


def test_tokens_are_stored_hashed_and_audited(
    session_factory: so.sessionmaker[so.Session], users: None
) -> None:
    with session_factory.begin() as s:
        issued = api_tokens.create_token(
            s, username="north-req", organisation="north", name="CRM", actor="north-req"
        )
    with session_factory() as s:
        (record,) = s.scalars(sa.select(ApiToken))
        assert record.token_hash == api_tokens.token_hash(issued.token) != issued.token
        assert issued.token not in str(s.scalars(sa.select(engine.AuditEvent.detail)).all())
        assert record.scopes == ["read"] and issued.token.startswith(record.hint)


# -- operations --------------------------------------------------------------------------------


def test_processes_and_the_start_form(api: Callable[..., Api], deployed: None) -> None:
    caller = api()
    processes = caller.get("/processes").json
    assert {p["process_id"] for p in processes} == {"approval", "web_purchase"}
    form = caller.get("/processes/web_purchase/start-form").json
    assert form["version"] == 1 and form["schema"] is None
    _problem(caller.get("/processes/nothing/start-form"), 404, "not-found")


def test_start_work_on_and_complete_a_case(
    api: Callable[..., Api], deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    requester = api()
    started = requester.post("/instances", json={"process_id": "web_purchase", "business_key": "P-1"})
    assert started.status_code == 201 and started.json["status"] == "running", started.json
    instance_id = started.json["id"]
    tasks = requester.get("/tasks").json
    assert [t["instance_id"] for t in tasks["items"]] == [instance_id] and tasks["next_cursor"] is None
    task_id = tasks["items"][0]["id"]
    detail = requester.get(f"/tasks/{task_id}").json
    assert detail["schema"]["title"] == "Describe the purchase" and detail["task"]["bpmn_id"] == "request"
    claimed = requester.post(f"/tasks/{task_id}/claim")
    assert claimed.status_code == 200 and claimed.json["assignee"] == "north-req"
    assert requester.post(f"/tasks/{task_id}/unclaim").json["assignee"] is None
    invalid = _problem(requester.post(f"/tasks/{task_id}/complete", json={"data": {"subject": "La"}}), 422)
    assert invalid["code"] == "invalid-form"
    by_field = {e["field"]: e for e in invalid["errors"]}
    assert (
        by_field["subject"]["pointer"] == "/data/subject" and "3 characters" in by_field["subject"]["detail"]
    )
    assert "category" in by_field
    done = requester.post(f"/tasks/{task_id}/complete", json={"data": REQUEST})
    assert done.status_code == 200 and done.json["id"] == instance_id
    _problem(requester.post(f"/tasks/{task_id}/complete", json={"data": REQUEST}), 409, "conflict")
    with session_factory() as s:  # from the database, not from what the request kept
        assert engine.instance_data(s, engine.get_instance(s, instance_id))["subject"] == "Laptops"
    shown = requester.get(f"/instances/{instance_id}").json
    # 1200.5 was sent as a JSON number: kept as an exact Decimal, read back as text like a form's amount.
    assert shown["data"]["estimated_value"] == "1200.5"
    assert shown["data"]["subject"] == "Laptops" and [t["bpmn_id"] for t in shown["tasks"]] == [
        "request",
        "review",
    ]
    handler = api("north-handler")
    _problem(handler.post(f"/tasks/{task_id}/claim"), 409)


def test_body_and_query_validation_name_fields(api: Callable[..., Api], deployed: None) -> None:
    caller = api()
    body = _problem(caller.post("/instances", json={"data": []}), 422, "invalid-request")
    assert {e["field"] for e in body["errors"]} == {"process_id", "data"}
    assert {e["pointer"] for e in body["errors"]} == {"/process_id", "/data"}
    query = _problem(caller.get("/tasks?limit=0&sort=price"), 422, "invalid-request")
    assert {e["pointer"] for e in query["errors"]} == {"/query/limit", "/query/sort"}
    assert _problem(caller.get("/tasks?after=nonsense"), 400, "bad-request")["detail"].startswith(
        "Invalid inbox"
    )


def test_tasks_page_by_cursor(api: Callable[..., Api], start: Callable[..., int]) -> None:
    instances = [start() for _ in range(3)]
    caller = api()
    first = caller.get("/tasks?sort=created&limit=2").json
    assert [t["instance_id"] for t in first["items"]] == instances[:2] and first["previous_cursor"] is None
    second = caller.get(f"/tasks?sort=created&limit=2&after={first['next_cursor']}").json
    assert [t["instance_id"] for t in second["items"]] == instances[2:] and second["next_cursor"] is None
    back = caller.get(f"/tasks?sort=created&limit=2&before={second['previous_cursor']}").json
    assert [t["instance_id"] for t in back["items"]] == instances[:2]


def test_instances_page_by_cursor(api: Callable[..., Api], start: Callable[..., int]) -> None:
    instances = [start() for _ in range(3)]
    south = start(user="south-req", org="south")
    caller = api()
    first = caller.get("/instances?limit=2").json
    assert [row["id"] for row in first["items"]] == instances[:0:-1] and first["next_cursor"]
    second = caller.get(f"/instances?limit=2&cursor={first['next_cursor']}").json
    assert [row["id"] for row in second["items"]] == instances[:1] and second["next_cursor"] is None
    assert south not in [row["id"] for row in caller.get("/instances").json["items"]]
    assert caller.get("/instances?status=completed").json["items"] == []


def test_admin_operations(
    api: Callable[..., Api], start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    _problem(api().post(f"/instances/{instance_id}/suspend"), 403, "permission-denied")
    admin = api("north-admin")
    assert admin.post(f"/instances/{instance_id}/suspend").json["status"] == "suspended"
    _problem(admin.post(f"/instances/{instance_id}/suspend"), 409, "invalid-state")
    assert admin.post(f"/instances/{instance_id}/resume").json["status"] == "running"
    changed = admin.patch(f"/instances/{instance_id}/data", json={"data": {"note": "fixed"}})
    assert changed.status_code == 200, changed.json
    with session_factory() as s:
        assert engine.instance_data(s, engine.get_instance(s, instance_id))["note"] == "fixed"
    bad = _problem(
        admin.patch(f"/instances/{instance_id}/data", json={"data": {"_x": 1}}), 422, "invalid-form"
    )
    assert bad["errors"][0]["field"] == "_x" and bad["errors"][0]["pointer"] == "/data/_x"
    _problem(admin.post(f"/instances/{instance_id}/retry", json={}), 409, "invalid-state")
    assert admin.post(f"/instances/{instance_id}/cancel").json["status"] == "cancelled"
    with session_factory() as s:
        assert engine.get_instance(s, instance_id).status == "cancelled"


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return buffer.getvalue()


def test_deploy_a_bundle(
    api: Callable[..., Api], users: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    owner = api("north-owner")
    upload = {"file": (io.BytesIO(_zip(PURCHASE)), "purchase.zip")}
    deployed = owner.post("/deployments", data=upload, content_type="multipart/form-data")
    assert deployed.status_code == 201, deployed.json
    assert deployed.json["processes"] == [{"process_id": "web_purchase", "version": 1, "changed": True}]
    again = owner.post("/deployments", data={"file": (io.BytesIO(_zip(PURCHASE)), "p.zip")})
    assert again.json["processes"][0]["changed"] is False
    with session_factory() as s:
        assert (
            engine.resolve_definition(s, "web_purchase", engine.get_organisation(s, "north").id).version == 1
        )
    broken = owner.post("/deployments", data={"file": (io.BytesIO(b"not a zip"), "x.zip")})
    assert "zip" in _problem(broken, 422, "invalid-bundle")["detail"]
    _problem(api().post("/deployments", data={"file": (io.BytesIO(_zip(PURCHASE)), "p.zip")}), 403)


def test_attachments(
    api: Callable[..., Api], start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    caller = api()
    uploaded = caller.post(
        f"/tasks/{task.id}/attachments",
        data={"file": (io.BytesIO(b"quote text"), "quote.txt"), "field": "quote"},
    )
    assert uploaded.status_code == 201, uploaded.json
    assert uploaded.json["filename"] == "quote.txt" and uploaded.json["field"] == "quote"
    listed = caller.get(f"/instances/{instance_id}/attachments").json["items"]
    assert [a["id"] for a in listed] == [uploaded.json["id"]]
    download = caller.get(f"/attachments/{uploaded.json['id']}")
    assert download.data == b"quote text" and download.headers["Content-Disposition"].startswith("attachment")
    _problem(api("south-req", "south").get(f"/attachments/{uploaded.json['id']}"), 404)
    empty = caller.post(f"/tasks/{task.id}/attachments", data={"file": (io.BytesIO(b""), "e.txt")})
    assert _problem(empty, 422, "invalid-form")["errors"][0]["detail"] == "The file is empty."


def test_messages_and_contact_intake(
    api: Callable[..., Api], users: None, session_factory: so.sessionmaker[so.Session], client: WebClient
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "customer_contact", organisation="north")
        account = api_tokens.create_service_account(
            s, organisation="north", name="Web form", roles=["requester"], actor="north-admin"
        )
        service = api_tokens.create_token(
            s, username=account.user.username, organisation="north", name="form", scopes=["write"], actor=None
        ).token
    form = Api(client, service)
    contact = {
        "contact_ref": "WEB-1",
        "name": "Maija",
        "email": "maija@example.fi",
        "message": "May we add a requirement?",
    }
    received = form.post("/contact-intake", json=contact)
    assert received.status_code == 202, received.json
    (instance_id,) = received.json["instances"]
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.process_id == "customer_contact"
        assert engine.instance_data(s, instance)["contact"]["email"] == "maija@example.fi"
    # Without a reference of its own the contact gets one (the customer's replies correlate on it).
    unreferenced = form.post("/contact-intake", json={k: v for k, v in contact.items() if k != "contact_ref"})
    assert unreferenced.status_code == 202, unreferenced.json
    with session_factory() as s:
        (other,) = unreferenced.json["instances"]
        assert engine.instance_data(s, engine.get_instance(s, other))["contact"]["contact_ref"].startswith(
            "WEB-"
        )
    invalid = _problem(form.post("/contact-intake", json={"email": "not-an-address"}), 422)
    assert {e["field"] for e in invalid["errors"]} == {"email", "message"}
    _problem(api("north-admin").post("/contact-intake", json=contact), 403, "permission-denied")
    nobody = _problem(api().post("/messages", json={"name": "nobody_listens", "payload": {}}), 404)
    assert "nobody_listens" in nobody["detail"]
    second = api().post(
        "/messages",
        json={
            "name": "contact_received",
            "correlation": {"contact_ref": "WEB-2"},
            "payload": {"email": "a@b.fi", "message": "Hi", "channel": "web"},
        },
    )
    assert second.status_code == 202 and len(second.json["instances"]) == 1
    # Without the key the contact process correlates on, the message starts nothing and says why.
    unkeyed = _problem(
        api().post("/messages", json={"name": "contact_received", "payload": {"message": "Hi"}}), 400
    )
    assert "correlation property 'contact_ref'" in unkeyed["detail"]
    assert "The payload's keys: 'message'." in unkeyed["detail"]
    with session_factory() as s:
        assert len(engine.list_instances(s, organisation_id=engine.get_organisation(s, "north").id)) == 3
    with session_factory.begin() as s:
        api_tokens.remove_service_account(s, s.get(type(account), account.id), actor="north-admin")
    _problem(form.post("/contact-intake", json=contact), 401, "invalid-token")


def test_reports_are_for_admins_and_auditors(api: Callable[..., Api], users: None) -> None:
    auditor = api("north-auditor", scopes=("read",))
    contacts = auditor.get("/reports/contacts?from=2026-01-01&to=2026-12-31")
    assert contacts.status_code == 200, contacts.json
    assert contacts.json["summary"]["total"] == 0 and "month" in contacts.json["columns"]
    for name in ("register", "impact", "goals"):
        assert auditor.get(f"/reports/{name}").status_code == 200, name
    _problem(api().get("/reports/contacts"), 403, "permission-denied")
    _problem(auditor.get("/reports/contacts?from=2026-02-01&to=2026-01-01"), 400, "bad-request")


def test_unknown_paths_and_methods_are_problems(api: Callable[..., Api]) -> None:
    caller = api()
    _problem(caller.get("/nothing"), 404)
    _problem(caller.get("/instances/abc"), 404)
    response = caller.client.delete("/api/v1/tasks", headers=caller.headers)
    _problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_the_openapi_document(client: WebClient) -> None:
    doc = client.get("/api/v1/openapi.json").json
    assert (
        doc["openapi"] == "3.1.0"
        and doc["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    )
    assert {"/api/v1/tasks", "/api/v1/instances/{instance_id}", "/api/v1/contact-intake"} <= set(doc["paths"])
    default = doc["components"]["responses"]["DEFAULT_ERROR"]
    assert list(default["content"]) == [PROBLEM]
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and b"swagger-ui-bundle.js" in page.data and b"<script>" not in page.data


def test_procflow_token_create(
    db_url: str, users: None, monkeypatch: pytest.MonkeyPatch, client: WebClient
) -> None:
    import json

    from click.testing import CliRunner

    from web.cli import main

    monkeypatch.setenv("PROCFLOW_DATABASE_URL", db_url)
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "token",
            "create",
            "north-req",
            "--org",
            "north",
            "--scope",
            "read",
            "--expires-days",
            "7",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert set(made) >= {"token", "expires_at"} and made["scopes"] == ["read"]
    expires = dt.datetime.fromisoformat(made["expires_at"])
    assert dt.timedelta(days=6, hours=23) < expires - engine.models.utcnow() <= dt.timedelta(days=7)
    caller = Api(client, made["token"])
    assert caller.get("/tasks").status_code == 200
    _problem(caller.post("/instances", json={"process_id": "web_purchase"}), 403, "insufficient-scope")
    refused = runner.invoke(main, ["token", "create", "south-req", "--org", "north"])
    assert refused.exit_code == 1 and "No user 'south-req' in organisation 'north'" in refused.stderr
    revoked = runner.invoke(main, ["token", "revoke", str(made["id"]), "--org", "north", "--json"])
    assert revoked.exit_code == 0, revoked.output
    _problem(caller.get("/tasks"), 401, "invalid-token")
