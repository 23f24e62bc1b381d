"""The settings page (language, task e-mails), the inbox counts that refresh, and translated names."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import sqlalchemy.orm as so

import engine
from tests.web.conftest import PURCHASE, LoginAs, WebClient

Factory = so.sessionmaker[so.Session]
PURCHASE_NAMES = {
    "web_purchase": {"sv": "Litet inköp", "fi": "Pieni hankinta"},
    "request": {"sv": "Beskriv inköpet", "fi": "Kuvaile hankinta"},
}


def _user(session_factory: Factory, username: str) -> engine.User:
    with session_factory() as s:
        return engine.get_user(s, username)


def test_settings_are_reached_from_the_header_and_saved(login_as: LoginAs, session_factory: Factory) -> None:
    client = login_as("approver")
    inbox = client.get("/").get_data(as_text=True)
    assert 'href="/settings"' in inbox
    page = client.get("/settings").get_data(as_text=True)
    assert re.search(r'id="notify_by_email"[^>]*checked', page)
    assert '<option value="" selected>' in page
    response = client.post("/settings", data={"language": "fi"})  # the checkbox unticked
    assert response.status_code == 303 and response.headers["Location"] == "/settings"
    user = _user(session_factory, "north-boss")
    assert (user.language, user.notify_by_email) == ("fi", False)
    page = client.get("/settings").get_data(as_text=True)
    assert "<h1>Asetukset</h1>" in page and "Asetuksesi on tallennettu." in page
    assert not re.search(r'id="notify_by_email"[^>]*checked', page)
    assert '<option value="fi" lang="fi" selected>' in page
    client.post("/settings", data={"language": "", "notify_by_email": "on"})
    user = _user(session_factory, "north-boss")
    assert (user.language, user.notify_by_email) == (None, True)


def test_the_stored_language_follows_the_user_to_a_new_sign_in(
    login_as: LoginAs, client: WebClient, session_factory: Factory
) -> None:
    login_as("approver").post("/settings", data={"language": "sv", "notify_by_email": "on"})
    client.post("/logout")
    client.delete_cookie("procflow_session")  # another browser: no language in its session
    client.csrf_token = None
    page = login_as("approver").get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "<h1>Inkorg</h1>" in page


def test_the_header_language_switch_stores_the_choice(login_as: LoginAs, session_factory: Factory) -> None:
    client = login_as("requester")
    assert client.post("/language", data={"lang": "sv", "next": "/"}).status_code == 303
    assert _user(session_factory, "north-req").language == "sv"


def test_settings_refuse_bad_input_and_anonymous_visitors(login_as: LoginAs, client: WebClient) -> None:
    assert client.get("/settings").status_code == 302  # to the sign-in page
    login_as("approver")
    assert client.post("/settings", data={"language": "de"}).status_code == 400
    assert client.post("/settings", data={"language": "sv"}, csrf=False).status_code == 400


def test_the_inbox_count_is_a_fragment_that_follows_new_tasks(
    login_as: LoginAs, start: Callable[..., int]
) -> None:
    client = login_as("requester")
    response = client.get("/inbox/counts")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    fragment = response.get_data(as_text=True)
    assert re.search(r'<span class="count" id="inbox-count"[^>]*>0</span>', fragment)
    assert 'hx-get="/inbox/counts"' in fragment and 'hx-trigger="every 30s"' in fragment
    assert "<html" not in fragment and "hx-swap-oob" not in fragment
    start()
    start(user="south-req", org="south")  # another organisation's task is not counted
    fragment = client.get("/inbox/counts").get_data(as_text=True)
    assert re.search(r'id="inbox-count"[^>]*>1</span>', fragment)
    # On the inbox page it polls for the view counts too, which come out of band.
    inbox = client.get("/").get_data(as_text=True)
    assert 'hx-get="/inbox/counts?tabs=1"' in inbox and 'id="inbox-count-group"' in inbox
    tabs = client.get("/inbox/counts?tabs=1").get_data(as_text=True)
    assert re.search(r'id="inbox-count-group" hx-swap-oob="true">1<', tabs)
    assert re.search(r'id="inbox-count-mine" hx-swap-oob="true">0<', tabs)


def test_the_inbox_count_refuses_anonymous_polls(client: WebClient) -> None:
    assert client.get("/inbox/counts").status_code == 302
    polled = client.get(
        "/inbox/counts", headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/?view=mine"}
    )
    assert polled.status_code == 401 and polled.get_data() == b""
    assert polled.headers["HX-Redirect"] == "/login?next=/?view%3Dmine"


def test_pages_show_process_task_and_group_names_in_the_users_language(
    login_as: LoginAs, session_factory: Factory, start: Callable[..., int], tmp_path: Path
) -> None:
    bundle = tmp_path / "purchase"
    shutil.copytree(PURCHASE, bundle)
    (bundle / "names.json").write_text(json.dumps(PURCHASE_NAMES), encoding="utf-8")
    with session_factory.begin() as s:
        engine.deploy_path(s, bundle)
        engine.seed.set_group(
            s,
            engine.get_organisation(s, "north").id,
            "requesters",
            name="Requesters",
            names={"sv": "Beställare", "fi": "Tilaajat"},
        )
    instance_id = start()
    client = login_as("requester")
    for language, process, task, group in (
        ("fi", "Pieni hankinta", "Kuvaile hankinta", "Tilaajat"),
        ("sv", "Litet inköp", "Beskriv inköpet", "Beställare"),
        ("en", "Small purchase", "Describe the purchase", "Requesters"),
    ):
        client.post("/language", data={"lang": language, "next": "/"})
        inbox = client.get("/").get_data(as_text=True)
        assert (
            f">{task}</a></td>" in inbox and f"<td>{process}</td>" in inbox and f"<td>{group}</td>" in inbox
        )
        task_id = _task_id(session_factory, instance_id)
        task_page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
        assert f"<h1>{task}</h1>" in task_page and f"{process} #{instance_id}" in task_page
        catalogue = client.get("/processes/").get_data(as_text=True)
        assert f"<h2>{process}</h2>" in catalogue


def _task_id(session_factory: Factory, instance_id: int) -> int:
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        return task.id
