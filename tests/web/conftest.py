"""Web fixtures: ``app``, ``client`` (adds CSRF tokens), ``login_as(role, org)``, deployed processes.

Built on the database fixtures of ``tests/conftest.py`` (``db_url``,
``session_factory``, ``orgs``). Every user gets the password ``PASSWORD``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
from argon2 import PasswordHasher
from flask import Flask
from flask.globals import _cv_app, _cv_request
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

import engine
from tests.conftest import FIXTURES
from web import create_app
from web.db import database

PASSWORD = "correct horse battery staple"
APPROVAL = FIXTURES / "approval"
PURCHASE = FIXTURES / "web" / "purchase"

# login_as(role, org) signs in as these users of the ``orgs`` fixture (plus the ones added here).
USERS = {
    "requester": "{org}-req",
    "case_handler": "{org}-handler",
    "approver": "{org}-boss",
    "admin": "{org}-admin",
    "auditor": "{org}-auditor",
    "process_owner": "{org}-owner",
}

_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


class WebClient(FlaskClient):
    """A test client that sends the session's CSRF token with every POST unless told not to."""

    csrf_token: str | None = None

    def fetch_csrf_token(self) -> str:
        """Read the CSRF token from a page, as a browser would."""
        page = super().get("/login", follow_redirects=True)
        match = _CSRF.search(page.get_data(as_text=True))
        assert match, "the sign-in page carries no CSRF token"
        self.csrf_token = match.group(1)
        return self.csrf_token

    def post(self, *args: Any, csrf: bool = True, **kwargs: Any) -> TestResponse:
        """POST, adding ``csrf_token`` to form data (or the ``X-CSRFToken`` header for JSON)."""
        if csrf:
            token = self.csrf_token or self.fetch_csrf_token()
            if "json" in kwargs:
                kwargs.setdefault("headers", {})["X-CSRFToken"] = token
            else:
                data = kwargs.get("data")
                if data is None or isinstance(data, dict):
                    kwargs["data"] = {"csrf_token": token, **(data or {})}
        return super().post(*args, **kwargs)


@pytest.fixture(scope="session")
def password_hash() -> str:
    """The hash of ``PASSWORD``, computed once: argon2 is slow on purpose."""
    return PasswordHasher().hash(PASSWORD)


@pytest.fixture
def users(session_factory: so.sessionmaker[so.Session], orgs: None, password_hash: str) -> None:
    """Give every user of the ``orgs`` fixture a password, and add case handlers, auditors, process owners."""
    with session_factory.begin() as s:
        for org in ("north", "south"):
            engine.add_user(
                s, f"{org}-handler", organisation=org, roles=["case_handler"], groups=["handlers"]
            )
            engine.add_user(s, f"{org}-auditor", organisation=org, roles=["auditor"], groups=[])
            engine.add_user(s, f"{org}-owner", organisation=org, roles=["process_owner"], groups=[])
            for template in USERS.values():
                engine.get_user(s, template.format(org=org)).password_hash = password_hash


@pytest.fixture
def deployed(session_factory: so.sessionmaker[so.Session], users: None) -> None:
    """Deploy the approval and purchase fixtures as shared processes."""
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL)
        engine.deploy_path(s, PURCHASE)


@pytest.fixture
def app(db_url: str) -> Iterator[Flask]:
    """The web app on this test's database."""
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test-secret"})
    app.test_client_class = WebClient
    yield app
    database(app).dispose()
    # Fail tests that leave an application or request context pushed.
    assert _cv_request.get(None) is None and _cv_app.get(None) is None, "a Flask context was left pushed"


@pytest.fixture
def client(app: Flask) -> WebClient:
    client: WebClient = app.test_client()  # type: ignore[assignment]
    return client


LoginAs = Callable[..., WebClient]


@pytest.fixture
def login_as(client: WebClient, users: None) -> LoginAs:
    """Sign the test client in as the user with *role* in *org* (``approver`` is ``<org>-boss``)."""

    def sign_in(role: str, org: str = "north") -> WebClient:
        username = USERS[role].format(org=org)
        client.post("/logout")
        client.csrf_token = None
        response = client.post("/login", data={"username": username, "password": PASSWORD})
        assert response.status_code == 303, response.get_data(as_text=True)
        client.fetch_csrf_token()
        return client

    return sign_in


@pytest.fixture
def start(session_factory: so.sessionmaker[so.Session], deployed: None) -> Callable[..., int]:
    """Start a process through the engine and return the instance id."""

    def start_instance(process_id: str = "web_purchase", user: str = "north-req", org: str = "north") -> int:
        with session_factory.begin() as s:
            return engine.start_instance(s, process_id, organisation=org, user=user).id

    return start_instance


def open_task(session_factory: so.sessionmaker[so.Session], instance_id: int) -> engine.HumanTask:
    """Return the one open task of an instance."""
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        return task


def complete(
    session_factory: so.sessionmaker[so.Session], instance_id: int, user: str, **data: Any
) -> engine.HumanTask:
    """Complete the open task of an instance through the engine and return it."""
    task = open_task(session_factory, instance_id)
    with session_factory.begin() as s:
        engine.complete_task(s, task.id, user=user, data=data)
    return task


# -- browser tests -------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report: pytest.TestReport = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _closing_each_response(app: Any) -> Any:
    """Return *app* with each response body read, and the response closed, before it is sent.

    werkzeug's development server does not close a response (a static file's) when the browser
    drops the connection while the server discards what is left of the request. The unclosed
    file's ResourceWarning then failed whichever browser test navigated on at that moment.
    """

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        response = app(environ, start_response)
        try:
            body = b"".join(response)
        finally:
            if hasattr(response, "close"):
                response.close()
        return [body]

    return wsgi


@pytest.fixture
def live_server(app: Flask, deployed: None) -> Iterator[str]:
    """Serve the app on a free local port in a background thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, _closing_each_response(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (skipped without it, except in CI)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs it")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live_server: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page on the live server; a failing test leaves a screenshot in test-artifacts/."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    # Every page the test opens reports what the Content-Security-Policy blocked (init
    # scripts run before the page's own and are not subject to its policy).
    context.add_init_script(CSP_REPORTER)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: _note_csp_violation(message, violations))
    page.csp_violations = violations
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    if report is not None and report.passed:
        assert violations == [], "the browser reported Content-Security-Policy violations"


CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || event.documentURI}:${event.lineNumber}`);
});
"""


def _note_csp_violation(message: Any, violations: list[str]) -> None:
    text = message.text
    if text.startswith("CSP violation") or "Content Security Policy" in text:
        violations.append(text)
