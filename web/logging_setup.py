"""Logs: a request id for every request, and JSON lines when ``PROCFLOW_LOG_FORMAT=json``.

Every request gets an id: the caller's ``X-Request-ID`` when it is a sane token
(a load balancer or another service sets it), else a new random one. It is
sent back in the response's ``X-Request-ID`` header and put on every log line
written while the request is served, by the web app and by the engine below it.

With ``PROCFLOW_LOG_FORMAT=json`` the root logger writes one JSON object per
line on standard error (``ts``, ``level``, ``logger``, ``message``,
``request_id`` — null outside a request — and ``exc_info`` for a trace), and
the app logs one ``request`` line per request with method, path, endpoint,
status and duration (gunicorn's own access log is then left off:
``web/gunicorn.conf.py``). Any other value keeps plain text lines.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request

FORMAT_ENV = "PROCFLOW_LOG_FORMAT"
LEVEL_ENV = "PROCFLOW_LOG_LEVEL"
HEADER = "X-Request-ID"
# What a caller's request id may look like; anything else is replaced (no log injection).
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_HANDLER_MARK = "_procflow_handler"
access_log = logging.getLogger("procflow.request")


def json_logs_wanted(environ: dict[str, str] | None = None) -> bool:
    """Whether ``PROCFLOW_LOG_FORMAT`` asks for JSON lines."""
    return (environ if environ is not None else os.environ).get(FORMAT_ENV, "").strip().lower() == "json"


def current_request_id() -> str | None:
    """Return the id of the request being served, or ``None`` outside a request."""
    if not has_request_context():
        return None
    value = g.get("request_id")
    return str(value) if value else None


class RequestIdFilter(logging.Filter):
    """Put ``request_id`` on every record (``None`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; fields given with ``extra={...}`` are kept."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(*, level: int | str | None = None, environ: dict[str, str] | None = None) -> None:
    """Set the root logger up once per process: JSON lines or text, each with the request id.

    Replaces the handlers an earlier call (or ``logging.basicConfig``) installed, so that
    the command line and gunicorn workers end with exactly one handler.
    """
    env = environ if environ is not None else dict(os.environ)
    root = logging.getLogger()
    chosen = level if level is not None else env.get(LEVEL_ENV, "").upper() or None
    if chosen is not None:
        root.setLevel(chosen)
    elif root.level == logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RequestIdFilter())
    if json_logs_wanted(env):
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)


def _assign_request_id() -> None:
    offered = request.headers.get(HEADER, "")
    g.request_id = offered if _SANE_ID.fullmatch(offered) else uuid.uuid4().hex
    g.request_began = time.perf_counter()


def _send_request_id(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[HEADER] = request_id
    began = g.get("request_began")
    if began is not None and json_logs_wanted():
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "endpoint": request.endpoint,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - began) * 1000, 2),
                "remote_addr": request.remote_addr,
            },
        )
    return response


def init_app(app: Flask) -> None:
    """Give every request an id (``X-Request-ID`` in and out); JSON logs when asked for.

    The root logger is configured only when ``PROCFLOW_LOG_FORMAT`` is set, so tests and
    embedding applications keep their own logging otherwise.
    """
    app.before_request(_assign_request_id)
    app.after_request(_send_request_id)
    if os.environ.get(FORMAT_ENV) and not any(
        getattr(handler, _HANDLER_MARK, False) for handler in logging.getLogger().handlers
    ):
        configure_logging()
