"""spiff-arena's HTTP connectors against a real server on 127.0.0.1, and the hosts an admin allows."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy.orm as so

import engine
from engine import http_connectors
from engine.connectors import ConnectorContext, audited_params
from engine.http_connectors import GetRequestV2, Origin, PostRequestV2, allowed_origins


class _Server:
    """A test server: each path answers as the test says; every request is recorded."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length).decode() if length else "",
                    }
                )
                route = server.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    _answer(self, 404, {"error": "not found"})
                else:
                    route(self)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"


def _answer(
    handler: BaseHTTPRequestHandler, status: int, body: Any, content_type: str = "application/json"
) -> None:
    payload = (json.dumps(body) if content_type == "application/json" else str(body)).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def _redirect(location: str, status: int = 302) -> Callable[[BaseHTTPRequestHandler], None]:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


@pytest.fixture
def server() -> Iterator[_Server]:
    test_server = _Server()
    thread = threading.Thread(target=test_server.http.serve_forever, daemon=True)
    thread.start()
    yield test_server
    test_server.http.shutdown()
    test_server.http.server_close()


@pytest.fixture
def context(
    session_factory: so.sessionmaker[so.Session], orgs: None, server: _Server
) -> Iterator[Callable[[str], ConnectorContext]]:
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north")
        engine.set_parameter(
            s,
            "http_allowed_hosts",
            [f"http://127.0.0.1:{server.port}", "localhost"],
            organisation_id=north.id,
            valid_from=dt.date(2020, 1, 1),
        )
    with session_factory() as s:

        def make(organisation: str = "north") -> ConnectorContext:
            org = engine.get_organisation(s, organisation)
            return ConnectorContext(
                session=s, organisation_id=org.id, instance_id=1, element="call", actor=None
            )

        yield make


def test_allowed_hosts_are_parsed_with_https_by_default() -> None:
    assert allowed_origins("api.example.org, api.example.org:8443 http://10.0.0.5:8080\nhttp://intra") == {
        Origin("https", "api.example.org", 443),
        Origin("https", "api.example.org", 8443),
        Origin("http", "10.0.0.5", 8080),
        Origin("http", "intra", 80),
    }
    assert allowed_origins(["HTTPS://API.example.org/"]) == {Origin("https", "api.example.org", 443)}
    assert allowed_origins(None) == frozenset()
    for bad in (["ftp://x"], ["x.org/path"], ["user@x.org"], ["x.org:port"], [5], {"x": 1}):
        with pytest.raises(engine.ConnectorError, match="http_allowed_hosts"):
            allowed_origins(bad)


def test_get_returns_what_spiff_arena_returns(server: _Server, context: Any) -> None:
    server.routes["/vendors/42"] = lambda h: _answer(h, 200, {"id": 42, "status": "active"})
    result = GetRequestV2()(
        context(),
        url=f"{server.base}/vendors/42",
        params={"q": "a b"},
        headers={"Accept": "application/json"},
        basic_auth_username="anna",
        basic_auth_password="secret",
    )
    assert result == {
        "body": json.dumps({"id": 42, "status": "active"}),
        "mimetype": "application/json",
        "http_status": 200,
        "operator_identifier": "http/GetRequestV2",
    }
    (request,) = server.requests
    assert (request["method"], request["path"]) == ("GET", "/vendors/42?q=a+b")
    assert request["headers"]["Accept"] == "application/json"
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"anna:secret").decode()


def test_post_sends_data_as_json(server: _Server, context: Any) -> None:
    server.routes["/orders"] = lambda h: _answer(h, 201, {"created": True})
    result = PostRequestV2()(context(), url=f"{server.base}/orders", data={"amount": 5, "items": ["x"]})
    assert (result["http_status"], json.loads(result["body"])) == (201, {"created": True})
    (request,) = server.requests
    assert request["method"] == "POST" and json.loads(request["body"]) == {"amount": 5, "items": ["x"]}
    assert request["headers"]["Content-Type"] == "application/json"


def test_an_answer_that_is_not_json_is_kept_as_text(server: _Server, context: Any) -> None:
    server.routes["/text"] = lambda h: _answer(h, 200, "plain words", content_type="text/plain")
    result = GetRequestV2()(context(), url=f"{server.base}/text")
    assert json.loads(result["body"]) == {"raw_response": "plain words"}


def test_hosts_the_organisation_does_not_allow_are_refused_before_connecting(
    server: _Server, context: Any
) -> None:
    refused = {
        f"http://127.0.0.1:{server.port + 1}/x": f"http://127.0.0.1:{server.port + 1} is not an allowed host",
        f"https://127.0.0.1:{server.port}/x": f"https://127.0.0.1:{server.port} is not an allowed host",
        "http://localhost/x": "http://localhost:80 is not an allowed host",  # listed without http://
        "https://example.org/x": "https://example.org:443 is not an allowed host",
        f"http://anna:pw@127.0.0.1:{server.port}/x": "put credentials in basic_auth_username",
        "file:///etc/passwd": "is not an http:// or https:// URL",
    }
    for url, message in refused.items():
        with pytest.raises(engine.ConnectorError, match=message.replace(".", r"\.").replace("?", r"\?")):
            GetRequestV2()(context(), url=url)
    assert server.requests == []


def test_another_organisations_allowed_hosts_do_not_count(server: _Server, context: Any) -> None:
    with pytest.raises(engine.ConnectorError, match=r"allowed: none; an admin sets them in the parameter"):
        GetRequestV2()(context("south"), url=f"{server.base}/x")
    assert server.requests == []


def test_redirects_are_followed_only_to_allowed_hosts(server: _Server, context: Any) -> None:
    server.routes["/old"] = _redirect("/new")
    server.routes["/new"] = lambda h: _answer(h, 200, {"moved": True})
    server.routes["/away"] = _redirect("http://example.org/steal")
    server.routes["/loop"] = _redirect("/loop")
    assert json.loads(GetRequestV2()(context(), url=f"{server.base}/old")["body"]) == {"moved": True}
    with pytest.raises(engine.ConnectorError, match=r"http://example\.org:80 is not an allowed host"):
        GetRequestV2()(context(), url=f"{server.base}/away")
    with pytest.raises(engine.ConnectorError, match="more than 3 redirects"):
        GetRequestV2()(context(), url=f"{server.base}/loop")
    assert [r["path"] for r in server.requests[:3]] == ["/old", "/new", "/away"]


def test_error_statuses_fail_the_call_and_5xx_is_retried(
    server: _Server, context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_connectors, "RETRY_PAUSE_SECONDS", 0)
    server.routes["/broken"] = lambda h: _answer(h, 503, {"error": "down"})
    with pytest.raises(engine.ConnectorError, match="answered HTTP 404"):
        GetRequestV2()(context(), url=f"{server.base}/missing")
    with pytest.raises(engine.ConnectorError, match="answered HTTP 503"):
        GetRequestV2()(context(), url=f"{server.base}/broken", attempts=2)
    assert [r["path"] for r in server.requests] == ["/missing", "/broken", "/broken"]


def test_large_and_slow_answers_are_cut_off(
    server: _Server, context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes["/large"] = lambda h: _answer(
        h, 200, "x" * (http_connectors.MAX_RESPONSE_BYTES + 10), "text/plain"
    )

    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(1.5)
        _answer(handler, 200, {})

    server.routes["/slow"] = slow
    with pytest.raises(engine.ConnectorError, match="is larger than"):
        GetRequestV2()(context(), url=f"{server.base}/large")
    monkeypatch.setattr(http_connectors, "TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()
    with pytest.raises(engine.ConnectorError, match=r"no answer from .* within 0\.5 s"):
        GetRequestV2()(context(), url=f"{server.base}/slow")
    assert time.monotonic() - started < 1.4


def test_headers_that_would_change_the_request_and_unknown_parameters_are_refused(
    server: _Server, context: Any
) -> None:
    for headers in ({"Host": "example.org"}, {"X-A": "1\r\nX-B: 2"}, {"bad name": "1"}, ["x"]):
        with pytest.raises(engine.ConnectorError, match="header"):
            GetRequestV2()(context(), url=f"{server.base}/x", headers=headers)
    with pytest.raises(engine.ConnectorError, match="unknown parameter"):
        GetRequestV2()(context(), url=f"{server.base}/x", verify=False)
    assert server.requests == []


def test_the_connectors_are_registered_under_spiff_arenas_names() -> None:
    assert isinstance(engine.CONNECTORS.get("http/GetRequestV2"), GetRequestV2)
    assert isinstance(engine.CONNECTORS.get("http/PostRequestV2"), PostRequestV2)


def test_the_audit_log_does_not_keep_passwords() -> None:
    params = {"url": "u", "basic_auth_username": "anna", "basic_auth_password": "pw", "api_token": None}
    assert audited_params(params) == {
        "url": "u",
        "basic_auth_username": "anna",
        "basic_auth_password": "(hidden)",
        "api_token": None,
    }
