"""The ``x-total`` keyword (rows of a table adding up to a figure) and messages with two values."""

from __future__ import annotations

from typing import Any

from forms import translate_message, validate_submission

WEIGHTS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "criteria": {
            "type": "array",
            "x-total": {"of": "weight", "equals": 100},
            "items": {
                "type": "object",
                "required": ["weight"],
                "properties": {"criterion": {"type": "string"}, "weight": {"type": "number"}},
            },
        }
    },
}


def _rows(*weights: Any) -> dict[str, Any]:
    return {"criteria": [{"criterion": f"c{i}", "weight": w} for i, w in enumerate(weights)]}


def test_rows_adding_up_to_the_total_pass() -> None:
    assert validate_submission(WEIGHTS, _rows(60, 40)) == {}
    assert validate_submission(WEIGHTS, _rows(70.5, 29.5)) == {}
    assert validate_submission(WEIGHTS, _rows(33.4, 33.3, 33.3)) == {}


def test_rows_adding_up_to_another_figure_are_refused_on_the_table() -> None:
    assert validate_submission(WEIGHTS, _rows(60, 60)) == {
        "criteria": ["The rows must add up to 100; they add up to 120."]
    }
    assert validate_submission(WEIGHTS, _rows(33.3, 33.3, 33.3)) == {
        "criteria": ["The rows must add up to 100; they add up to 99.9."]
    }


def test_a_row_without_a_number_gets_its_own_message_and_no_total() -> None:
    errors = validate_submission(
        WEIGHTS, {"criteria": [{"criterion": "Price", "weight": 60}, {"criterion": "Q"}]}
    )
    assert errors == {"criteria/1/weight": ["This field is required."]}
    errors = validate_submission(WEIGHTS, {"criteria": [{"weight": 60}, {"weight": "forty"}]})
    assert list(errors) == ["criteria/1/weight"]


def test_a_message_with_two_values_is_translated_with_both() -> None:
    template = "The rows must add up to %(limit)s; they add up to %(total)s."
    table = {template: "Summan ska vara %(limit)s, nu %(total)s."}
    message = "The rows must add up to 100; they add up to 120."
    assert translate_message(message, lambda t: table.get(t, t)) == "Summan ska vara 100, nu 120."
