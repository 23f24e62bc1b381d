"""The REST API under ``/api/v1``: flask-smorest, marshmallow schemas, OpenAPI 3.1, bearer tokens.

One blueprint per resource (:mod:`.processes`, :mod:`.instances`,
:mod:`.tasks`, :mod:`.messages` with the contact intake, :mod:`.deployments`,
:mod:`.attachments`, :mod:`.reports`); each authenticates every request by its
token (:mod:`.auth`) and answers every error as RFC 9457 problem details
(:mod:`.problems`). Lists page by cursor: a page's ``next_cursor`` fetches the
next one. The OpenAPI document is ``/api/v1/openapi.json``; Swagger UI
(served from our own static files, npm package ``swagger-ui-dist``) is
``/api/v1/docs``. Neither needs a token.
"""

from __future__ import annotations

import http
from typing import Any

from flask import Blueprint, Flask, render_template, url_for
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from . import attachments, deployments, instances, messages, processes, reports, tasks
from .problems import CONTENT_TYPE as PROBLEM_CONTENT_TYPE
from .problems import problem_schema, routing_problem

# The documentation pages: a plain blueprint, outside the token check.
bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

RESOURCES = (processes, instances, tasks, messages, deployments, attachments, reports)
OPENAPI_JSON = "openapi.json"
DESCRIPTION = """\
Procflow's REST API. Every call needs `Authorization: Bearer <token>`: a personal token
(made on your settings page, or by `procflow token create`) or a service account's (made
by an admin). A token acts as its user in its organisation, with that user's roles; `read`
tokens may only GET. Anything of another organisation answers 404.

Errors are RFC 9457 problem details (`application/problem+json`); invalid input lists each
field in `errors`. Lists page by cursor: pass a page's `next_cursor` back to get the next.
"""


class ProcflowApi(Api):
    """flask-smorest's Api, with problem details for errors and no handlers of its own on the app.

    flask-smorest would answer every HTTP error of the whole app in its own JSON
    shape; here the API's blueprints answer theirs (:mod:`.problems`) and
    :mod:`web.errors` keeps the rest of the app.
    """

    ERROR_SCHEMA = problem_schema

    def _register_error_handlers(self) -> None:
        return None

    def _register_responses(self) -> None:
        # As flask-smorest's, but the errors' content type is application/problem+json.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "An error, as problem details (RFC 9457)", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)


@bp.route("/docs")
def docs() -> str:
    """Swagger UI on the OpenAPI document."""
    return render_template("api_v1/docs.html", spec_url=url_for("api-docs.openapi_json"))


def init_app(app: Flask) -> ProcflowApi:
    """Register the API's blueprints, its OpenAPI document and its error handling on *app*."""
    app.config.setdefault("API_TITLE", "Procflow")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", OPENAPI_JSON)
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "info": {"description": DESCRIPTION},
            "security": [{"bearerToken": []}],
            "components": {
                "securitySchemes": {
                    "bearerToken": {"type": "http", "scheme": "bearer", "description": "API token"}
                }
            },
        },
    )
    api = ProcflowApi(app)
    csrf = app.extensions["csrf"]
    for module in RESOURCES:
        csrf.exempt(module.bp)
        api.register_blueprint(module.bp)
    app.register_blueprint(bp)
    # Paths under /api/v1 that match no route never reach a blueprint's handlers.
    app.before_request(routing_problem)
    return api


__all__ = ["ProcflowApi", "bp", "init_app"]
