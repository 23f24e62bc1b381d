"""A Procflow cluster on 127.0.0.1 for the scale-out tests: web servers and workers as real processes.

Every node is a separate process started from the command line as operations would
start it (``procflow serve --production``, ``procflow worker``), sharing one
PostgreSQL database and nothing else. Each web server is started in a session of its
own so that a test can kill it whole (gunicorn's master and its workers) with SIGKILL.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import engine

BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
PASSWORD = "scale-out-pass"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(db_url: str, tmp_path: Path) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PROCFLOW_", "PROMETHEUS_"))
    }
    env.update(
        PROCFLOW_DATABASE_URL=db_url,
        PROCFLOW_INSTANCE_PATH=str(tmp_path),
        PROCFLOW_SECRET_KEY="scale-out-secret",
        PROCFLOW_SESSION_COOKIE_SECURE="false",
        PYTHONPATH=os.pathsep.join(filter(None, (str(HERE.parent.parent), os.environ.get("PYTHONPATH")))),
    )
    return env


def procflow(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    done = subprocess.run(
        [str(BIN / "procflow"), *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def set_up(db_url: str, users: dict[str, tuple[str, str]], *bundles: Path) -> None:
    """Create the organisation ``north`` with *users* (username: (role, group)) and deploy *bundles*.

    Done in this process through the engine: what the tests prove starts after it.
    """
    database = engine.create_db_engine(db_url)
    try:
        with engine.create_session_factory(database).begin() as session:
            engine.add_organisation(session, "north", name="North")
            for username, (role, group) in users.items():
                engine.add_user(
                    session, username, organisation="north", roles=[role], groups=[group], password=PASSWORD
                )
            for bundle in bundles:
                engine.deploy_path(session, bundle)
    finally:
        database.dispose()


@dataclass
class Node:
    """One process of the cluster: its command, log file and (for a web server) its port."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    started: list[int] = field(default_factory=list)  # pids, one per (re)start

    def start(self) -> Node:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started.append(self.process.pid)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the node's whole process group (a gunicorn master and all its workers at once)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_until_ready(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.alive(), f"{self.name} ended before it answered:\n{self.tail()}"
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise AssertionError(f"{self.name} not ready after {seconds:g} s:\n{self.tail()}")


def web_server(name: str, env: dict[str, str], tmp_path: Path, *, workers: int = 2) -> Node:
    port = free_port()
    command = [str(BIN / "procflow"), "serve", "--production", "--workers", str(workers), "--port", str(port)]
    node_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"{name}-metrics")}
    return Node(name, command, node_env, tmp_path / f"{name}.log", port=port)


def worker(name: str, env: dict[str, str], tmp_path: Path, *, lease_seconds: float | None = None) -> Node:
    """A job worker: ``procflow worker``, with ``--lease-seconds`` when *lease_seconds* is given.

    A killed worker's leases are taken over when they expire (five minutes by default);
    the fault test shortens them so that it need not wait that long.
    """
    command = [str(BIN / "procflow"), "worker", "--interval", "0.2"]
    if lease_seconds is not None:
        command += ["--lease-seconds", str(lease_seconds)]
    return Node(name, command, env, tmp_path / f"{name}.log")


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not after {seconds:g} s")


class Browser:
    """A signed-in user over plain HTTP; the session cookie is valid on every node (one secret key)."""

    def __init__(self, username: str, node: Node) -> None:
        self.username = username
        self.cookies = urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        self.opener = urllib.request.build_opener(self.cookies)
        page = self.get(node, "/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        form = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": token[1]})
        with self.opener.open(f"{node.url}/login", data=form.encode(), timeout=60) as answer:
            assert answer.status == 200 and "/login" not in answer.url
        meta = re.search(r'<meta name="csrf-token" content="([^"]+)"', self.get(node, "/"))
        assert meta is not None
        self.csrf = meta[1]

    def get(self, node: Node, path: str) -> str:
        with self.opener.open(f"{node.url}{path}", timeout=60) as answer:
            return str(answer.read().decode())

    def api(self, node: Node, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """Call ``/api<path>``; return (status, JSON body); HTTP errors are returned, not raised."""
        request = urllib.request.Request(
            f"{node.url}/api{path}",
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "X-CSRFToken": self.csrf},
        )
        try:
            with self.opener.open(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw.startswith(b"{") else raw.decode(errors="replace")

    def start(self, node: Node, process_id: str, title: str) -> int:
        """Start *process_id* through the start form; return the status code (303 when started)."""
        form = urllib.parse.urlencode({"title": title, "csrf_token": self.csrf}).encode()
        request = urllib.request.Request(f"{node.url}/processes/{process_id}/start", data=form)
        opener = urllib.request.build_opener(self.cookies, _NoRedirect())
        try:
            with opener.open(request, timeout=60) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def open_tasks(self, node: Node, process_id: str) -> list[dict[str, Any]]:
        """Every open task of *process_id* this user may work on (all pages of ``/api/tasks``)."""
        found: list[dict[str, Any]] = []
        after = ""
        while True:
            status, page = self.api(node, f"/tasks?process={process_id}&sort=created&limit=200{after}")
            assert status == 200, page
            found += page["tasks"]
            if not page["next"]:
                return found
            after = f"&after={page['next']}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
