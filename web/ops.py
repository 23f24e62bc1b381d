"""Operations endpoints: ``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus).

- ``/healthz``: the process answers (no database call), for a liveness probe.
- ``/readyz``: the database answers and its schema is at the migrations' head,
  for a readiness probe or a load balancer; 503 with the reason otherwise.
- ``/metrics``: Prometheus text format, every name starting with ``procflow_``.

Most metrics are read from the database at scrape time (:class:`DatabaseCollector`,
counted by :func:`engine.read_metrics`; this module only names them for Prometheus):
instances started and completed per process, open tasks per group, task
completion latency, jobs, job lag and failures, incidents. They are the same on
every web node and gunicorn worker, whichever one Prometheus asks, and need no
state in any process. Only request latency by endpoint is counted in the
process that served the request; under gunicorn that uses prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set up by ``web/gunicorn.conf.py``),
so that any worker's answer sums every worker's requests.

``/metrics`` on the app answers only a request with ``Authorization: Bearer
<PROCFLOW_METRICS_TOKEN>``; without that variable it answers 404. Instead (or
as well), ``PROCFLOW_METRICS_BIND=127.0.0.1:9464`` makes ``procflow serve
--production`` serve the same metrics, without a token, on that internal
address (:func:`serve_internal_metrics`, a process of its own beside gunicorn).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy.orm as so
from flask import Blueprint, Response, current_app, g, jsonify, request
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

import engine

from .db import database

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
TOKEN_ENV = "PROCFLOW_METRICS_TOKEN"
# Paths whose requests are not timed (a scrape every few seconds would drown the real traffic).
UNTIMED_ENDPOINTS = frozenset({"ops.metrics", "ops.healthz", "ops.readyz", "static"})
_LOCAL = CollectorRegistry()
REQUEST_LATENCY = Histogram(
    "procflow_http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint (the Flask view), method and status code.",
    ("endpoint", "method", "status"),
    registry=_LOCAL,
)


# --- health and readiness -------------------------------------------------------------------


@bp.route("/healthz")
def healthz() -> Response:
    """Answer 200 while the process serves requests (no database call)."""
    return _no_store(jsonify({"status": "ok"}))


def readiness_answer(readiness: engine.Readiness) -> dict[str, Any]:
    """Return the JSON body of ``/readyz`` for *readiness* (no internals: the probe is anonymous)."""
    if not readiness.database_answers:
        return {"status": "unavailable", "database": f"unreachable ({readiness.database_error})"}
    details: dict[str, Any] = {
        "database": "ok",
        "migrations": {"current": list(readiness.current), "head": list(readiness.head)},
    }
    if not readiness.at_head:
        return {
            "status": "unavailable",
            **details,
            "reason": "the database is not at the migrations' head; run procflow db upgrade",
        }
    return {"status": "ready", **details}


@bp.route("/readyz")
def readyz() -> tuple[Response, int]:
    """Answer 200 when the database answers and is migrated to head, else 503 saying which."""
    with database().reading_session_factory() as session:
        readiness = engine.check_readiness(session)
    return _no_store(jsonify(readiness_answer(readiness))), 200 if readiness.ready else 503


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# --- metrics --------------------------------------------------------------------------------


def metric_families(snapshot: engine.MetricsSnapshot) -> list[Metric]:
    """Return the Prometheus metric families of what :func:`engine.read_metrics` counted."""
    started = CounterMetricFamily(
        "procflow_instances_started",
        "Process instances started (test runs excluded), per organisation and process.",
        labels=("organisation", "process"),
    )
    completed = CounterMetricFamily(
        "procflow_instances_completed",
        "Process instances that reached their end, per organisation and process.",
        labels=("organisation", "process"),
    )
    for process in snapshot.processes:
        started.add_metric([process.organisation, process.process], process.started)
        completed.add_metric([process.organisation, process.process], process.completed)
    by_status = GaugeMetricFamily(
        "procflow_instances",
        "Process instances by current status, per organisation and process.",
        labels=("organisation", "process", "status"),
    )
    for instances in snapshot.instances:
        by_status.add_metric([instances.organisation, instances.process, instances.status], instances.count)

    open_tasks = GaugeMetricFamily(
        "procflow_open_tasks",
        "Human tasks waiting to be completed, per organisation and candidate group ('' for none).",
        labels=("organisation", "group"),
    )
    for tasks in snapshot.open_tasks:
        open_tasks.add_metric([tasks.organisation, tasks.group], tasks.count)
    latency = HistogramMetricFamily(
        "procflow_task_completion_seconds",
        "Seconds from a human task's creation to its completion, per process.",
        labels=("process",),
    )
    for task_latency in snapshot.task_latency:
        latency.add_metric(
            [task_latency.process],
            [(str(bound), count) for bound, count in task_latency.buckets] + [("+Inf", task_latency.count)],
            sum_value=task_latency.seconds,
        )

    jobs = GaugeMetricFamily(
        "procflow_jobs", "Jobs in the job table, per kind and status.", labels=("kind", "status")
    )
    for job_count in snapshot.jobs:
        jobs.add_metric([job_count.kind, job_count.status], job_count.count)
    retrying = GaugeMetricFamily(
        "procflow_jobs_retrying",
        "Pending jobs that failed at least once and wait for a retry.",
        labels=("kind",),
    )
    failures = GaugeMetricFamily(
        "procflow_job_failed_attempts",
        "Failed attempts of the jobs still in the table (pending retries and incidents).",
        labels=("kind",),
    )
    lag = GaugeMetricFamily(
        "procflow_job_lag_seconds",
        "How long the oldest due job of each kind has waited past its due time (0: none waits).",
        labels=("kind",),
    )
    due = GaugeMetricFamily("procflow_jobs_due", "Pending jobs that are due now, per kind.", labels=("kind",))
    for kind in snapshot.job_kinds:
        retrying.add_metric([kind.kind], kind.retrying)
        failures.add_metric([kind.kind], kind.failed_attempts)
        lag.add_metric([kind.kind], kind.lag_seconds)
        due.add_metric([kind.kind], kind.due)

    incidents = GaugeMetricFamily(
        "procflow_incidents",
        "Open incidents per organisation: instances in error, failed jobs without an instance in error.",
        labels=("organisation", "kind"),
    )
    for incident in snapshot.incidents:
        incidents.add_metric([incident.organisation, incident.kind], incident.count)

    took = GaugeMetricFamily(
        "procflow_metrics_database_seconds", "Time the database queries of this scrape took."
    )
    took.add_metric([], snapshot.query_seconds)
    return [
        started,
        completed,
        by_status,
        open_tasks,
        latency,
        jobs,
        retrying,
        failures,
        lag,
        due,
        incidents,
        took,
    ]


class DatabaseCollector:
    """Prometheus metrics read from the database when scraped: the same answer on every node."""

    def __init__(self, session_factory: so.sessionmaker[so.Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[Metric]:
        with self.session_factory() as session:
            snapshot = engine.read_metrics(session)
        yield from metric_families(snapshot)


def metrics_text(session_factory: so.sessionmaker[so.Session]) -> bytes:
    """Return every metric in Prometheus text format: the database's and the request counts.

    *session_factory* should be a reading one (:func:`engine.reading_engine`): a scrape
    only reads. Request latency comes from every process of this node when
    prometheus-client's multiprocess mode is on (``PROMETHEUS_MULTIPROC_DIR``), else
    from this process.
    """
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        requests = CollectorRegistry()
        multiprocess.MultiProcessCollector(requests)  # type: ignore[no-untyped-call]
    else:
        requests = _LOCAL
    from_database = CollectorRegistry(auto_describe=False)
    from_database.register(DatabaseCollector(session_factory))
    return generate_latest(from_database) + generate_latest(requests)


def _metrics_token() -> str:
    return str(current_app.config.get("METRICS_TOKEN") or os.environ.get(TOKEN_ENV, "")).strip()


@bp.route("/metrics")
def metrics() -> Response:
    """Prometheus metrics, for a bearer of ``PROCFLOW_METRICS_TOKEN`` (404 when none is set)."""
    token = _metrics_token()
    if not token:
        return Response("Not found\n", status=404, mimetype="text/plain")
    offered = request.headers.get("Authorization", "")
    scheme, _, given = offered.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        response = Response("A bearer token is needed for the metrics\n", status=401, mimetype="text/plain")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body = metrics_text(database().reading_session_factory)
    return _no_store(Response(body, mimetype=CONTENT_TYPE_LATEST))


# --- request timing -------------------------------------------------------------------------


@bp.before_app_request
def _start_timer() -> None:
    g.ops_request_began = time.perf_counter()


@bp.after_app_request
def _time_request(response: Response) -> Response:
    began = g.pop("ops_request_began", None)
    endpoint = request.endpoint or "unmatched"  # one label for every 404 of an unknown path
    if began is not None and endpoint not in UNTIMED_ENDPOINTS:
        REQUEST_LATENCY.labels(endpoint, request.method, str(response.status_code)).observe(
            time.perf_counter() - began
        )
    return response


# --- the internal metrics port ----------------------------------------------------------------


def _exit_with_parent() -> None:
    """End this process when the one that started it (gunicorn's master) is gone, even by SIGKILL."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def serve_internal_metrics(bind: str, database_url: str | None = None) -> None:
    """Serve ``/metrics`` without a token on *bind* (``host:port``) until killed.

    Started by ``web/gunicorn.conf.py`` as its own process when ``PROCFLOW_METRICS_BIND``
    is set: bind it to an address only Prometheus reaches.
    """
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    host, _, port = bind.rpartition(":")
    db = engine.create_db_engine(database_url)
    reading = engine.create_session_factory(engine.reading_engine(db))
    _exit_with_parent()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not found\n"]
        body = metrics_text(reading)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [body]

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    with make_server(host.strip("[]") or "127.0.0.1", int(port), app, handler_class=QuietHandler) as server:
        log.info("metrics on http://%s/metrics", bind)
        server.serve_forever()
