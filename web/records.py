"""The documentation record of a direct procurement: its own page, printable, and as PDF.

Visible like the case page: to every member of the case's organisation; a
case of another organisation is not found (404). A case of another process,
or a direct procurement that has not produced its record, gets a page saying
so (also 404: there is no record at that address).

The PDF is the same content rendered by WeasyPrint. WeasyPrint fetches what a
document links to, so it gets a fetcher (:class:`StaticStylesheetFetcher`)
that serves the app's own static stylesheets from disk and refuses
everything else: no network, no other files, whatever the record's data holds.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, render_template, url_for
from flask_babel import format_currency, format_decimal, ngettext
from flask_babel import gettext as _
from markupsafe import Markup, escape
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse
from werkzeug.security import safe_join
from werkzeug.wrappers import Response

import engine

from . import case_values
from .auth import require_login
from .db import db_session
from .i18n import current_language
from .security import download

bp = Blueprint("records", __name__, url_prefix="/cases")
bp.before_request(require_login)


class StaticStylesheetFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that serves only the app's static ``.css`` files, read from disk.

    *static_url* is the absolute URL the static files are served under (ending
    in ``/``), *static_folder* where they are. Any other URL (another host or
    scheme, ``file:``, ``data:``, a path outside the folder, a script or an
    image) raises ``ValueError``, which WeasyPrint reports and skips.
    """

    def __init__(self, static_url: str, static_folder: str) -> None:
        super().__init__(allowed_protocols=("http", "https"), allow_redirects=False)
        self.static_url = static_url
        self.static_folder = static_folder
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        """Return the stylesheet *url* names, from the static folder.

        :raises ValueError: *url* is not one of the app's static stylesheets.
        """
        parts = urlsplit(url)
        prefix = urlsplit(self.static_url)
        name = parts.path.removeprefix(prefix.path)
        path = safe_join(self.static_folder, name) if parts.path.startswith(prefix.path) else None
        if (
            (parts.scheme, parts.netloc) != (prefix.scheme, prefix.netloc)
            or parts.query
            or path is None
            or not name.endswith(".css")
            or not Path(path).is_file()
        ):
            self.refused.append(url)
            raise ValueError(f"Only the app's own stylesheets may be fetched, not {url}")
        return URLFetcherResponse(
            url, body=Path(path).read_bytes(), headers={"Content-Type": "text/css; charset=utf-8"}
        )


def _record(instance_id: int) -> engine.DocumentationRecord | tuple[str, int]:
    """Return the record, or the page that says why there is none (with its 404)."""
    try:
        return engine.documentation_record(
            db_session(), instance_id, organisation_id=g.organisation.id, today=_today()
        )
    except engine.NotADirectProcurementError:
        reason = _("Only direct procurements have a documentation record; this case is of another process.")
    except engine.NoRecordYetError as missing:
        reason = (
            _("This direct procurement stopped before quotes were asked for, so it produced no record.")
            if missing.stopped
            else _(
                "The record is produced when the purchase is ordered or cancelled;"
                " this case has not got there yet."
            )
        )
    page = render_template("records/missing.html", instance_id=instance_id, reason=reason)
    return page, 404


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@bp.route("/<int:instance_id>/record")
def record(instance_id: int) -> str | tuple[str, int]:
    """Show the documentation record of direct procurement *instance_id*.

    :raises NotFound: (404) no such case in the user's organisation; a page
        (also 404) when the case has no record.
    """
    found = _record(instance_id)
    if not isinstance(found, engine.DocumentationRecord):
        return found
    return render_template("records/record.html", record=found, **_helpers())


@bp.route("/<int:instance_id>/record.pdf")
def record_pdf(instance_id: int) -> Response | tuple[str, int]:
    """Download the documentation record of *instance_id* as a PDF (an attachment).

    :raises NotFound: (404) as :func:`record`.
    """
    found = _record(instance_id)
    if not isinstance(found, engine.DocumentationRecord):
        return found
    html = render_template("records/record_pdf.html", record=found, pdf=True, **_helpers())
    fetcher = StaticStylesheetFetcher(
        url_for("static", filename="", _external=True), str(current_app.static_folder)
    )
    pdf = HTML(string=html, base_url=url_for("static", filename="", _external=True), url_fetcher=fetcher)
    content = pdf.write_pdf()
    assert content is not None
    filename = _("documentation-record-%(id)s.pdf", id=found.instance_id)
    return download(content, filename=filename, content_type="application/pdf")


# -- showing values -----------------------------------------------------------------------------


def _helpers() -> dict[str, Any]:
    language = current_language()
    return {
        "label": lambda value: engine.label_text(value, language),
        "shown": _shown,
        "money": _money,
        "choice": lambda group, code: engine.choice_text(group, code, language),
        "today": _today(),
        "produced_at": dt.datetime.now(dt.UTC),
    }


def _money(amount: Decimal | None, currency: str = "") -> str:
    if amount is None:
        return "\u2013"
    # Whole amounts without decimals (as quotes usually are), others with two.
    pattern = "#,##0" if amount == amount.to_integral_value() else "#,##0.00"
    if currency:
        return str(format_currency(amount, currency, format=pattern + " ¤", currency_digits=False))
    return str(format_decimal(amount, format=pattern))


def _shown(value: engine.RecordValue, currency: str) -> Markup:
    """Return *value* as safe HTML in the user's language (an en dash when empty)."""
    if value.value is None or value.value == "":
        return Markup("\u2013")
    if value.kind == "money":
        return Markup(escape(_money(value.value, currency)))
    if value.kind in ("date", "date-time"):
        return case_values.format_value(value.value, {"type": "string", "format": value.kind})
    if value.kind == "months":
        months = int(value.value)
        return Markup(escape(ngettext("%(num)d month", "%(num)d months", months)))
    if value.kind == "count":
        return Markup(escape(format_decimal(value.value)))
    if value.kind == "choice":
        return Markup(escape(engine.choice_text(value.key, str(value.value), current_language())))
    return Markup(escape(str(value.value)))
