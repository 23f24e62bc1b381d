"""A case moves on whichever server process takes its next step: gunicorn workers and the dev server.

Two real servers share one database: gunicorn with two worker processes, and
``procflow serve``. The case is started by the command line (a third process)
and every following step goes to another server than the step before, so no
parsed spec, restored workflow or evaluator of one process helps the next.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES

BIN = Path(sys.executable).parent
PASSWORD = "two-servers-pass"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(db_url: str, tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROCFLOW_")}
    env.update(
        PROCFLOW_DATABASE_URL=db_url,
        PROCFLOW_INSTANCE_PATH=str(tmp_path),
        PROCFLOW_SECRET_KEY="two-servers-secret",
        PROCFLOW_SESSION_COOKIE_SECURE="false",
    )
    return env


def _procflow(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    done = subprocess.run(
        [str(BIN / "procflow"), *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def _wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server ended before it answered"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):  # a worker still importing the app
            time.sleep(0.2)
    raise AssertionError(f"no server on port {port} after 30 s")


@pytest.fixture
def servers(db_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], list[int]]]:
    if shutil.which("gunicorn", path=str(BIN)) is None:
        pytest.fail("gunicorn is a dev dependency (pyproject.toml); install with make test")
    env = _environment(db_url, tmp_path)
    _procflow(env, "db", "upgrade")
    _procflow(env, "org", "add", "north", "--name", "North")
    for user, role, group in (("nora", "requester", "requesters"), ("bo", "case_handler", "approvers")):
        _procflow(
            env, "user", "add", user, "--org", "north", "--role", role, "--group", group,
            "--password-stdin", stdin=PASSWORD + "\n",
        )  # fmt: skip
    _procflow(env, "deploy", str(FIXTURES / "approval"))
    ports = [_free_port(), _free_port()]
    processes = [
        subprocess.Popen(
            [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{ports[0]}", "web:create_app()"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [str(BIN / "procflow"), "serve", "--port", str(ports[1])],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            _wait_until_up(port, process)
        yield env, ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


class Browser:
    """A signed-in user; the session cookie is valid on every server (one secret key)."""

    def __init__(self, username: str, port: int) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        page = self.get(port, "/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        self.csrf = token[1]
        form = urllib.parse.urlencode(
            {"username": username, "password": PASSWORD, "csrf_token": self.csrf}
        ).encode()
        with self.opener.open(f"http://127.0.0.1:{port}/login", data=form, timeout=30) as answer:
            assert answer.status == 200 and "/login" not in answer.url
        page = self.get(port, "/")
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
        assert token is not None
        self.csrf = token[1]

    def get(self, port: int, path: str) -> str:
        with self.opener.open(f"http://127.0.0.1:{port}{path}", timeout=30) as answer:
            return str(answer.read().decode())

    def api(self, port: int, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api{path}",
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "X-CSRFToken": self.csrf},
        )
        with self.opener.open(request, timeout=30) as answer:
            return json.loads(answer.read())


def test_a_case_moves_on_through_two_servers_and_the_command_line(
    servers: tuple[dict[str, str], list[int]],
) -> None:
    env, (gunicorn, dev_server) = servers
    started = _procflow(env, "start", "approval", "--org", "north", "--user", "nora", "--json")
    instance_id = started["instance_id"]
    nora, bo = Browser("nora", dev_server), Browser("bo", gunicorn)

    (request,) = nora.api(gunicorn, "/tasks")["tasks"]
    assert request["bpmn_id"] == "request"
    # The script task runs in the server that takes this step, in its evaluator processes.
    data = {"subject": "Laptops", "amount": 1000, "requester_email": "nora@example.org"}
    nora.api(gunicorn, f"/tasks/{request['id']}/complete", {"data": data})

    (approve,) = bo.api(dev_server, "/tasks")["tasks"]
    assert approve["bpmn_id"] == "approve"
    bo.api(dev_server, f"/tasks/{approve['id']}/complete", {"data": {"approved": True}})

    shown = _procflow(env, "show", str(instance_id), "--json")
    assert shown["status"] == "completed", shown["error"]
    assert shown["data"]["total"] == "1250.00"
    completed = [(e["element"], e["actor"]) for e in shown["events"] if e["kind"] == "task_completed"]
    assert completed == [("request", "nora"), ("approve", "bo")]
    # Both servers still answer after the case.
    for port in (gunicorn, dev_server):
        assert "Procflow" in nora.get(port, "/")
