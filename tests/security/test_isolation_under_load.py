"""One organisation's expensive script must not slow down another's pages on the real web server.

``procflow serve`` runs in a subprocess on its own SQLite database. Organisation
north deploys models whose script or decision table is one of issue 8's bombs;
south has a user with a task in the inbox. While a north user starts a bomb
through the web start route, every request of the south user must be answered
within a second of its usual time, and afterwards the server still answers and
the north instance is in ``error``.

The server runs on a SQLite file of its own, or on the PostgreSQL database
``PROCFLOW_DATABASE_URL`` names (emptied first, as tests/conftest.py does).
Each user signs in once for the whole module: sign-in is rate limited.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.models import Base
from tests.security.bundles import bundle, harmless
from tests.security.corpus import BY_ID

REPO = Path(__file__).resolve().parent.parent.parent
PASSWORD = "correct horse battery staple"
BOMBS = {
    "pow": "pow-modular",
    "hash-collisions": "hash-collisions-set",
    "dmn-question-marks": "dmn-question-marks",
    "memory-bomb": "memory-bomb-format",
}
SLOWER_BY_AT_MOST = 1.0  # seconds over the usual response time
BOMB_SECONDS = 20.0  # the bomb's request must end by then (its limit is 2.5 s)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

pytestmark = pytest.mark.slow


class Client:
    """A browser of one user: cookies, CSRF tokens from the pages, timed GETs."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[int, str, str]:
        """GET *path*; return status, final URL and body."""
        try:
            with self.opener.open(self.base + path, timeout=30) as answer:
                return answer.status, answer.url, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.url, exc.read().decode()

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str, str]:
        body = urllib.parse.urlencode(form).encode()
        try:
            with self.opener.open(self.base + path, data=body, timeout=60) as answer:
                return answer.status, answer.url, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.url, exc.read().decode()

    def csrf(self, page: str) -> str:
        status, _, html = self.get(page)
        assert status == 200, f"GET {page} answered {status}"
        match = _CSRF.search(html)
        assert match, f"no CSRF token on {page}"
        return match[1]

    def sign_in(self, username: str) -> None:
        token = self.csrf("/login")
        status, url, _ = self.post(
            "/login", {"csrf_token": token, "username": username, "password": PASSWORD, "next": "/"}
        )
        assert status == 200 and not url.endswith("/login"), f"{username} could not sign in ({status})"

    def timed(self, path: str) -> float:
        started = time.monotonic()
        status, _, _ = self.get(path)
        elapsed = time.monotonic() - started
        assert status == 200, f"GET {path} answered {status}"
        return elapsed

    def start(self, process_id: str) -> tuple[int, str]:
        """Start *process_id* through the catalogue's form; return the status and the page it lands on."""
        token = self.csrf("/processes/")
        status, url, _ = self.post(f"/processes/{process_id}/start", {"csrf_token": token, "title": "load"})
        return status, url

    def instance_status(self, instance_id: int) -> dict[str, Any]:
        status, _, body = self.get(f"/api/instances/{instance_id}")
        assert status == 200, f"GET /api/instances/{instance_id} answered {status}: {body[:200]}"
        instance: dict[str, Any] = json.loads(body)["instance"]
        return instance


@dataclass
class Server:
    base: str
    north: Client
    south: Client
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _procflow() -> str:
    beside_python = Path(sys.executable).parent / "procflow"
    found = str(beside_python) if beside_python.exists() else shutil.which("procflow")
    assert found, "the procflow console script is not installed (pip install -e .)"
    return found


def _prepare_database(url: str, tmp: Path) -> None:
    """Organisations, users and models, written straight through the engine (it is quicker than the CLI)."""
    db = engine.create_db_engine(url)
    try:
        if url.startswith("postgresql"):
            with db.begin() as conn:
                Base.metadata.drop_all(conn)
                conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.upgrade_database(db)
        with engine.create_session_factory(db).begin() as s:
            engine.add_organisation(s, "north", name="North")
            engine.add_organisation(s, "south", name="South")
            engine.add_user(s, "north-req", organisation="north", roles=["requester"], password=PASSWORD)
            engine.add_user(
                s,
                "south-boss",
                organisation="south",
                roles=["case_handler"],
                groups=["approvers"],
                password=PASSWORD,
            )
            for name, payload_id in BOMBS.items():
                files = bundle(BY_ID[payload_id], tmp / f"marker-{name}", process_id=_process_id(name))
                engine.deploy_files(s, files, name=name, organisation="north")
            engine.deploy_files(s, harmless("warm_up"), name="warm_up", organisation="north")
            engine.deploy_files(s, harmless("south_work"), name="south_work", organisation="south")
        with engine.create_session_factory(db).begin() as s:
            for _ in range(3):  # something in the south inbox, so its page reads tasks
                engine.start_instance(s, "south_work", organisation="south", user="south-boss")
    finally:
        db.dispose()


def _process_id(name: str) -> str:
    return "bomb_" + name.replace("-", "_")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("isolation")
    postgres = os.environ.get("PROCFLOW_DATABASE_URL", "")
    url = postgres if postgres.startswith("postgresql") else f"sqlite:///{tmp / 'procflow.sqlite3'}"
    _prepare_database(url, tmp)
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROCFLOW_")}
    env |= {
        "PROCFLOW_DATABASE_URL": url,
        "PROCFLOW_SECRET_KEY": "isolation-under-load-test-secret",
        "PROCFLOW_SESSION_COOKIE_SECURE": "false",
        "PROCFLOW_INSTANCE_PATH": str(tmp / "instance"),
    }
    log = (tmp / "server.log").open("wb")
    process = subprocess.Popen(
        [_procflow(), "serve", "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"the server exited: {(tmp / 'server.log').read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(base + "/login", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not answer within 30 s"
            time.sleep(0.2)
        north, south = Client(base), Client(base)
        north.sign_in("north-req")
        south.sign_in("south-boss")
        # The first script of the server starts its evaluators: not part of any measurement.
        status, landed = north.start("warm_up")
        assert status == 200 and "/tasks/" in landed, f"the warm-up start answered {status} at {landed}"
        yield Server(base, north, south, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


SOUTH_PAGES = ("/", "/api/tasks")


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_bomb_of_one_organisation_does_not_slow_down_another(server: Server, bomb: str) -> None:
    south = server.south
    usual = {page: statistics.median(south.timed(page) for _ in range(5)) for page in SOUTH_PAGES}
    outcome: dict[str, Any] = {}

    def set_off() -> None:
        try:
            outcome["answer"] = server.north.start(_process_id(bomb))
        except BaseException as exc:
            outcome["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=set_off, daemon=True)
    thread.start()
    during: list[tuple[str, float]] = []
    while thread.is_alive() and time.monotonic() - started < BOMB_SECONDS:
        page = SOUTH_PAGES[len(during) % len(SOUTH_PAGES)]
        during.append((page, south.timed(page)))
    thread.join(max(BOMB_SECONDS - (time.monotonic() - started), 0))
    bomb_seconds = time.monotonic() - started
    assert not thread.is_alive(), f"the {bomb} start was still running after {BOMB_SECONDS:g} s"
    assert "error" not in outcome, f"the {bomb} start failed in the client: {outcome.get('error')!r}"

    assert len(during) >= 3, f"only {len(during)} south requests while the {bomb} ran {bomb_seconds:.2f} s"
    slow = [(page, seconds) for page, seconds in during if seconds > usual[page] + SLOWER_BY_AT_MOST]
    assert not slow, (
        f"south's requests while north's {bomb} ran: {[f'{p} {s:.2f}s' for p, s in slow]} "
        f"(usual {', '.join(f'{p} {s:.3f}s' for p, s in usual.items())})"
    )

    status, landed = outcome["answer"]
    assert status == 200, f"the {bomb} start answered {status}"
    match = re.search(r"/instances/(\d+)", landed)
    assert match, f"the {bomb} start landed on {landed}, not on its instance"
    instance = server.north.instance_status(int(match[1]))
    assert instance["status"] == "error", instance
    assert "attack" in (instance["error_message"] or "")
    with urllib.request.urlopen(server.base + "/login", timeout=10) as answer:
        assert answer.status == 200
    assert server.process.poll() is None
