"""Form building, parsing and rendering without a web app."""

from __future__ import annotations

from decimal import Decimal

import pytest
from werkzeug.datastructures import MultiDict

from forms import (
    build_form,
    keep_read_only,
    parse_number,
    parse_submission,
    render_fields,
    translate_message,
    validate_submission,
)

SCHEMA = {
    "type": "object",
    "required": ["title", "amount"],
    "properties": {
        "title": {"type": "string", "title": "Title <script>alert(1)</script>"},
        "amount": {"type": "number", "title": "Amount"},
        "count": {"type": "integer"},
        "sizes": {"type": "array", "items": {"type": "string", "enum": ["S", "M", "L"]}, "uniqueItems": True},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        "rows": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "number"}}}},
    },
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1 234,50", Decimal("1234.50")), ("1234.5", Decimal("1234.5")), ("-7", -7), ("1\u00a0000", 1000)],
)
def test_numbers_are_parsed_as_people_type_them(raw: str, expected: object) -> None:
    assert parse_number(raw) == expected


@pytest.mark.parametrize("raw", ["12x", "1,2,3", "NaN", "inf"])
def test_non_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_number(raw)


def test_whole_numbers_only_where_asked() -> None:
    with pytest.raises(ValueError):
        parse_number("2,5", integer=True)


def test_parsing_converts_types_nested_objects_and_checkboxes() -> None:
    form = MultiDict(
        [
            ("title", "T"),
            ("amount", "2,5"),
            ("count", "3"),
            ("sizes", "S"),
            ("sizes", "L"),
            ("sizes", "XXL"),
            ("address/city", "Åbo"),
            ("rows/__rows", "2"),
            ("rows/0/n", ""),
            ("rows/1/n", "4"),
        ]
    )
    submission = parse_submission(SCHEMA, None, form)
    assert submission.errors == {}
    assert submission.data == {
        "title": "T",
        "amount": Decimal("2.5"),
        "count": 3,
        "sizes": ["S", "L"],
        "address": {"city": "Åbo"},
        "rows": [{"n": 4}],
    }
    assert validate_submission(SCHEMA, submission.data) == {}


def test_unconvertible_values_are_kept_for_display_and_reported() -> None:
    submission = parse_submission(SCHEMA, None, MultiDict([("amount", "lots"), ("count", "2.5")]))
    assert submission.values["amount"] == "lots" and "amount" not in submission.data
    assert submission.errors == {"amount": ["Enter a number."], "count": ["Enter a whole number."]}


def test_row_actions_keep_empty_rows() -> None:
    form = MultiDict([("rows/__rows", "1"), ("rows/0/n", ""), ("_action", "add:rows")])
    assert parse_submission(SCHEMA, None, form).values["rows"] == [{}, None]
    removed = parse_submission(SCHEMA, None, MultiDict([("rows/__rows", "1"), ("_action", "remove:rows/0")]))
    assert removed.values["rows"] == []


def test_rendering_escapes_labels_and_values() -> None:
    html = render_fields(build_form(SCHEMA, values={"title": '"><script>x</script>'}))
    assert "<script>" not in html
    assert "Title &lt;script&gt;alert(1)&lt;/script&gt;" in html and 'value="&#34;&gt;&lt;script&gt;' in html


def test_errors_for_unknown_fields_are_not_lost() -> None:
    form = build_form(SCHEMA, errors={"": ["Something about the whole form."], "ghost": ["Boo."]})
    assert form.errors == ["Something about the whole form.", "Boo."]


def test_messages_translate_with_their_values() -> None:
    table = {"Must be at least %(limit)s.": "Minst %(limit)s.", "This field is required.": "Obligatoriskt."}
    assert translate_message("Must be at least 3.", lambda t: table.get(t, t)) == "Minst 3."
    assert translate_message("This field is required.", lambda t: table.get(t, t)) == "Obligatoriskt."
    assert translate_message("Some schema's own words.", lambda t: "x") == "Some schema's own words."


def test_shipped_forms_translate_through_x_translations() -> None:
    schema = {
        "title": "Approve the purchase",
        "x-translations": {"sv": {"title": "Godkänn inköpet"}},
        "type": "object",
        "properties": {
            "comment": {
                "type": "string",
                "title": "Comment",
                "description": "Why",
                "x-translations": {"sv": {"title": "Kommentar", "description": "Varför"}},
            }
        },
    }
    swedish = build_form(schema, locale="sv")
    assert swedish.title == "Godkänn inköpet"
    assert (swedish.fields[0].label, swedish.fields[0].help) == ("Kommentar", "Varför")
    finnish = build_form(schema, locale="fi")
    assert (finnish.title, finnish.fields[0].label) == ("Approve the purchase", "Comment")


APPROVAL_CONTEXT = {
    "type": "object",
    "required": ["subject", "approved"],
    "properties": {
        "subject": {"type": "string", "readOnly": True},
        "supplier": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "contact": {"type": "string"}},
        },
        "quotes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"supplier": {"type": "string", "readOnly": True}, "price": {"type": "number"}},
            },
        },
        "history": {"type": "array", "items": {"type": "string", "readOnly": True}},
        "estimated_value": {"type": "number"},
        "approved": {"type": "boolean"},
    },
}
APPROVAL_UI = {"supplier": {"name": {"ui:readonly": True}}, "estimated_value": {"ui:readonly": True}}
CASE = {
    "subject": "Laptops",
    "supplier": {"name": "Acme", "contact": "old@acme.example"},
    "quotes": [{"supplier": "Acme", "price": 900}, {"supplier": "Beta", "price": 950}],
    "history": ["registered"],
    "estimated_value": 10_000,
    "elsewhere": "not on this form",
}


def test_read_only_fields_keep_the_cases_values_at_any_depth() -> None:
    submitted = {
        "subject": "Gold bars",
        "supplier": {"name": "Cousin Ltd", "contact": "new@acme.example"},
        "quotes": [{"supplier": "Cousin Ltd", "price": 1}, {"price": 2}, {"supplier": "New", "price": 3}],
        "history": [],
        "estimated_value": 10**12,
        "approved": True,
    }
    assert keep_read_only(APPROVAL_CONTEXT, APPROVAL_UI, submitted, CASE) == {
        "subject": "Laptops",
        "supplier": {"name": "Acme", "contact": "new@acme.example"},
        # rows match by position; a row beyond the case's rows gets no read-only value
        "quotes": [{"supplier": "Acme", "price": 1}, {"supplier": "Beta", "price": 2}, {"price": 3}],
        "history": ["registered"],
        "estimated_value": 10_000,
        "approved": True,
    }
    assert submitted["subject"] == "Gold bars" and CASE["subject"] == "Laptops"  # inputs unchanged


def test_required_read_only_field_is_satisfied_by_the_case() -> None:
    merged = keep_read_only(APPROVAL_CONTEXT, APPROVAL_UI, {"approved": False}, CASE)
    assert merged["subject"] == "Laptops" and "elsewhere" not in merged
    assert validate_submission(APPROVAL_CONTEXT, merged) == {}
    # a read-only field the case does not hold gets no value, whatever was sent
    empty = keep_read_only(APPROVAL_CONTEXT, APPROVAL_UI, {"subject": "Gold bars", "approved": True}, {})
    assert empty == {"approved": True}
    assert validate_submission(APPROVAL_CONTEXT, empty) == {"subject": ["This field is required."]}


def test_a_read_only_form_takes_nothing_from_the_submitter() -> None:
    whole = {"type": "object", "readOnly": True, "properties": {"subject": {"type": "string"}}}
    assert keep_read_only(whole, None, {"subject": "Gold bars", "extra": 1}, CASE) == {"subject": "Laptops"}
    by_ui = {"type": "object", "properties": {"subject": {"type": "string"}}}
    kept = keep_read_only(by_ui, {"ui:readonly": True}, {"subject": "Gold bars"}, CASE)
    assert kept == {"subject": "Laptops"}


def test_web_form_takes_read_only_values_from_the_case_not_the_browser() -> None:
    form = MultiDict(
        [
            ("subject", "Gold bars"),
            ("estimated_value", "1"),
            ("supplier/name", "Cousin Ltd"),
            ("quotes/__rows", "2"),
            ("quotes/0/supplier", "Cousin Ltd"),
            ("quotes/0/price", "5"),
            ("quotes/1/price", "6"),
            ("history/__rows", "0"),
            ("approved", "true"),
        ]
    )
    submission = parse_submission(APPROVAL_CONTEXT, APPROVAL_UI, form, context=CASE)
    assert submission.errors == {}
    assert submission.data == {
        "subject": "Laptops",
        "supplier": {"name": "Acme"},
        "quotes": [{"supplier": "Acme", "price": 5}, {"supplier": "Beta", "price": 6}],
        "history": ["registered"],
        "estimated_value": 10_000,
        "approved": True,
    }
    # The engine applies the same rule, so what the web form sends passes through unchanged.
    assert keep_read_only(APPROVAL_CONTEXT, APPROVAL_UI, submission.data, CASE) == submission.data
