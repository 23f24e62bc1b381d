"""Error pages and the app factory's configuration rules."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine.models import DeploymentFile
from tests.web.conftest import LoginAs, WebClient, open_task
from web import ConfigurationError, create_app
from web.config import load_config


def test_unknown_pages_are_a_404_page(login_as: LoginAs) -> None:
    response = login_as("requester").get("/no/such/page")
    assert response.status_code == 404 and "Not found" in response.get_data(as_text=True)


def test_wrong_method_is_405(client: WebClient) -> None:
    assert client.get("/logout").status_code == 405


def test_refuses_to_start_without_a_secret_key() -> None:
    with pytest.raises(ConfigurationError, match="PROCFLOW_SECRET_KEY"):
        create_app({"DATABASE_URL": "sqlite://"})


def test_environment_overrides_defaults_and_the_mapping_wins() -> None:
    environ = {
        "PROCFLOW_SECRET_KEY": "s",
        "PROCFLOW_SESSION_COOKIE_SECURE": "false",
        "PROCFLOW_INBOX_PAGE_SIZE": "7",
    }
    config = load_config({"INBOX_PAGE_SIZE": 3}, environ=environ)
    assert (config["SECRET_KEY"], config["SESSION_COOKIE_SECURE"], config["INBOX_PAGE_SIZE"]) == (
        "s",
        False,
        3,
    )
    with pytest.raises(ConfigurationError, match="PROCFLOW_INBOX_PAGE_SIZE"):
        load_config(environ={"PROCFLOW_SECRET_KEY": "s", "PROCFLOW_INBOX_PAGE_SIZE": "many"})


def test_a_form_stored_before_the_deploy_checks_that_proves_broken_is_a_clear_page(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    # As a bundle deployed before form schemas were checked: its form refers to itself forever.
    looping = {"type": "object", "properties": {"subject": {"$ref": "#/properties/subject"}}}
    with session_factory.begin() as s:
        for row in s.scalars(sa.select(DeploymentFile).where(DeploymentFile.name.endswith(task.form or "-"))):
            row.content = json.dumps(looping)
    engine.SPEC_CACHE.clear()
    client = login_as("requester")
    response = client.post(f"/tasks/{task.id}", data={"subject": "Chairs"})
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "form is broken" in page and "Traceback" not in page
