"""The JSON API: authentication, tasks, completion, and errors as JSON."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy.orm as so

from tests.web.conftest import LoginAs, WebClient, open_task

REQUEST = {"subject": "Laptops", "category": "goods", "estimated_value": 1200.5, "needed_by": "2027-03-31"}


def test_anonymous_api_calls_get_401_json(client: WebClient) -> None:
    response = client.get("/api/tasks")
    assert (
        response.status_code == 401 and response.json is not None and response.json["error"] == "unauthorized"
    )


def test_tasks_and_task(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    client = login_as("requester")
    tasks = client.get("/api/tasks").json
    assert tasks is not None and [t["instance_id"] for t in tasks["tasks"]] == [instance_id]
    task_id = tasks["tasks"][0]["id"]
    detail = client.get(f"/api/tasks/{task_id}").json
    assert detail is not None and detail["schema"]["title"] == "Describe the purchase"
    assert detail["ui_schema"]["estimated_value"]["ui:widget"] == "money"


def test_the_task_list_pages_with_cursors(login_as: LoginAs, start: Callable[..., int]) -> None:
    instances = [start() for _ in range(3)]
    client = login_as("requester")
    first = client.get("/api/tasks?sort=created&limit=2").json
    assert first is not None and [t["instance_id"] for t in first["tasks"]] == instances[:2]
    assert first["previous"] is None and first["next"]
    second = client.get(f"/api/tasks?sort=created&limit=2&after={first['next']}").json
    assert second is not None and [t["instance_id"] for t in second["tasks"]] == instances[2:]
    assert second["next"] is None and second["previous"]
    assert client.get("/api/tasks?limit=0").status_code == 400
    bad = client.get("/api/tasks?after=nonsense")
    assert bad.status_code == 400 and bad.json is not None and "Invalid inbox cursor" in bad.json["message"]


def test_complete_validates_and_conflicts(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    client = login_as("requester")
    invalid = client.post(f"/api/tasks/{task.id}/complete", json={"data": {"subject": "La"}})
    assert invalid.status_code == 422 and invalid.json is not None
    assert invalid.json["errors"]["subject"] == ["Must be at least 3 characters long."]
    done = client.post(f"/api/tasks/{task.id}/complete", json={"data": REQUEST})
    assert done.status_code == 200 and done.json is not None and done.json["instance"]["status"] == "running"
    again = client.post(f"/api/tasks/{task.id}/complete", json={"data": REQUEST})
    assert again.status_code == 409 and again.json is not None and again.json["error"] == "conflict"
    instance = client.get(f"/api/instances/{instance_id}").json
    assert instance is not None and instance["data"]["subject"] == "Laptops"
    assert [t["bpmn_id"] for t in instance["tasks"]] == ["request", "review"]


def test_api_errors_are_json(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    task = open_task(session_factory, start())
    client = login_as("case_handler")
    forbidden = client.post(f"/api/tasks/{task.id}/complete", json={"data": REQUEST})
    assert forbidden.status_code == 403 and forbidden.json is not None
    assert client.post(f"/api/tasks/{task.id}/complete", json=[1]).status_code == 400
    no_csrf = client.post(f"/api/tasks/{task.id}/complete", json={"data": {}}, csrf=False)
    assert no_csrf.status_code == 400 and no_csrf.json is not None and no_csrf.json["error"] == "csrf"
    south = login_as("requester", "south")
    for url in (f"/api/tasks/{task.id}", f"/api/instances/{task.instance_id}", "/api/nothing"):
        response = south.get(url)
        assert response.status_code == 404 and response.json is not None, url


def test_complete_refuses_data_that_would_not_stay_data(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    task = open_task(session_factory, start())
    client = login_as("requester")
    url = f"/api/tasks/{task.id}/complete"
    reserved = client.post(url, json={"data": {**REQUEST, "parameters": {"direct_limit": 10**12}}})
    assert reserved.status_code == 422 and reserved.json is not None
    assert list(reserved.json["errors"]) == ["parameters"]
    deep = '{"data": {"subject": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    headers = {"X-CSRFToken": client.csrf_token or client.fetch_csrf_token()}
    nested = client.post(url, data=deep, content_type="application/json", headers=headers, csrf=False)
    assert nested.status_code == 400 and nested.json is not None
    assert "nested more than 64 levels deep" in nested.json["message"]
    assert open_task(session_factory, task.instance_id).state == "ready"
