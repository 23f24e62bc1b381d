"""Schemathesis against /api/v1/openapi.json: every operation, with a token, on a database with cases in it.

No response may be a server error, and every response must match what the
document says of its status, content type, headers and body. Runs on SQLite
and, with ``PROCFLOW_DATABASE_URL``, on PostgreSQL (where NUL characters and
out-of-range ids would be database errors if they got through).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
import sqlalchemy.orm as so
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import engine
from engine import api_tokens
from tests.conftest import PROCESSES
from tests.web.conftest import complete

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 15
REQUEST = {"subject": "Laptops", "category": "goods", "estimated_value": 1200.5, "needed_by": "2027-03-31"}


@pytest.fixture
def token(session_factory: so.sessionmaker[so.Session], deployed: None) -> str:
    """A write token of a user with every role, in an organisation with open and completed cases."""
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "customer_contact", organisation="north")
        engine.add_user(
            s,
            "north-api",
            organisation="north",
            roles=list(engine.ROLES),
            groups=["requesters", "handlers", "approvers", "reports"],
        )
        account = api_tokens.create_service_account(s, organisation="north", name="Web form", actor=None)
        issued = api_tokens.create_token(
            s, username=account.user.username, organisation="north", name="schemathesis", actor=None
        )
        issued = api_tokens.create_token(
            s, username="north-api", organisation="north", name="schemathesis", scopes=["write"], actor=None
        )
        for _ in range(3):
            engine.start_instance(s, "web_purchase", organisation="north", user="north-api")
        engine.start_instance(s, "web_purchase", organisation="south", user="south-req")
    instance_id = 1
    complete(session_factory, instance_id, "north-api", **REQUEST)
    return issued.token


# Every operation of the document, spelled out: test_the_list_is_the_document fails when one is added
# without being listed here. (schemathesis.pytest.from_fixture does not run on pytest 9.)
OPERATIONS = [
    ("GET", "/api/v1/processes"),
    ("GET", "/api/v1/processes/{process_id}/start-form"),
    ("GET", "/api/v1/instances"),
    ("POST", "/api/v1/instances"),
    ("GET", "/api/v1/instances/{instance_id}"),
    ("POST", "/api/v1/instances/{instance_id}/suspend"),
    ("POST", "/api/v1/instances/{instance_id}/resume"),
    ("POST", "/api/v1/instances/{instance_id}/cancel"),
    ("POST", "/api/v1/instances/{instance_id}/retry"),
    ("PATCH", "/api/v1/instances/{instance_id}/data"),
    ("GET", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/{task_id}"),
    ("POST", "/api/v1/tasks/{task_id}/claim"),
    ("POST", "/api/v1/tasks/{task_id}/unclaim"),
    ("POST", "/api/v1/tasks/{task_id}/complete"),
    ("POST", "/api/v1/messages"),
    ("POST", "/api/v1/contact-intake"),
    ("POST", "/api/v1/deployments"),
    ("GET", "/api/v1/instances/{instance_id}/attachments"),
    ("GET", "/api/v1/attachments/{attachment_id}"),
    ("POST", "/api/v1/tasks/{task_id}/attachments"),
    ("GET", "/api/v1/reports/contacts"),
    ("GET", "/api/v1/reports/register"),
    ("GET", "/api/v1/reports/impact"),
    ("GET", "/api/v1/reports/goals"),
]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def test_the_list_is_the_document(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").json
    assert document is not None
    listed = {
        (m.upper(), path) for path, item in document["paths"].items() for m in item if m != "parameters"
    }
    assert listed == set(OPERATIONS)


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_conforms(
    app: Flask, token: str, method: str, path: str, mode: GenerationMode
) -> None:
    operation = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[path][method]
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    conforms()
