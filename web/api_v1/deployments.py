"""``/api/v1/deployments``: upload a process bundle (a zip of BPMN, DMN and form files) and deploy it."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_smorest import Blueprint

import engine

from ..db import db_session
from .auth import authenticate, require_roles
from .problems import init_blueprint
from .schemas import deployment_result_schema, deployment_upload_schema

bp = Blueprint("api_v1_deployments", __name__, url_prefix="/api/v1/deployments", description="Deployments.")
bp.before_request(authenticate)
init_blueprint(bp)


@bp.route("", methods=["POST"])
@bp.arguments(deployment_upload_schema, location="files", as_kwargs=True)
@bp.response(201, deployment_result_schema)
@require_roles("admin", "process_owner")
def deploy_bundle(file: Any) -> Any:
    """Deploy the zipped bundle ``file`` for the organisation: changed processes get a new version.

    Unchanged files deploy nothing (``changed`` false). Process owners and admins only.

    :raises PermissionDeniedError: (403) the token's user is neither.
    :raises DeploymentError: (422) not a valid bundle; the problem names the file, line and element.
    """
    imported = engine.bundle_import.read_zip(file.read())
    deployed = engine.deploy_files(
        db_session(),
        imported.files,
        name=file.filename or "bundle.zip",
        organisation=g.organisation.key,
        user=g.user.username,
    )
    warnings = {f"{w.where()}: {w.message}" if w.where() else w.message for d in deployed for w in d.warnings}
    warnings |= {f"{w.where()}: {w.message}" if w.where() else w.message for w in imported.warnings}
    return {"processes": deployed, "warnings": sorted(warnings)}
