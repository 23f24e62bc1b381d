"""Response headers that keep the browser from running anything but Procflow's own files.

Every HTML page gets :data:`PAGE_CSP`: scripts and styles only from our own
static files, no inline script or style, no plugins, no framing, forms only
to us. Everything else the app answers (JSON, static files, diagrams and
attachments) gets :data:`SANDBOX_CSP`, so that even a response a browser
decides to render (an SVG, an XHTML document inside BPMN XML) runs in a
sandbox with an opaque origin and may load nothing.

Why no ``'unsafe-inline'`` for styles: no template has a ``style=`` attribute
or a ``<style>`` element; bpmn-js sets styles through the CSSOM
(``element.style.x = …``), which CSP does not govern; htmx would insert a
``<style>`` for its request indicators, which ``base.html`` turns off
(``includeIndicatorStyles``) and ``app.css`` provides instead. ``data:`` images
stay allowed because Pico draws checkboxes and select arrows with ``data:``
SVG backgrounds in its style sheet; those are images, never scripts.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from flask import Response

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SANDBOX_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def security_headers(response: Response) -> Response:
    """Add the Content-Security-Policy and the other security headers to every response (``after_request``).

    A view that already set one of them keeps its own.
    """
    is_page = response.mimetype == "text/html"
    response.headers.setdefault("Content-Security-Policy", PAGE_CSP if is_page else SANDBOX_CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


_UNSAFE_IN_QUOTED = {'"', "\\", ";", "%"}


def content_disposition(filename: str) -> str:
    """Return a ``Content-Disposition: attachment`` value for *filename* (RFC 6266, RFC 5987 for non-ASCII).

    The plain ``filename`` parameter is an ASCII fallback without quotes,
    backslashes or control characters; ``filename*`` carries the real name.
    """
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    fallback = "".join("_" if ch in _UNSAFE_IN_QUOTED or not ch.isprintable() else ch for ch in fallback)
    fallback = fallback.strip() or "attachment"
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def download(content: bytes | str, *, filename: str, content_type: str) -> Response:
    """Return *content* as a file the browser saves and never renders or runs.

    *content_type* must come from the caller's allow-list, never from whoever
    uploaded the file.
    """
    response = Response(content, content_type=content_type)
    response.headers["Content-Disposition"] = content_disposition(filename)
    response.headers["Content-Security-Policy"] = SANDBOX_CSP
    response.headers["Cache-Control"] = "private, no-store"
    return response
