"""``procflow serve --production``: gunicorn workers, metrics summed over them, JSON logs with request ids."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

BIN = Path(sys.executable).parent
TOKEN = "production-metrics-token"
REQUESTS = 24

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server ended: {log.read_text()[-2000:]}"
        try:
            if _get(url)[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"nothing answered {url} in 60 s: {log.read_text()[-2000:]}")


def _login_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "procflow_http_request_duration_seconds_count" and sample.labels == {
                "endpoint": "auth.login",
                "method": "GET",
                "status": "200",
            }:
                return sample.value
    return 0.0


def test_gunicorn_workers_share_the_metrics_and_log_json_with_request_ids(
    db_url: str, tmp_path: Path
) -> None:
    port, internal = _free_port(), _free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PROCFLOW_", "PROMETHEUS_"))
    }
    env.update(
        PROCFLOW_DATABASE_URL=db_url,
        PROCFLOW_INSTANCE_PATH=str(tmp_path),
        PROCFLOW_SECRET_KEY="production-secret",
        PROCFLOW_LOG_FORMAT="json",
        PROCFLOW_METRICS_TOKEN=TOKEN,
        PROCFLOW_METRICS_BIND=f"127.0.0.1:{internal}",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(BIN / "procflow"), "serve", "--production", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/readyz", server, log)
        for number in range(REQUESTS):
            status, headers, _ = _get(f"{base}/login", {"X-Request-ID": f"probe-{number}"})
            assert status == 200 and headers["X-Request-ID"] == f"probe-{number}"
        assert _get(f"{base}/metrics")[0] == 401
        # Whichever worker answers the scrape, it counts every worker's requests.
        for _ in range(6):
            status, _, text = _get(f"{base}/metrics", {"Authorization": f"Bearer {TOKEN}"})
            assert status == 200 and _login_count(text) == REQUESTS
        _wait_for(f"http://127.0.0.1:{internal}/metrics", server, log)
        status, _, text = _get(f"http://127.0.0.1:{internal}/metrics")  # the internal port needs no token
        assert status == 200 and _login_count(text) == REQUESTS
        assert "procflow_instances_started_total" in text or "procflow_open_tasks" in text
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        _get(f"http://127.0.0.1:{internal}/metrics")  # the metrics process ended with gunicorn
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]  # every line is JSON
    served = [line for line in lines if line["logger"] == "procflow.request" and line["path"] == "/login"]
    assert sorted(line["request_id"] for line in served) == sorted(f"probe-{n}" for n in range(REQUESTS))
    assert any(line["logger"].startswith("gunicorn") for line in lines)  # gunicorn's own lines too
