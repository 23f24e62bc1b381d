"""Form building, parsing and rendering without a web app."""

from __future__ import annotations

from decimal import Decimal

import pytest
from werkzeug.datastructures import MultiDict

from forms import (
    build_form,
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
