"""The marshmallow schemas of ``/api/v1``: what goes in and what comes out, and so the OpenAPI document.

One module-level instance per schema; views name them in their decorators
and never build dictionaries of their own.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

# How many rows one page of a list holds at most, and without ``limit``.
MAX_PAGE = 200
DEFAULT_PAGE = 50
_LIMIT = fields.Integer(
    load_default=DEFAULT_PAGE,
    validate=validate.Range(1, MAX_PAGE),
    metadata={"description": f"Rows per page, 1 to {MAX_PAGE}."},
)
# Ids in paths: what an integer column holds (a larger number would be a database error, not a 404).
ID = "int(min=1, max=2147483647)"


def json_ready(value: Any) -> Any:
    """Return *value* with dates as ISO 8601 text and decimals as numbers, as JSON carries them."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class Text(fields.String):
    """A string without NUL characters (no database column can hold them)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("Text may not contain NUL characters.")
        return text


class JsonObject(fields.Dict):
    """Any JSON object (task data, a form's JSON Schema); dates in it become ISO 8601 text."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else json_ready(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("Not a JSON object.")
        if _has_nul(value):
            raise ValidationError("Text may not contain NUL characters.")
        return value


# -- processes ---------------------------------------------------------------------------------


class ProcessSchema(Schema):
    process_id = Text(required=True)
    name = Text(required=True)
    version = fields.Integer(required=True)
    shared = fields.Function(lambda d: d.organisation_id is None, required=True)


class StartFormSchema(Schema):
    process_id = Text(required=True)
    version = fields.Integer(required=True)
    schema = JsonObject(
        required=True, allow_none=True, metadata={"description": "JSON Schema; null: no form."}
    )
    ui_schema = JsonObject(required=True, allow_none=True)


# -- instances ---------------------------------------------------------------------------------


class InstanceSchema(Schema):
    id = fields.Integer(required=True)
    process_id = Text(required=True)
    version = fields.Function(lambda i: i.definition.version, required=True)
    status = Text(required=True)
    business_key = Text(required=True, allow_none=True)
    title = Text(required=True)
    error_message = Text(required=True, allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    completed_at = fields.AwareDateTime(required=True, allow_none=True)


class TaskSchema(Schema):
    id = fields.Integer(required=True)
    instance_id = fields.Integer(required=True)
    process_id = Text(required=True)
    bpmn_id = Text(required=True)
    name = Text(required=True)
    lane = Text(required=True, allow_none=True)
    candidate_group = Text(required=True, allow_none=True)
    state = Text(required=True)
    assignee = fields.Function(
        lambda t: t.assignee.username if t.assignee else None, required=True, allow_none=True
    )
    due_at = fields.AwareDateTime(required=True, allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    completed_at = fields.AwareDateTime(required=True, allow_none=True)


class InstanceDetailSchema(Schema):
    instance = fields.Nested(InstanceSchema, required=True)
    data = JsonObject(required=True)
    tasks = fields.List(fields.Nested(TaskSchema), required=True)


class CaseRowSchema(Schema):
    id = fields.Integer(required=True, attribute="instance_id")
    process_id = Text(required=True)
    title = Text(required=True)
    business_key = Text(required=True, allow_none=True)
    status = Text(required=True)
    started_at = fields.AwareDateTime(required=True)
    completed_at = fields.AwareDateTime(required=True, allow_none=True)
    updated_at = fields.AwareDateTime(required=True)
    started_by = Text(required=True, allow_none=True)
    fields_ = JsonObject(required=True, data_key="fields", attribute="fields")


class InstancePageSchema(Schema):
    items = fields.List(fields.Nested(CaseRowSchema), required=True)
    next_cursor = Text(required=True, allow_none=True)


class InstanceQuerySchema(Schema):
    process_id = Text(validate=validate.Length(1, 200))
    status = Text(
        validate=validate.OneOf(("running", "waiting", "completed", "error", "suspended", "cancelled"))
    )
    started_from = fields.Date()
    started_to = fields.Date()
    q = Text(validate=validate.Length(1, 200), metadata={"description": "Text in title or fields."})
    mine = fields.Boolean(load_default=False, metadata={"description": "Only cases I started or worked on."})
    sort = Text(load_default="-started", validate=validate.OneOf(("-started", "started")))
    limit = _LIMIT
    cursor = Text(validate=validate.Length(1, 500))


class StartInstanceSchema(Schema):
    process_id = Text(required=True, validate=validate.Length(1, 200))
    data = JsonObject(load_default=dict)
    business_key = Text(validate=validate.Length(1, 200))
    title = Text(validate=validate.Length(1, 300))


class DataBodySchema(Schema):
    data = JsonObject(required=True)


class RetryBodySchema(Schema):
    data = JsonObject(load_default=dict)


# -- tasks -------------------------------------------------------------------------------------


class TaskPageSchema(Schema):
    items = fields.List(fields.Nested(TaskSchema), required=True)
    next_cursor = Text(required=True, allow_none=True)
    previous_cursor = Text(required=True, allow_none=True)


class TaskQuerySchema(Schema):
    view = Text(load_default="all", validate=validate.OneOf(("all", "mine", "group")))
    process_id = Text(validate=validate.Length(1, 200))
    q = Text(validate=validate.Length(1, 200))
    sort = Text(load_default="due", validate=validate.OneOf(("due", "created", "name")))
    limit = _LIMIT
    after = Text(validate=validate.Length(1, 500), metadata={"description": "next_cursor of a page."})
    before = Text(validate=validate.Length(1, 500), metadata={"description": "previous_cursor."})


class TaskDetailSchema(Schema):
    task = fields.Nested(TaskSchema, required=True)
    schema = JsonObject(required=True, allow_none=True)
    ui_schema = JsonObject(required=True, allow_none=True)
    data = JsonObject(required=True, metadata={"description": "The case data the task sees."})


class CompleteTaskSchema(Schema):
    data = JsonObject(required=True, metadata={"description": "The form's fields."})


# -- messages, deployments, attachments, contact intake ---------------------------------------


class MessageSchema(Schema):
    name = Text(required=True, validate=validate.Length(1, 200))
    payload = JsonObject(load_default=dict)
    correlation = JsonObject(
        load_default=dict,
        metadata={
            "description": "Correlation values (e.g. contact_ref); added to the payload, winning over it."
        },
    )


class DeliveredSchema(Schema):
    instances = fields.List(fields.Integer(), required=True, metadata={"description": "Reached or started."})


class DeploymentUploadSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary", "description": "A zip."})


class DeployedProcessSchema(Schema):
    process_id = Text(required=True)
    version = fields.Integer(required=True)
    changed = fields.Boolean(required=True)


class DeploymentResultSchema(Schema):
    processes = fields.List(fields.Nested(DeployedProcessSchema), required=True)
    warnings = fields.List(Text(), required=True)


class AttachmentSchema(Schema):
    id = fields.Integer(required=True)
    instance_id = fields.Integer(required=True)
    task_id = fields.Integer(required=True, allow_none=True)
    field = Text(required=True, allow_none=True)
    filename = Text(required=True)
    content_type = Text(required=True)
    size = fields.Integer(required=True)
    sha256 = Text(required=True)
    uploaded_at = fields.AwareDateTime(required=True)


class AttachmentListSchema(Schema):
    items = fields.List(fields.Nested(AttachmentSchema), required=True)


class AttachmentUploadSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class AttachmentFieldSchema(Schema):
    field = Text(validate=validate.Length(1, 300), metadata={"description": "The form field."})


class ContactSchema(Schema):
    contact_ref = Text(validate=validate.Length(1, 100), metadata={"description": "Your reference."})
    name = Text(validate=validate.Length(max=200))
    email = fields.Email(required=True, validate=validate.Length(max=254))
    organisation = Text(validate=validate.Length(max=300))
    message = Text(required=True, validate=validate.Length(1, 8000))
    channel = Text(load_default="web", validate=validate.Length(1, 40))


# -- reports -----------------------------------------------------------------------------------


class PeriodQuerySchema(Schema):
    from_ = fields.Date(data_key="from", metadata={"description": "First day (inclusive)."})
    to = fields.Date(metadata={"description": "Last day (inclusive)."})


class ReportSchema(Schema):
    columns = fields.List(Text(), required=True)
    rows = fields.List(JsonObject(), required=True)
    summary = JsonObject(required=True, metadata={"description": "The report's totals, where it has them."})


process_schema = ProcessSchema()
start_form_schema = StartFormSchema()
instance_schema = InstanceSchema()
instance_detail_schema = InstanceDetailSchema()
instance_page_schema = InstancePageSchema()
instance_query_schema = InstanceQuerySchema()
start_instance_schema = StartInstanceSchema()
data_body_schema = DataBodySchema()
retry_body_schema = RetryBodySchema()
task_schema = TaskSchema()
task_page_schema = TaskPageSchema()
task_query_schema = TaskQuerySchema()
task_detail_schema = TaskDetailSchema()
complete_task_schema = CompleteTaskSchema()
message_schema = MessageSchema()
delivered_schema = DeliveredSchema()
deployment_upload_schema = DeploymentUploadSchema()
deployment_result_schema = DeploymentResultSchema()
attachment_schema = AttachmentSchema()
attachment_list_schema = AttachmentListSchema()
attachment_upload_schema = AttachmentUploadSchema()
attachment_field_schema = AttachmentFieldSchema()
contact_schema = ContactSchema()
period_query_schema = PeriodQuerySchema()
report_schema = ReportSchema()
