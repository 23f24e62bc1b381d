"""What the renderer shows and reads back: read-only context, dates, choices in rows, conditional rules."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from forms import (
    FormSchemaError,
    build_form,
    check_form_schema,
    parse_submission,
    render_fields,
    validate_submission,
)
from forms import messages as m

PROCESSES = Path(__file__).resolve().parents[2] / "processes"
FINNISH = {"Yes": "Kyllä", "No": "Ei", "Date: YYYY-MM-DD": "Päivämäärä: VVVV-KK-PP"}


def finnish(text: str) -> str:
    return FINNISH.get(text, text)


def shipped(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    folder = PROCESSES / name.split("/")[0] / "forms"
    stem = name.split("/")[1]
    return (
        json.loads((folder / f"{stem}.schema.json").read_text(encoding="utf-8")),
        json.loads((folder / f"{stem}.uischema.json").read_text(encoding="utf-8")),
    )


def html_of(schema: dict[str, Any], ui: dict[str, Any] | None = None, **kwargs: Any) -> str:
    gettext = kwargs.pop("gettext", str)
    return str(render_fields(build_form(schema, ui or {}, **kwargs), gettext=gettext))


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


# -- read-only objects and tables -------------------------------------------------------------


def test_a_read_only_object_without_properties_shows_every_key_humanized() -> None:
    schema = {"type": "object", "properties": {"winner": {"type": "object", "title": "Selected supplier"}}}
    values = {"winner": {"supplier": "Kontorsmöbler AB", "org_number": "556000-0002", "compliant": True}}
    html = html_of(schema, {"winner": {"ui:readonly": True}}, values=values, gettext=finnish)
    assert "<input" not in html
    assert '<dt>Org number</dt>\n  <dd id="f-winner-org_number">556000-0002</dd>' in html
    assert "<dt>Supplier</dt>" in html and "Kontorsmöbler AB" in html
    assert '<dd id="f-winner-compliant">Kyllä</dd>' in html


def test_a_read_only_object_shows_its_declared_titles_then_undeclared_keys() -> None:
    schema = {
        "type": "object",
        "properties": {
            "record": {
                "type": "object",
                "readOnly": True,
                "title": "Record",
                "properties": {
                    "buyer_name": {"title": "Buyer", "x-translations": {"fi": {"title": "Hankintayksikkö"}}},
                    "decided_on": {"title": "Decided on", "format": "date"},
                },
            }
        },
    }
    values = {"record": {"decided_on": "2026-12-01", "buyer_name": "Esimerkkilä", "extra_note": "kept"}}
    text = text_of(html_of(schema, values=values, locale="fi"))
    assert (
        text.index("Hankintayksikkö Esimerkkilä")
        < text.index("Decided on 1.12.2026")
        < text.index("Extra note")
    )
    closed = {"record": {**schema["properties"]["record"], "additionalProperties": False}}
    assert "Extra note" not in html_of({"type": "object", "properties": closed}, values=values)


def test_a_read_only_objects_declared_properties_are_never_inputs() -> None:
    schema = {
        "type": "object",
        "properties": {
            "winner": {
                "type": "object",
                "readOnly": True,
                "properties": {"price": {"type": "number", "title": "Price"}, "ok": {"type": "boolean"}},
            }
        },
    }
    html = html_of(schema, values={"winner": {"price": 330000, "ok": False}}, locale="sv")
    assert "<input" not in html and "<select" not in html
    assert '<dd id="f-winner-price">330\xa0000</dd>' in html
    assert '<dd id="f-winner-ok">No</dd>' in html


def test_a_read_only_array_of_undeclared_objects_is_a_table_with_headers() -> None:
    schema = {
        "type": "object",
        "properties": {"goals": {"type": "array", "readOnly": True, "items": {"type": "object"}}},
    }
    goals = [{"goal_id": "T8.1", "schedule": [25, 50, 75, 100]}, {"goal_id": "own-1", "owner": "se-quality"}]
    html = html_of(schema, values={"goals": goals})
    assert re.search(
        r"<th scope=\"col\">Goal id</th><th scope=\"col\">Schedule</th><th scope=\"col\">Owner</th>", html
    )
    assert '<td id="f-goals-0-schedule">25, 50, 75, 100</td>' in html
    assert '<td id="f-goals-1-owner">se-quality</td>' in html
    assert "<input" not in html and "Add row" not in html


def test_a_read_only_array_with_declared_items_uses_their_translated_titles() -> None:
    schema, ui = shipped("goal_review/approve_plan")
    goal = {"goal_id": "T8.1", "title": "Lower emissions", "period_start": "2026-01-01", "schedule": [25, 50]}
    html = html_of(schema, ui, values={"goals": [goal]}, locale="sv")
    assert '<th scope="col">Mål-id</th>' in html and '<th scope="col">Mål</th>' in html
    assert '<td id="f-goals-0-title">Lower emissions</td>' in html
    assert '<td id="f-goals-0-period_start">1 jan. 2026</td>' in html


def test_an_empty_read_only_table_shows_a_dash_not_empty_rows() -> None:
    schema = {"type": "object", "properties": {"goals": {"type": "array", "readOnly": True, "items": {}}}}
    html = html_of(schema, values={"goals": []})
    assert "<tr>" not in html and '<span class="muted">\N{EN DASH}</span>' in html


def test_the_approval_form_shows_the_selected_supplier_in_finnish() -> None:
    schema, ui = shipped("direct_procurement/approve")
    winner = {"supplier": "Kontorsmöbler AB", "org_number": "556000-0002", "price": 320000, "score": 90}
    text = text_of(html_of(schema, ui, values={"winner": winner, "contract_value": 320000}, locale="fi"))
    assert "Toimittaja Kontorsmöbler AB" in text and "Y-tunnus 556000-0002" in text
    assert "320 000" in text.replace("\xa0", " ")


def test_the_archive_form_shows_the_documentation_record() -> None:
    schema, ui = shipped("direct_procurement/archive_documentation")
    record = {
        "buyer_name": "Exempelby kommun",
        "winner_name": "Kontorsmöbler AB",
        "suppliers_asked": [{"name": "Stolfabriken AB", "org_number": "556000-0001"}],
        "estimated_value": 330000,
    }
    html = html_of(schema, ui, values={"documentation_record": record}, locale="sv")
    assert "<dt>Vald leverantör</dt>" in html and "Kontorsmöbler AB" in html
    assert '<th scope="col">Leverantör</th>' in html and "Stolfabriken AB" in html


# -- dates and times -----------------------------------------------------------------------------

DATES = {
    "type": "object",
    "required": ["deadline"],
    "properties": {
        "sent_on": {"type": "string", "format": "date", "title": "Sent on"},
        "deadline": {"type": "string", "format": "date-time", "title": "Deadline", "x-not-before": "now"},
        "note": {"type": "string", "title": "Note"},
    },
}


def test_dates_and_date_times_get_pickers_and_their_format() -> None:
    values = {"sent_on": "2026-11-30", "deadline": "2026-12-01T09:00:00+00:00"}
    html = html_of(DATES, values=values, time_zone="Europe/Stockholm", gettext=finnish)
    assert re.search(r'<input type="date" id="f-sent_on" name="sent_on"[^>]*value="2026-11-30"', html)
    # 09:00 UTC is 10:00 in Stockholm: the picker shows the organisation's local time.
    assert re.search(r'<input type="datetime-local" id="f-deadline"[^>]*value="2026-12-01T10:00"', html)
    assert 'aria-describedby="f-deadline-format"' in html
    assert "Päivämäärä: VVVV-KK-PP" in html
    assert "Europe/Stockholm" in html
    assert re.search(r'id="f-deadline"[^>]* min="\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"', html)


def test_a_date_time_is_read_in_the_organisations_time_zone() -> None:
    form = MultiDict({"deadline": "2026-12-01T10:00", "sent_on": "1.12.2026"})
    submission = parse_submission(DATES, {}, form, time_zone="Europe/Helsinki")
    assert submission.errors == {}
    assert submission.data == {"deadline": "2026-12-01T10:00:00+02:00", "sent_on": "2026-12-01"}
    utc = parse_submission(DATES, {}, MultiDict({"deadline": "2026-07-01 10:00"}))
    assert utc.data["deadline"] == "2026-07-01T10:00:00+00:00"


def test_a_malformed_date_time_is_a_field_error_with_everything_typed_kept() -> None:
    form = MultiDict({"deadline": "1 Dec 2026 10:00", "sent_on": "2026-02-30", "note": "Call Anna first"})
    submission = parse_submission(DATES, {}, form, time_zone="Europe/Stockholm")
    assert submission.errors == {"deadline": [m.NOT_A_DATE_TIME], "sent_on": [m.NOT_A_DATE]}
    assert submission.values == {
        "deadline": "1 Dec 2026 10:00",
        "sent_on": "2026-02-30",
        "note": "Call Anna first",
    }
    html = html_of(DATES, values=submission.values, errors=submission.errors)
    # What cannot go back into a picker comes back as typed, in a text box beside its message.
    assert re.search(r'<input type="text" id="f-deadline"[^>]*value="1 Dec 2026 10:00"', html)
    assert re.search(r'<input type="text" id="f-sent_on"[^>]*value="2026-02-30"', html)
    assert 'value="Call Anna first"' in html
    assert "Enter a date and time as YYYY-MM-DD HH:MM." in html


def test_validation_refuses_a_date_time_without_an_offset() -> None:
    assert validate_submission(DATES, {"deadline": "2099-12-01T10:00"}) == {"deadline": [m.NOT_A_DATE_TIME]}
    assert validate_submission(DATES, {"deadline": "1 Dec 2099 10:00"}) == {"deadline": [m.NOT_A_DATE_TIME]}
    assert validate_submission(DATES, {"deadline": "2099-12-01T10:00:00+01:00"}) == {}


def test_not_before_now_refuses_the_past() -> None:
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    assert validate_submission(DATES, {"deadline": "2026-12-01T11:59:00+00:00"}, now=now) == {
        "deadline": [m.NOT_IN_THE_PAST]
    }
    assert validate_submission(DATES, {"deadline": "2026-12-01T13:30:00+01:00"}, now=now) == {}
    dated = {
        "type": "object",
        "properties": {"by": {"type": "string", "format": "date", "x-not-before": "now"}},
    }
    late = dt.datetime(2026, 12, 1, 23, 30, tzinfo=dt.UTC)  # already 2 December in Helsinki
    assert validate_submission(dated, {"by": "2026-12-01"}, now=late) == {}
    assert validate_submission(dated, {"by": "2026-12-01"}, now=late, time_zone="Europe/Helsinki") == {
        "by": [m.NOT_IN_THE_PAST]
    }
    assert validate_submission(dated, {"by": "2026-12-02"}, now=late, time_zone="Europe/Helsinki") == {}


def test_not_before_takes_only_now() -> None:
    with pytest.raises(FormSchemaError, match="x-not-before") as refused:
        check_form_schema({"type": "object", "properties": {"d": {"type": "string", "x-not-before": "2020"}}})
    assert refused.value.pointer == "/properties/d/x-not-before"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ("direct_procurement/request_quotes", "quote_deadline"),
        ("mini_competition/prepare_invitation", "tender_deadline"),
    ],
)
def test_the_shipped_deadlines_refuse_the_past(form: str, field: str) -> None:
    schema, _ = shipped(form)
    fmt = schema["properties"][field]["format"]
    past = "2020-01-01T10:00:00+00:00" if fmt == "date-time" else "2020-01-01"
    assert validate_submission(schema, {field: past}).get(field) == [m.NOT_IN_THE_PAST]


# -- choices and yes/no in rows; empty rows ---------------------------------------------------------

ROWS = {
    "type": "object",
    "properties": {
        "quotes": {
            "type": "array",
            "title": "Quotes",
            "items": {
                "type": "object",
                "required": ["compliant", "kind"],
                "properties": {
                    "supplier": {"type": "string", "title": "Supplier"},
                    "compliant": {"type": "boolean", "title": "Compliant"},
                    "late": {"type": "boolean", "title": "Late"},
                    "kind": {
                        "type": "string",
                        "oneOf": [
                            {
                                "const": "goods",
                                "title": "Goods",
                                "x-translations": {"fi": {"title": "Tavarat"}},
                            },
                            {
                                "const": "works",
                                "title": "Works",
                                "x-translations": {"fi": {"title": "Urakat"}},
                            },
                        ],
                    },
                },
            },
        }
    },
}


def test_yes_no_and_choices_in_rows_are_radios_checkboxes_and_selects() -> None:
    html = html_of(
        ROWS, values={"quotes": [{"supplier": "Acme", "compliant": True}]}, locale="fi", gettext=finnish
    )
    assert '<input type="radio" name="quotes/0/compliant" value="true" checked> Kyllä' in html
    assert '<input type="radio" name="quotes/0/compliant" value="false"> Ei' in html
    assert re.search(r'<input type="checkbox" role="switch" id="f-quotes-0-late" name="quotes/0/late"', html)
    assert re.search(r'<select id="f-quotes-0-kind" name="quotes/0/kind"', html)
    assert '<option value="works">Urakat</option>' in html
    assert 'name="quotes/0/compliant" value="' not in html.replace(
        'type="radio" name="quotes/0/compliant"', ""
    )


def test_yes_no_in_rows_is_read_back_as_booleans() -> None:
    form = MultiDict(
        {
            "quotes/__rows": "1",
            "quotes/0/supplier": "Acme",
            "quotes/0/compliant": "false",
            "quotes/0/late": "on",
        }
    )
    submission = parse_submission(ROWS, {}, form)
    assert submission.data == {"quotes": [{"supplier": "Acme", "compliant": False, "late": True}]}


def test_a_repeating_field_has_no_row_until_one_is_added() -> None:
    form = build_form(ROWS, {})
    assert form.fields[0].rows == []
    assert "Add row" in str(render_fields(form))
    at_least_two = {
        "type": "object",
        "properties": {"quotes": {**ROWS["properties"]["quotes"], "minItems": 2}},
    }
    assert len(build_form(at_least_two, {}).fields[0].rows) == 2


def test_rows_that_declare_no_fields_are_shown_and_kept_not_edited() -> None:
    schema = {
        "type": "object",
        "properties": {
            "plan_year": {"type": "integer"},
            "previous_plan": {"type": "array", "items": {"type": "object"}},
        },
    }
    html = html_of(schema)
    assert "Add row" not in html and "<tr>" not in html
    previous = [{"goal_id": "T8.1", "title": "Lower emissions"}]
    assert "Lower emissions" in html_of(schema, values={"previous_plan": previous})
    submission = parse_submission(
        schema, {}, MultiDict({"plan_year": "2027"}), context={"previous_plan": previous}
    )
    assert submission.data == {"plan_year": 2027, "previous_plan": previous}


def test_the_goal_review_start_form_has_no_phantom_row() -> None:
    schema, ui = shipped("goal_review/start_goal_review")
    form = build_form(schema, ui)
    assert [f.rows for f in form.fields if f.widget == "rows"] == [
        [] for f in form.fields if f.widget == "rows"
    ]
    assert '<th scope="row">' not in str(render_fields(form))


# -- conditional requirements ---------------------------------------------------------------------


@pytest.mark.parametrize("process", ["direct_procurement", "mini_competition"])
def test_a_conflict_declarations_details_are_required_only_with_a_conflict(process: str) -> None:
    schema, ui = shipped(f"{process}/declare_conflict")
    html = html_of(schema, ui)
    assert not re.search(r'id="f-details"[^>]*aria-required', html)
    no = parse_submission(schema, ui, MultiDict({"has_conflict": "false", "details": ""}))
    assert no.data["details"] == "" and validate_submission(schema, no.data) == {}
    yes = parse_submission(schema, ui, MultiDict({"has_conflict": "true", "details": ""}))
    assert set(validate_submission(schema, yes.data)) == {"details"}
    assert validate_submission(schema, {"has_conflict": True}) == {"details": [m.REQUIRED]}


@pytest.mark.parametrize(
    ("form", "flag", "text"),
    [
        ("direct_procurement/approve", "approved", "approval_comment"),
        ("direct_procurement/quality_review", "quality_ok", "quality_remarks"),
    ],
)
def test_a_comment_is_needed_only_to_say_no(form: str, flag: str, text: str) -> None:
    schema, ui = shipped(form)
    assert not re.search(rf'id="f-{text}"[^>]*aria-required', html_of(schema, ui))
    yes = parse_submission(schema, ui, MultiDict({flag: "true"}))
    assert yes.data[text] == "" and text not in validate_submission(schema, yes.data)
    no = parse_submission(schema, ui, MultiDict({flag: "false"}))
    assert text in validate_submission(schema, no.data)


def test_nested_read_only_numbers_from_the_case_keep_their_type() -> None:
    # The web app reads the case's data as JSON, where exact amounts are text.
    schema = {
        "type": "object",
        "properties": {
            "record": {
                "type": "object",
                "readOnly": True,
                "properties": {
                    "value": {"type": "number"},
                    "spend": {"type": "object", "properties": {"total": {"type": "integer"}}},
                    "rows": {"type": "array", "items": {"properties": {"price": {"type": "number"}}}},
                },
            }
        },
    }
    record = {"value": "320000.50", "spend": {"total": "0"}, "rows": [{"price": "12.5"}], "note": "1"}
    context = {"record": record}
    submission = parse_submission(schema, {}, MultiDict(), context=context)
    assert submission.data["record"] == {
        "value": Decimal("320000.50"),
        "spend": {"total": 0},
        "rows": [{"price": Decimal("12.5")}],
        "note": "1",
    }
    assert validate_submission(schema, submission.data) == {}


def test_a_message_about_read_only_data_shows_beside_it() -> None:
    schema = {
        "type": "object",
        "properties": {
            "record": {"type": "object", "readOnly": True, "properties": {"value": {"type": "number"}}}
        },
    }
    html = html_of(schema, values={"record": {"value": "x"}}, errors={"record/value": [m.NOT_A_NUMBER]})
    assert re.search(r'<dd id="f-record-value">x\s*<small id="f-record-value-error"', html)
    assert "Enter a number." in html


# -- rows the form may not add to or remove from -----------------------------------

FIXED_ROWS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "suppliers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string", "title": "Name"}, "invite": {"type": "boolean"}},
            },
        }
    },
}
FIXED_ROWS_UI = {"suppliers": {"ui:options": {"addable": False, "removable": False}}}
FIXED_ROWS_VALUES = {"suppliers": [{"name": "A", "invite": True}, {"name": "B", "invite": True}]}


def test_rows_marked_not_addable_nor_removable_have_neither_button() -> None:
    fixed = render_fields(build_form(FIXED_ROWS_SCHEMA, FIXED_ROWS_UI, values=FIXED_ROWS_VALUES))
    free = render_fields(build_form(FIXED_ROWS_SCHEMA, {}, values=FIXED_ROWS_VALUES))

    assert "add:suppliers" not in fixed and "remove:suppliers/" not in fixed
    assert "add:suppliers" in free and "remove:suppliers/1" in free


@pytest.mark.parametrize("action", ["remove:suppliers/0", "add:suppliers"])
def test_a_forged_row_action_on_fixed_rows_changes_nothing(action: str) -> None:
    form = MultiDict(
        {
            "suppliers/__rows": "2",
            "suppliers/0/name": "A",
            "suppliers/0/invite": "true",
            "suppliers/1/name": "B",
            "suppliers/1/invite": "true",
            "_action": action,
        }
    )
    submission = parse_submission(FIXED_ROWS_SCHEMA, FIXED_ROWS_UI, form)

    assert [row["name"] for row in submission.values["suppliers"]] == ["A", "B"]
