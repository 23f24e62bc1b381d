"""HTTP connectors under spiff-arena's names: ``http/GetRequestV2`` and ``http/PostRequestV2``.

Service tasks of models made in spiff-arena call these operators with
spiff-arena's parameters (``url``, ``headers``, ``params`` for GET, ``data``
for POST as JSON, ``basic_auth_username``, ``basic_auth_password``,
``attempts``) and get what spiff-arena's connector gives its result variable:
``{"body": <JSON text>, "mimetype": "application/json", "http_status": 200,
"operator_identifier": "http/GetRequestV2"}``, where the body is the JSON the
server answered (``{"raw_response": <text>}`` when it answered something
else), so scripts read it with ``json.loads(result["body"])``.

Only hosts an admin allows are called. The organisation's dated parameter
``http_allowed_hosts`` lists them (a list of strings, or one string separated
by commas or spaces):

- ``api.example.org`` — HTTPS to that host on port 443;
- ``api.example.org:8443`` — HTTPS on that port;
- ``https://api.example.org:8443`` — the same, spelt out;
- ``http://10.0.0.5:8080`` — plain HTTP, allowed only for an entry that names
  the ``http://`` scheme, on that port (80 when none is given).

Anything else is refused with a :class:`ConnectorError` naming the host and
the parameter, before any connection is made: another host, another port,
plain HTTP to a host listed without ``http://``, user names in the URL. Each
call may take :data:`TIMEOUT_SECONDS` in all (connecting, sending, reading);
an answer longer than :data:`MAX_RESPONSE_BYTES` is refused; redirects are
followed (at most :data:`MAX_REDIRECTS`) only to allowed hosts; a ``Host``
header cannot be set. An answer with status 300 or above fails the task, as
it does in spiff-arena; ``attempts`` (at most :data:`MAX_ATTEMPTS`) repeats a
call that failed with a 5xx status or a network error.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from ._workflow import current_parameters
from .connectors import ConnectorContext
from .errors import ConnectorError

ALLOWED_HOSTS_PARAMETER = "http_allowed_hosts"
TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
MAX_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 0.5
_REDIRECTS = {301, 302, 303, 307, 308}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port a connector may call."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def allowed_origins(value: Any) -> frozenset[Origin]:
    """Parse the ``http_allowed_hosts`` parameter (see the module documentation).

    :raises ConnectorError: an entry is not a host name, host:port or http(s) origin.
    """
    if value is None:
        return frozenset()
    entries = re.split(r"[,\s]+", value) if isinstance(value, str) else value
    if not isinstance(entries, list | tuple):
        raise ConnectorError(f"parameter {ALLOWED_HOSTS_PARAMETER!r} must be a list of host names")
    origins = set()
    for entry in entries:
        if not isinstance(entry, str):
            raise ConnectorError(f"parameter {ALLOWED_HOSTS_PARAMETER!r}: {entry!r} is not a host name")
        entry = entry.strip()
        if entry:
            origins.add(_origin_of_entry(entry))
    return frozenset(origins)


def _origin_of_entry(entry: str) -> Origin:
    explicit = "://" in entry
    parts = urlsplit(entry if explicit else f"https://{entry}")
    problem = f"parameter {ALLOWED_HOSTS_PARAMETER!r}: {entry!r} is not a host, host:port or http(s) origin"
    try:
        port = parts.port
    except ValueError:
        raise ConnectorError(problem) from None
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ConnectorError(problem)
    return Origin(parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme])


def _target(name: str, url: Any, allowed: frozenset[Origin]) -> tuple[Origin, str]:
    """Return the origin and the path (with query) of *url*, if it may be called."""
    if not isinstance(url, str) or not url:
        raise ConnectorError(f"{name}: 'url' must be a URL, got {url!r}")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ConnectorError(f"{name}: {url!r} has an invalid port") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ConnectorError(f"{name}: {url!r} is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ConnectorError(
            f"{name}: put credentials in basic_auth_username/basic_auth_password, not the URL"
        )
    origin = Origin(parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme])
    if origin not in allowed:
        listed = ", ".join(sorted(str(o) for o in allowed)) or "none"
        raise ConnectorError(
            f"{name}: {origin} is not an allowed host for this organisation "
            f"(allowed: {listed}; an admin sets them in the parameter {ALLOWED_HOSTS_PARAMETER!r})"
        )
    path = parts.path or "/"
    return origin, f"{path}?{parts.query}" if parts.query else path


def _headers(name: str, headers: Any, username: Any, password: Any) -> dict[str, str]:
    if headers is None:
        headers = {}
    if not isinstance(headers, Mapping):
        raise ConnectorError(f"{name}: 'headers' must be a mapping of header names to text")
    result: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not _HEADER_NAME.match(key):
            raise ConnectorError(f"{name}: {key!r} is not a header name")
        if key.lower() in ("host", "content-length", "transfer-encoding", "connection"):
            raise ConnectorError(f"{name}: the header {key!r} cannot be set")
        text = str(value)
        if "\r" in text or "\n" in text:
            raise ConnectorError(f"{name}: the header {key!r} has a line break")
        result[key] = text
    if username and password:
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        result["Authorization"] = f"Basic {token}"
    return result


@dataclass
class _Answer:
    status: int
    content_type: str
    text: str
    location: str | None


def _send(
    name: str,
    origin: Origin,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline: float,
) -> _Answer:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ConnectorError(f"{name}: no answer from {origin} within {TIMEOUT_SECONDS:g} s")
    connection: http.client.HTTPConnection
    if origin.scheme == "https":
        context = ssl.create_default_context()
        connection = http.client.HTTPSConnection(origin.host, origin.port, timeout=remaining, context=context)
    else:
        connection = http.client.HTTPConnection(origin.host, origin.port, timeout=remaining)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read(64 * 1024):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise ConnectorError(
                    f"{name}: the answer of {origin} is larger than {MAX_RESPONSE_BYTES} bytes"
                )
            if time.monotonic() > deadline:
                raise ConnectorError(f"{name}: no full answer from {origin} within {TIMEOUT_SECONDS:g} s")
            chunks.append(chunk)
        content_type = response.getheader("Content-Type", "") or ""
        charset = response.headers.get_content_charset() or "utf-8"
        try:
            text = b"".join(chunks).decode(charset, errors="replace")
        except LookupError:
            text = b"".join(chunks).decode("utf-8", errors="replace")
        return _Answer(response.status, content_type, text, response.getheader("Location"))
    finally:
        connection.close()


class _HttpRequest:
    """One spiff-arena HTTP operator; subclasses name it and its method."""

    name = ""
    method = ""

    def _call(
        self,
        context: ConnectorContext,
        *,
        url: Any,
        headers: Any,
        params: Any,
        data: Any,
        basic_auth_username: Any,
        basic_auth_password: Any,
        attempts: Any,
    ) -> dict[str, Any]:
        allowed = allowed_origins(
            current_parameters(context.session, context.organisation_id).get(ALLOWED_HOSTS_PARAMETER)
        )
        if params:
            if not isinstance(params, Mapping):
                raise ConnectorError(f"{self.name}: 'params' must be a mapping of names to values")
            url = f"{url}{'&' if '?' in str(url) else '?'}{urlencode({str(k): v for k, v in params.items()})}"
        origin, path = _target(self.name, url, allowed)
        sent_headers = _headers(self.name, headers, basic_auth_username, basic_auth_password)
        body = None
        if data is not None:
            try:
                body = json.dumps(data).encode()
            except (TypeError, ValueError) as exc:
                raise ConnectorError(f"{self.name}: 'data' cannot be sent as JSON ({exc})") from None
            sent_headers.setdefault("Content-Type", "application/json")
        tries = attempts if isinstance(attempts, int) and 1 <= attempts <= MAX_ATTEMPTS else 1
        for attempt in range(1, tries + 1):
            try:
                answer = self._follow(origin, path, sent_headers, body, allowed)
            except TimeoutError:
                if attempt == tries:
                    raise ConnectorError(
                        f"{self.name}: no answer from {origin} within {TIMEOUT_SECONDS:g} s"
                    ) from None
            except (OSError, http.client.HTTPException) as exc:
                if attempt == tries:
                    raise ConnectorError(f"{self.name}: {origin} cannot be reached ({exc})") from None
            else:
                if answer.status < 500 or attempt == tries:
                    return self._result(answer, origin)
            time.sleep(RETRY_PAUSE_SECONDS)
        raise AssertionError("unreachable")  # pragma: no cover

    def _follow(
        self,
        origin: Origin,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
        allowed: frozenset[Origin],
    ) -> _Answer:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        method = self.method
        for _ in range(MAX_REDIRECTS + 1):
            answer = _send(self.name, origin, method, path, headers, body, deadline)
            if answer.status not in _REDIRECTS or not answer.location:
                return answer
            target = urljoin(f"{origin.scheme}://{origin.host}:{origin.port}{path}", answer.location)
            new_origin, path = _target(self.name, target, allowed)
            if new_origin != origin:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            origin = new_origin
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        raise ConnectorError(f"{self.name}: more than {MAX_REDIRECTS} redirects")

    def _result(self, answer: _Answer, origin: Origin) -> dict[str, Any]:
        if answer.status >= 300:
            raise ConnectorError(f"{self.name}: {origin} answered HTTP {answer.status}: {answer.text[:200]}")
        response: Any = {"raw_response": answer.text}
        if "application/json" in answer.content_type.lower():
            try:
                response = json.loads(answer.text) if answer.text else {}
            except json.JSONDecodeError as exc:
                raise ConnectorError(f"{self.name}: {origin} answered invalid JSON ({exc.msg})") from None
        return {
            "body": json.dumps(response),
            "mimetype": "application/json",
            "http_status": answer.status,
            "operator_identifier": self.name,
        }


def _refuse_unknown(name: str, extra: Mapping[str, Any]) -> None:
    if extra:
        raise ConnectorError(f"{name}: unknown parameter(s) {', '.join(sorted(extra))}")


class GetRequestV2(_HttpRequest):
    """``http/GetRequestV2``: GET ``url`` with ``params`` as its query (see the module documentation)."""

    name = "http/GetRequestV2"
    method = "GET"

    def __call__(
        self,
        context: ConnectorContext,
        *,
        url: Any = None,
        headers: Any = None,
        params: Any = None,
        basic_auth_username: Any = None,
        basic_auth_password: Any = None,
        attempts: Any = None,
        **extra: Any,
    ) -> dict[str, Any]:
        _refuse_unknown(self.name, extra)
        return self._call(
            context,
            url=url,
            headers=headers,
            params=params,
            data=None,
            basic_auth_username=basic_auth_username,
            basic_auth_password=basic_auth_password,
            attempts=attempts,
        )


class PostRequestV2(_HttpRequest):
    """``http/PostRequestV2``: POST ``data`` as JSON to ``url`` (see the module documentation)."""

    name = "http/PostRequestV2"
    method = "POST"

    def __call__(
        self,
        context: ConnectorContext,
        *,
        url: Any = None,
        headers: Any = None,
        data: Any = None,
        basic_auth_username: Any = None,
        basic_auth_password: Any = None,
        attempts: Any = None,
        **extra: Any,
    ) -> dict[str, Any]:
        _refuse_unknown(self.name, extra)
        return self._call(
            context,
            url=url,
            headers=headers,
            params=None,
            data=data,
            basic_auth_username=basic_auth_username,
            basic_auth_password=basic_auth_password,
            attempts=attempts,
        )
