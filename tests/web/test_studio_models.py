"""The studio's models list, drafts, validate, deploy, versions, import/export and try it, over HTTP."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from werkzeug.test import TestResponse

import engine
from tests.conftest import FIXTURES
from tests.web.conftest import APPROVAL, PURCHASE, LoginAs, WebClient

Factory = so.sessionmaker[so.Session]
REGISTRATION = FIXTURES / "message_form"


@pytest.fixture
def studio_setup(session_factory: Factory, deployed: None) -> None:
    """Approval and purchase shared; north runs an own approval v1 (two cases); south an own registration."""
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL, organisation="north", user="north-owner")
        engine.deploy_path(s, REGISTRATION, organisation="south", user="south-owner")
        for _ in range(2):
            engine.start_instance(s, "approval", organisation="north", user="north-req")
        engine.start_instance(s, "approval", organisation="south", user="south-req")


def _put(client: WebClient, path: str, text: str, **headers: str) -> TestResponse:
    assert client.csrf_token
    return client.put(path, data=text.encode(), headers={"X-CSRFToken": client.csrf_token, **headers})


def _delete(client: WebClient, path: str) -> TestResponse:
    assert client.csrf_token
    return client.delete(path, headers={"X-CSRFToken": client.csrf_token})


def _bpmn(client: WebClient, process_id: str = "approval", name: str = "approval.bpmn") -> str:
    response = client.get(f"/studio/{process_id}/files/{name}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_list_shows_own_and_shared_processes_with_versions_and_counts(
    login_as: LoginAs, studio_setup: None
) -> None:
    client = login_as("process_owner")
    page = client.get("/studio/").get_data(as_text=True)
    assert 'id="model-approval"' in page and 'id="model-web_purchase"' in page
    assert 'id="model-registration"' not in page  # south's own process
    approval = page[page.index('id="model-approval"') : page.index('id="model-web_purchase"')]
    # North's own v1 (by north-owner, two running cases) over the shared v1 (no deployer).
    assert "Your organisation runs its own version 1." in approval
    rows = approval.split("<tr")[2:]
    assert "Own" in rows[0] and "north-owner" in rows[0] and '<td class="number">2</td>' in rows[0]
    assert "Shared" in rows[1] and '<td class="number">0</td>' in rows[1]
    purchase = page[page.index('id="model-web_purchase"') :]
    assert "Your organisation runs the shared version 1." in purchase and "Customise" in purchase
    assert "webkitdirectory" in page and 'name="bundle"' in page


@pytest.mark.parametrize("role", ["case_handler", "requester", "approver", "auditor"])
def test_everyone_but_process_owners_and_admins_gets_404(
    login_as: LoginAs, studio_setup: None, role: str
) -> None:
    client = login_as(role)
    for path in (
        "/studio/",
        "/studio/approval/files",
        "/studio/approval/versions",
        "/studio/approval/export",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post("/studio/approval/validate", json={}).status_code == 404


def _every_endpoint(client: WebClient, process_id: str) -> list[tuple[str, int]]:
    base = f"/studio/{process_id}"
    answers = [
        (f"GET {base}/files", client.get(f"{base}/files").status_code),
        (f"GET {base}/files/x.bpmn", client.get(f"{base}/files/registration.bpmn").status_code),
        (f"PUT {base}/files/x.bpmn", _put(client, f"{base}/files/registration.bpmn", "<x/>").status_code),
        (f"DELETE {base}/files/x.bpmn", _delete(client, f"{base}/files/registration.bpmn").status_code),
        (f"POST {base}/validate", client.post(f"{base}/validate", json={}).status_code),
        (f"GET {base}/deploy-preview", client.get(f"{base}/deploy-preview").status_code),
        (f"POST {base}/deploy", client.post(f"{base}/deploy", json={}).status_code),
        (f"POST {base}/try", client.post(f"{base}/try", json={}).status_code),
        (f"GET {base}/versions", client.get(f"{base}/versions").status_code),
        (
            f"GET {base}/versions/1/files/x",
            client.get(f"{base}/versions/1/files/registration.bpmn").status_code,
        ),
        (f"GET {base}/export", client.get(f"{base}/export").status_code),
        (f"GET {base}/export?version=1", client.get(f"{base}/export?version=1").status_code),
        (f"POST {base}/customise", client.post(f"{base}/customise").status_code),
        (f"POST {base}/discard", client.post(f"{base}/discard").status_code),
    ]
    return [(what, status) for what, status in answers if status != 404]


def test_another_organisations_own_process_is_404_on_every_endpoint(
    login_as: LoginAs, studio_setup: None, session_factory: Factory
) -> None:
    with session_factory.begin() as s:
        south = engine.get_organisation(s, "south").id
        engine.studio.open_draft(s, south, "registration", user="south-owner")
    for role in ("process_owner", "admin"):
        client = login_as(role, "north")
        assert _every_endpoint(client, "registration") == []
    # South's own process owner sees it.
    client = login_as("process_owner", "south")
    assert client.get("/studio/registration/files").get_json()["draft"] is True


def test_files_come_from_the_running_version_until_a_draft_is_saved(
    login_as: LoginAs, studio_setup: None
) -> None:
    client = login_as("process_owner")
    listing = client.get("/studio/approval/files").get_json()
    assert listing["draft"] is False and listing["draft_version"] is None
    assert [f["name"] for f in listing["files"]] == [
        "approval.bpmn",
        "approve.schema.json",
        "request.schema.json",
    ]
    assert listing["files"][0]["url"] == "/studio/approval/files/approval.bpmn"
    text = _bpmn(client)
    saved = _put(
        client, "/studio/approval/files/approval.bpmn", text.replace("Describe the purchase", "Describe")
    )
    assert saved.status_code == 200
    assert saved.get_json() == {"saved": "approval.bpmn", "draft_version": 2}
    listing = client.get("/studio/approval/files").get_json()
    assert (listing["draft"], listing["draft_version"]) == (True, 2)
    assert "Describe the purchase" not in _bpmn(client)
    assert client.get("/studio/approval/files/nothing.json").status_code == 404
    # A new file, then deleted.
    assert _put(client, "/studio/approval/files/forms/new.json", "{}").get_json()["draft_version"] == 3
    deleted = _delete(client, "/studio/approval/files/forms/new.json")
    assert deleted.get_json() == {"deleted": "forms/new.json", "draft_version": 4}


def test_saves_are_refused_in_one_shape(login_as: LoginAs, studio_setup: None) -> None:
    client = login_as("process_owner")
    refused = _put(client, "/studio/approval/files/notes.txt", "hello")
    assert refused.status_code == 422
    (problem,) = refused.get_json()["problems"]
    assert problem["severity"] == "error" and problem["file"] == "notes.txt" and ".bpmn" in problem["message"]
    bad_text = client.put(
        "/studio/approval/files/a.json", data=b"\xff\xfe", headers={"X-CSRFToken": client.csrf_token or ""}
    )
    assert bad_text.status_code == 422 and bad_text.get_json()["problems"][0]["file"] == "a.json"
    # Without the CSRF token nothing is saved.
    assert client.put("/studio/approval/files/a.json", data=b"{}").status_code == 400


def test_a_stale_draft_version_is_409(login_as: LoginAs, studio_setup: None) -> None:
    client = login_as("process_owner")
    first = _put(client, "/studio/approval/files/a.json", "{}").get_json()["draft_version"]
    assert (
        _put(client, "/studio/approval/files/a.json", "[]", **{"If-Match": f'"{first}"'}).status_code == 200
    )
    stale = _put(client, "/studio/approval/files/a.json", "[1]", **{"If-Match": f'"{first}"'})
    assert stale.status_code == 409
    assert "saved meanwhile" in stale.get_json()["problems"][0]["message"]
    assert client.get("/studio/approval/files/a.json").get_data(as_text=True) == "[]"


def test_a_shared_process_is_read_only_until_customised(login_as: LoginAs, studio_setup: None) -> None:
    client = login_as("process_owner")
    text = _bpmn(client, "web_purchase", "purchase.bpmn")
    refused = _put(client, "/studio/web_purchase/files/purchase.bpmn", text)
    assert refused.status_code == 403
    assert "customise" in refused.get_json()["problems"][0]["message"]
    assert client.post("/studio/web_purchase/try", json={}).status_code == 403
    assert "customise it to try" in client.get("/studio/web_purchase/try").get_data(as_text=True)
    preview = client.get("/studio/web_purchase/deploy-preview").get_json()
    assert preview["target"] == "own" and preview["instances_staying"] == {}
    customised = client.post("/studio/web_purchase/customise")
    assert customised.status_code == 303 and customised.headers["Location"].endswith("/studio/web_purchase")
    assert _put(client, "/studio/web_purchase/files/purchase.bpmn", text).status_code == 200
    deployed = client.post("/studio/web_purchase/deploy", json={}).get_json()
    assert deployed == {
        "deployed": [{"process_id": "web_purchase", "version": 1, "changed": True, "shared": False}]
    }


def test_the_platform_deploys_shared_versions(
    login_as: LoginAs, studio_setup: None, session_factory: Factory
) -> None:
    with session_factory.begin() as s:
        engine.get_organisation(s, "south").is_platform = True
        engine.start_instance(s, "web_purchase", organisation="north", user="north-req")
    client = login_as("process_owner", "south")
    text = _bpmn(client, "web_purchase", "purchase.bpmn")
    assert (
        _put(
            client, "/studio/web_purchase/files/purchase.bpmn", text.replace("Small purchase", "Purchase")
        ).status_code
        == 200
    )
    preview = client.get("/studio/web_purchase/deploy-preview").get_json()
    assert (
        preview["target"] == "shared" and preview["running"]["version"] == 1 and preview["running"]["shared"]
    )
    # For the shared versions it deploys, the platform sees how many cases of all organisations stay.
    assert preview["instances_staying"] == {"1": 1}
    deployed = client.post("/studio/web_purchase/deploy", json={}).get_json()["deployed"]
    assert deployed == [{"process_id": "web_purchase", "version": 2, "changed": True, "shared": True}]
    north = login_as("process_owner", "north")
    assert "Your organisation runs the shared version 2." in north.get("/studio/").get_data(as_text=True)


def test_validate_pins_problems_and_deploy_refuses_them(login_as: LoginAs, studio_setup: None) -> None:
    client = login_as("process_owner")
    assert client.post("/studio/approval/validate", json={}).get_json() == {"problems": []}
    text = _bpmn(client).replace('value="approve.schema.json"', 'value="gone.json"')
    _put(client, "/studio/approval/files/approval.bpmn", text)
    (problem,) = client.post("/studio/approval/validate", json={}).get_json()["problems"]
    assert (problem["file"], problem["element"], problem["severity"]) == ("approval.bpmn", "approve", "error")
    assert problem["line"] == text[: text.index('id="approve"')].count("\n") + 1
    refused = client.post("/studio/approval/deploy", json={})
    assert refused.status_code == 422 and refused.get_json()["problems"] == [problem]


def test_deploy_makes_version_two_and_the_draft_is_gone(
    login_as: LoginAs, studio_setup: None, session_factory: Factory
) -> None:
    client = login_as("process_owner")
    text = _bpmn(client).replace("Describe the purchase", "Describe the need")
    version = _put(client, "/studio/approval/files/approval.bpmn", text).get_json()["draft_version"]
    preview = client.get("/studio/approval/deploy-preview").get_json()
    assert preview["target"] == "own" and preview["instances_staying"] == {"1": 2}
    assert preview["instances_staying_shared"] == {}
    assert preview["running"]["files"]["approval.bpmn"] == "/studio/approval/versions/1/files/approval.bpmn"
    assert preview["base_version"] == {"version": 1, "shared": False} and preview["draft_version"] == version
    assert client.post(f"/studio/approval/deploy?draft_version={version - 1}", json={}).status_code == 409
    deployed = client.post("/studio/approval/deploy", json={}, headers={"If-Match": str(version)}).get_json()
    assert deployed == {
        "deployed": [{"process_id": "approval", "version": 2, "changed": True, "shared": False}]
    }
    assert client.get("/studio/approval/files").get_json()["draft"] is False
    assert client.get("/studio/approval/versions/1/files/approval.bpmn").get_data(as_text=True) != text
    assert client.get("/studio/approval/versions/2/files/approval.bpmn").get_data(as_text=True) == text
    assert client.get("/studio/approval/versions/1/files/approval.bpmn?shared=1").status_code == 200
    assert client.get("/studio/approval/versions/3/files/approval.bpmn").status_code == 404
    with session_factory() as s:
        event = s.scalars(sa.select(engine.AuditEvent).order_by(engine.AuditEvent.id.desc())).first()
        assert event is not None and (event.kind, event.actor) == ("deployed", "north-owner")
    page = client.get("/studio/approval/versions").get_data(as_text=True)
    assert page.count("<td>north-owner</td>") == 2 and "Version 2" in page and "export?version=2" in page


def test_try_starts_a_test_case_of_the_draft(
    login_as: LoginAs, studio_setup: None, session_factory: Factory
) -> None:
    client = login_as("process_owner")
    text = _bpmn(client).replace("Describe the purchase", "Describe the need")
    _put(client, "/studio/approval/files/approval.bpmn", text)
    answer = client.post("/studio/approval/try", json={})
    assert answer.status_code == 200
    url = answer.get_json()["instance_url"]
    page = client.get(url).get_data(as_text=True)
    assert "Test case" in page and "Draft under test" in page
    with session_factory() as s:
        instance = engine.get_instance(s, int(url.rsplit("/", 1)[1]))
        (task,) = engine.list_tasks(s, instance_id=instance.id)
        assert instance.is_test and task.name == "Describe the need"
        assert task.assignee_id == engine.get_user(s, "north-owner").id
        assert s.get(engine.CaseReport, instance.id) is None
    # The catalogue and the list still show version 1 only.
    assert "Version -1" not in client.get("/studio/").get_data(as_text=True)


def test_a_start_forms_data_is_checked_when_trying(
    login_as: LoginAs, studio_setup: None, session_factory: Factory
) -> None:
    client = login_as("process_owner", "south")
    refused = client.post("/studio/registration/try", json={"data": {"name": "A"}})
    assert refused.status_code == 422
    fields = {p["field"] for p in refused.get_json()["problems"]}
    assert fields == {"/name", "/org_number"}
    started = client.post(
        "/studio/registration/try", json={"data": {"name": "Acme", "org_number": "556677-8899"}}
    )
    assert started.status_code == 200


def _zip_names(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_export_and_import_round_trip(login_as: LoginAs, studio_setup: None) -> None:
    client = login_as("process_owner")
    text = _bpmn(client).replace("Describe the purchase", "Describe the need")
    _put(client, "/studio/approval/files/approval.bpmn", text)
    exported = client.get("/studio/approval/export")
    assert exported.headers["Content-Disposition"].endswith("approval-draft.zip")
    names = _zip_names(exported.data)
    assert sorted(names) == [
        "approval/approval.bpmn",
        "approval/approve.schema.json",
        "approval/process_model.json",
        "approval/request.schema.json",
    ]
    assert json.loads(names["approval/process_model.json"])["primary_process_id"] == "approval"
    version_zip = _zip_names(client.get("/studio/approval/export?version=1").data)
    assert "Describe the purchase" in version_zip["approval/approval.bpmn"]
    # South imports north's export: a draft of south's, equal to north's draft.
    south = login_as("process_owner", "south")
    imported = south.post(
        "/studio/import",
        data={"bundle": (io.BytesIO(exported.data), "approval-draft.zip")},
        content_type="multipart/form-data",
    )
    assert imported.status_code == 303 and imported.headers["Location"].endswith("/studio/approval")
    listing = south.get("/studio/approval/files").get_json()
    assert listing["draft"] is True
    assert [f["name"] for f in listing["files"]] == [
        "approval.bpmn",
        "approve.schema.json",
        "request.schema.json",
    ]
    assert _bpmn(south) == text
    assert south.post("/studio/approval/deploy", json={}).get_json()["deployed"][0]["version"] == 1


def test_a_folder_upload_imports_and_a_bad_upload_is_shown_on_the_list(
    login_as: LoginAs, studio_setup: None
) -> None:
    client = login_as("process_owner")
    files = [(io.BytesIO(p.read_bytes()), f"purchase/{p.name}") for p in sorted(PURCHASE.iterdir())]
    imported = client.post("/studio/import", data={"files": files}, content_type="multipart/form-data")
    assert imported.status_code == 303 and imported.headers["Location"].endswith("/studio/web_purchase")
    assert client.get("/studio/web_purchase/files").get_json()["draft"] is True
    broken = (PURCHASE / "purchase.bpmn").read_text().replace("</bpmn:process>", "</bpmn:proces>")
    refused = client.post(
        "/studio/import",
        data={"files": [(io.BytesIO(broken.encode()), "p/purchase.bpmn")]},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "The upload was not imported." in page and "purchase.bpmn, line" in page
    empty = client.post("/studio/import", data={}, content_type="multipart/form-data")
    assert empty.status_code == 422 and "Choose a zip file or a folder" in empty.get_data(as_text=True)


def test_discarding_a_draft_keeps_the_version(login_as: LoginAs, studio_setup: None) -> None:
    client = login_as("process_owner")
    _put(client, "/studio/approval/files/a.json", "{}")
    assert client.post("/studio/approval/discard").status_code == 303
    assert client.get("/studio/approval/files").get_json()["draft"] is False
    assert client.post("/studio/approval/discard").status_code == 404


def test_the_try_page_asks_for_the_start_form_and_opens_the_test_case(
    login_as: LoginAs, studio_setup: None, session_factory: Factory
) -> None:
    client = login_as("process_owner", "south")
    refused = client.post("/studio/registration/try", json={})
    assert refused.status_code == 422
    assert refused.get_json()["start_form_url"] == "/studio/registration/try"
    page = client.get("/studio/registration/try").get_data(as_text=True)
    assert 'name="org_number"' in page and "Start a test case" in page
    invalid = client.post("/studio/registration/try", data={"name": "Acme", "org_number": "12"})
    assert invalid.status_code == 422 and 'name="org_number"' in invalid.get_data(as_text=True)
    started = client.post("/studio/registration/try", data={"name": "Acme", "org_number": "556677-8899"})
    assert started.status_code == 303 and "/tasks/" in started.headers["Location"]
    with session_factory() as s:
        instance = s.scalars(sa.select(engine.ProcessInstance).where(engine.ProcessInstance.is_test)).one()
        assert instance.process_id == "registration"
    # A broken draft: the page names the problem instead of a form.
    text = _bpmn(client, "registration", "registration.bpmn").replace("</bpmn:process>", "</bpmn:proces>")
    _put(client, "/studio/registration/files/registration.bpmn", text)
    broken = client.post("/studio/registration/try", data={})
    assert broken.status_code == 422 and "registration.bpmn, line" in broken.get_data(as_text=True)
