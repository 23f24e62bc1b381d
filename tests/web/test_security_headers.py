"""No page of Procflow runs anything but Procflow's own code.

Pages carry a strict Content-Security-Policy and no inline script or style;
diagrams and attachments are served so that a browser never renders or runs
them, whatever their uploader or author put in them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from html.parser import HTMLParser

import pytest
import sqlalchemy.orm as so

import engine
from tests.web.conftest import LoginAs, WebClient, open_task

REQUEST = {"subject": "Laptops", "category": "goods", "estimated_value": "1000", "needed_by": "2027-03-31"}
PAGE_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def _directives(policy: str) -> dict[str, str]:
    return {
        name: value.strip()
        for name, _, value in (part.strip().partition(" ") for part in policy.split(";") if part.strip())
    }


def _assert_safe_headers(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"


class _InlineCode(HTMLParser):
    """Collect what a strict CSP would block: inline scripts, handlers, javascript: URLs, inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not names.get("src"):
                self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            if name == "style":
                self.found.append(f"<{tag} style=…>")
            if value and value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:…>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("inline script text")


def _inline_code(page: str) -> list[str]:
    parser = _InlineCode()
    parser.feed(page)
    return parser.found


@pytest.fixture
def main_pages(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> Callable[[], list[str]]:
    instance_id = start()
    task = open_task(session_factory, instance_id)

    def urls() -> list[str]:
        return ["/", f"/tasks/{task.id}", f"/instances/{instance_id}", "/processes/", "/instances/9999"]

    login_as("admin")
    return urls


def test_the_sign_in_page_has_the_strict_policy(client: WebClient) -> None:
    response = client.get("/login")
    assert PAGE_DIRECTIVES.items() <= _directives(response.headers["Content-Security-Policy"]).items()
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    _assert_safe_headers(response)
    assert _inline_code(response.get_data(as_text=True)) == []


def test_every_main_page_has_the_strict_policy_and_no_inline_code(
    client: WebClient, main_pages: Callable[[], list[str]]
) -> None:
    for url in main_pages():
        response = client.get(url)
        assert response.mimetype == "text/html", url
        policy = response.headers["Content-Security-Policy"]
        assert PAGE_DIRECTIVES.items() <= _directives(policy).items(), url
        assert "unsafe-inline" not in policy, url
        _assert_safe_headers(response)
        assert _inline_code(response.get_data(as_text=True)) == [], url


def test_json_responses_are_sandboxed_too(client: WebClient, main_pages: Callable[[], list[str]]) -> None:
    response = client.get("/api/tasks")
    assert "sandbox" in _directives(response.headers["Content-Security-Policy"])
    _assert_safe_headers(response)


SCRIPTED_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:h="http://www.w3.org/1999/xhtml"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="scripted_diagram" name="Scripted diagram" isExecutable="true">
    <bpmn:extensionElements><h:script src="/static/js/app.js"></h:script></bpmn:extensionElements>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="check" name="Check"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check" />
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_diagram_with_xhtml_in_it_is_served_as_plain_sandboxed_text(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], users: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("scripted.bpmn", "bpmn", SCRIPTED_BPMN)], name="scripted")
        instance_id = engine.start_instance(s, "scripted_diagram", organisation="north", user="north-req").id
    response = login_as("requester").get(f"/instances/{instance_id}/diagram.bpmn")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "<h:script" in response.get_data(as_text=True)
    assert "sandbox" in _directives(response.headers["Content-Security-Policy"])
    assert _directives(response.headers["Content-Security-Policy"])["default-src"] == "'none'"
    _assert_safe_headers(response)


@pytest.mark.parametrize(
    ("filename", "declared", "served"),
    [
        ("steal.js", "text/javascript", "application/octet-stream"),
        ("page.html", "text/html", "application/octet-stream"),
        ("logo.svg", "image/svg+xml", "application/octet-stream"),
        ("quote.pdf", "text/html", "application/pdf"),
        ("Photo.JPEG", "application/octet-stream", "image/jpeg"),
        ("notes.txt", "text/html", "text/plain; charset=utf-8"),
        ("no-extension", "text/javascript", "application/octet-stream"),
    ],
)
def test_attachments_are_served_with_an_allowed_type_as_downloads(
    login_as: LoginAs,
    start: Callable[..., int],
    session_factory: so.sessionmaker[so.Session],
    filename: str,
    declared: str,
    served: str,
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    client = login_as("requester")
    upload = {"specification": (io.BytesIO(b"fetch('/api/tasks')"), filename, declared)}
    done = client.post(f"/tasks/{task.id}", data=dict(REQUEST, **upload), content_type="multipart/form-data")
    assert done.status_code == 303
    with session_factory() as s:
        (attachment,) = engine.list_attachments(s, instance_id)
    assert attachment.content_type == served
    response = client.get(f"/instances/{instance_id}/attachments/{attachment.id}")
    assert response.headers["Content-Type"] == served
    assert response.headers["Content-Disposition"].startswith("attachment; ")
    assert "sandbox" in _directives(response.headers["Content-Security-Policy"])
    _assert_safe_headers(response)


def test_an_attachment_stored_with_a_dangerous_type_is_still_served_as_a_download(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    with session_factory.begin() as s:
        attachment = engine.add_attachment(
            s, task.id, user="north-req", filename="old.js", content=b"alert(1)"
        )
        attachment.content_type = "text/javascript"  # as rows stored before the allow-list may be
        attachment_id = attachment.id
    response = login_as("requester").get(f"/instances/{instance_id}/attachments/{attachment_id}")
    assert response.headers["Content-Type"] == "application/octet-stream"


def test_non_ascii_and_quoted_file_names_are_encoded(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    with session_factory.begin() as s:
        name = 'Offert "Åbo" ; 2.pdf'
        attachment_id = engine.add_attachment(s, task.id, user="north-req", filename=name, content=b"%PDF").id
    response = login_as("requester").get(f"/instances/{instance_id}/attachments/{attachment_id}")
    disposition = response.headers["Content-Disposition"]
    assert disposition == (
        'attachment; filename="Offert _Abo_ _ 2.pdf"; '
        "filename*=UTF-8''Offert%20%22%C3%85bo%22%20%3B%202.pdf"
    )
    assert re.fullmatch(r'attachment; filename="[ -~]+"; filename\*=UTF-8\'\'[A-Za-z0-9%._-]+', disposition)
