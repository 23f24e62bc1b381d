"""Health, readiness, metrics (read from the database, token-protected), request ids and JSON logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

import engine
from engine.models import utcnow
from tests.web.conftest import WebClient, open_task
from web import create_app
from web.db import database
from web.logging_setup import configure_logging

TOKEN = "metrics-test-token"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def metrics_app(db_url: str) -> Iterator[Flask]:
    app = create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test-secret", "METRICS_TOKEN": TOKEN}
    )
    app.test_client_class = WebClient
    yield app
    database(app).dispose()


def _scrape(app: Flask) -> Samples:
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert names and all(name.startswith("procflow_") for name in names), names
    return _samples(text)


def test_healthz_answers_without_the_database(client: WebClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_checks_the_database_and_the_migrations(
    client: WebClient, session_factory: so.sessionmaker[so.Session]
) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json is not None
    assert ready.json["status"] == "ready"
    assert (
        ready.json["migrations"]["current"]
        == ready.json["migrations"]["head"]
        == list(engine.migration_heads())
    )
    with session_factory.begin() as s:
        (current,) = s.scalars(sa.text("SELECT version_num FROM alembic_version")).all()
        s.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        behind = client.get("/readyz")
        assert behind.status_code == 503 and behind.json is not None
        assert behind.json["migrations"]["current"] == ["0001"]
        assert "procflow db upgrade" in behind.json["reason"]
    finally:
        with session_factory.begin() as s:
            s.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": current})
    assert client.get("/readyz").status_code == 200


def test_readyz_says_unavailable_when_the_database_does_not_answer(tmp_path: Any) -> None:
    missing = tmp_path / "no" / "such" / "folder" / "procflow.sqlite3"
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{missing}", "SECRET_KEY": "x"})
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503 and response.json is not None
        assert response.json["status"] == "unavailable"
        assert response.json["database"].startswith("unreachable")
        assert str(missing) not in response.get_data(as_text=True)  # no internals for an anonymous caller
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        database(app).dispose()


def test_metrics_need_the_token(metrics_app: Flask, client: WebClient) -> None:
    assert client.get("/metrics").status_code == 404  # no token configured: metrics are off on the app
    anonymous = metrics_app.test_client()
    refused = anonymous.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert anonymous.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert "procflow_" not in refused.get_data(as_text=True)


def test_metrics_are_read_from_the_database(
    metrics_app: Flask,
    start: Callable[..., int],
    session_factory: so.sessionmaker[so.Session],
) -> None:
    first, second = start("approval"), start("approval")
    task = open_task(session_factory, first)
    with session_factory.begin() as s:
        engine.complete_task(
            s, task.id, user="north-req",
            data={"subject": "Laptops", "amount": 1000, "requester_email": "nora@example.org"},
        )  # fmt: skip
        row = s.get_one(engine.HumanTask, task.id)
        row.created_at = row.completed_at - dt.timedelta(minutes=10)  # type: ignore[operator,assignment]
        south = engine.start_instance(s, "approval", organisation="south", user="south-req")
        south.status = "error"
        now = utcnow()
        north_id = s.scalar(sa.select(engine.Organisation.id).where(engine.Organisation.key == "north"))
        s.add(engine.Job(kind="timer", organisation_id=north_id, due_at=now - dt.timedelta(seconds=90)))
        s.add(engine.Job(kind="outbox", organisation_id=north_id, due_at=now, status="incident", attempts=3))
    samples = _scrape(metrics_app)
    assert _value(samples, "procflow_instances_started_total", organisation="north", process="approval") == 2
    assert _value(samples, "procflow_instances_started_total", organisation="south", process="approval") == 1
    assert (
        _value(samples, "procflow_instances_completed_total", organisation="north", process="approval") == 0
    )
    assert (
        _value(samples, "procflow_instances", organisation="south", process="approval", status="error") == 1
    )
    # The first case's request is done, its approval waits; the second still waits for its request.
    assert _value(samples, "procflow_open_tasks", organisation="north", group="approvers") == 1
    assert _value(samples, "procflow_open_tasks", organisation="north", group="requesters") == 1
    assert _value(samples, "procflow_task_completion_seconds_count", process="approval") == 1
    assert _value(samples, "procflow_task_completion_seconds_bucket", process="approval", le="300.0") == 0
    assert _value(samples, "procflow_task_completion_seconds_bucket", process="approval", le="900.0") == 1
    assert 599 <= (_value(samples, "procflow_task_completion_seconds_sum", process="approval") or 0) <= 601
    assert _value(samples, "procflow_jobs", kind="timer", status="pending") == 1
    assert _value(samples, "procflow_jobs_due", kind="timer") == 1
    assert 90 <= (_value(samples, "procflow_job_lag_seconds", kind="timer") or 0) < 150
    assert _value(samples, "procflow_job_failed_attempts", kind="outbox") == 3
    assert _value(samples, "procflow_incidents", organisation="south", kind="instance") == 1
    assert _value(samples, "procflow_incidents", organisation="north", kind="job") == 1
    assert second  # started, never touched


def test_request_latency_is_counted_per_endpoint(metrics_app: Flask) -> None:
    def logins() -> float:
        return _value(
            _scrape(metrics_app),
            "procflow_http_request_duration_seconds_count",
            endpoint="auth.login", method="GET", status="200",
        ) or 0.0  # fmt: skip

    before = logins()
    client = metrics_app.test_client()
    for _ in range(3):
        assert client.get("/login").status_code == 200
    assert client.get("/no-such-page").status_code == 404
    samples = _scrape(metrics_app)
    assert logins() == before + 3
    assert (
        _value(
            samples,
            "procflow_http_request_duration_seconds_count",
            endpoint="unmatched",
            method="GET",
            status="404",
        )
        or 0
    ) >= 1
    # Scrapes and probes are not timed.
    assert not any(labels and ("endpoint", "ops.metrics") in labels for _, labels in samples)


def test_every_response_carries_a_request_id(client: WebClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "lb-1234.abc"})
    assert given.headers["X-Request-ID"] == "lb-1234.abc"
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/healthz").headers["X-Request-ID"]
    for forged in ('x"} {"level": "error', "y" * 200, ""):
        replaced = client.get("/healthz", headers={"X-Request-ID": forged}).headers["X-Request-ID"]
        assert replaced != forged and len(replaced) == 32


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setenv("PROCFLOW_LOG_FORMAT", "json")
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_logs_put_the_request_id_on_every_line(
    json_logs: None, app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(level="INFO")

    @app.route("/_log_twice")
    def log_twice() -> str:
        logging.getLogger("engine.somewhere").info("first line")
        logging.getLogger("web.somewhere").warning("second %s", "line")
        return "ok"

    response = app.test_client().get("/_log_twice", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 200
    logging.getLogger("outside").info("no request here")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    in_request = [line for line in lines if line["logger"] != "outside"]
    assert [line["message"] for line in in_request] == ["first line", "second line", "GET /_log_twice 200"]
    assert {line["request_id"] for line in in_request} == {"req-42"}
    access = in_request[-1]
    assert access["status"] == 200 and access["endpoint"] == "log_twice" and access["duration_ms"] >= 0
    (outside,) = [line for line in lines if line["logger"] == "outside"]
    assert outside["request_id"] is None and outside["level"] == "info" and outside["ts"].endswith("Z")
