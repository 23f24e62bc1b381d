"""Gunicorn settings for production: ``procflow serve --production`` (``gunicorn -c web/gunicorn.conf.py``).

Each setting can be changed by an environment variable:

- ``PROCFLOW_BIND`` (default ``127.0.0.1:8000``): where to listen; a reverse proxy with TLS in front.
- ``PROCFLOW_WORKERS`` (default 2 times the CPUs + 1, at most 8): worker processes. Each has its own
  pool of script evaluator processes, so count memory for both.
- ``PROCFLOW_THREADS`` (default 1): threads per worker (``gthread`` worker when above 1).
- ``PROCFLOW_TIMEOUT`` (default 60): seconds a request may take before its worker is restarted.
- ``PROCFLOW_GRACEFUL_TIMEOUT`` (default 30): seconds a worker gets to finish on a restart.
- ``PROCFLOW_MAX_REQUESTS`` (default 2000, 0: never): a worker is replaced after this many requests.
- ``PROCFLOW_METRICS_BIND`` (unset): also serve ``/metrics`` without a token on this internal
  address, from a small process of its own (:func:`web.ops.serve_internal_metrics`).
- ``PROMETHEUS_MULTIPROC_DIR``: where workers keep their request counts for ``/metrics``;
  default a fresh temporary folder, emptied when gunicorn starts.

The app is not preloaded: each worker imports it after the fork, so no database connection
or evaluator process is shared between workers. Nothing lives in one worker only (the sign-in
throttle, sessions, caches: see the README's production section), so any worker, on any node,
may take any request.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}") from None


wsgi_app = "web:create_app()"
bind = [part.strip() for part in os.environ.get("PROCFLOW_BIND", "127.0.0.1:8000").split(",") if part.strip()]
workers = _int("PROCFLOW_WORKERS", min(2 * (os.cpu_count() or 1) + 1, 8))
threads = _int("PROCFLOW_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("PROCFLOW_TIMEOUT", 60)
graceful_timeout = _int("PROCFLOW_GRACEFUL_TIMEOUT", 30)
keepalive = 5
max_requests = _int("PROCFLOW_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10
preload_app = False
# X-Forwarded-* are trusted from these proxies only (gunicorn's default: the local host).
forwarded_allow_ips = os.environ.get("PROCFLOW_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
errorlog = "-"
loglevel = os.environ.get("PROCFLOW_LOG_LEVEL", "info").lower()
proc_name = "procflow"
# gunicorn's control socket sits at one path per user by default, which a second server on the
# host (another node, a test) would take over: off unless PROCFLOW_CONTROL_SOCKET names a path.
if os.environ.get("PROCFLOW_CONTROL_SOCKET"):
    control_socket = os.environ["PROCFLOW_CONTROL_SOCKET"]
else:
    control_socket_disable = True

_json = os.environ.get("PROCFLOW_LOG_FORMAT", "").strip().lower() == "json"
if _json:
    # The app writes one JSON line per request with its request id (web/logging_setup.py).
    accesslog = None
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "web.logging_setup.JsonFormatter"}},
        "filters": {"request_id": {"()": "web.logging_setup.RequestIdFilter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": loglevel.upper(), "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": loglevel.upper(), "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }
else:
    accesslog = "-"
    access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'

# Request counts of every worker, summed by whichever worker answers /metrics. Set before any
# worker imports prometheus_client (the app is not preloaded).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="procflow-metrics-")
_metrics_process: subprocess.Popen[bytes] | None = None


def on_starting(server: Any) -> None:
    """Empty the metrics folder: counts of an earlier run's workers must not be summed in."""
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)


def when_ready(server: Any) -> None:
    """Start the internal metrics server when ``PROCFLOW_METRICS_BIND`` asks for one."""
    global _metrics_process
    metrics_bind = os.environ.get("PROCFLOW_METRICS_BIND", "").strip()
    if metrics_bind and _metrics_process is None:
        _metrics_process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, web.ops; web.ops.serve_internal_metrics(sys.argv[1])",
                metrics_bind,
            ]
        )
        server.log.info("metrics on http://%s/metrics (pid %s)", metrics_bind, _metrics_process.pid)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the metrics folder (its counters stay summed)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """Stop the internal metrics server with gunicorn."""
    if _metrics_process is not None and _metrics_process.poll() is None:
        _metrics_process.terminate()
        try:
            _metrics_process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _metrics_process.kill()
