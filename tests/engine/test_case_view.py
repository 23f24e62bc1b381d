"""The organisation's time zone, and the checks of a bundle's case.json at deploy."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import sqlalchemy.orm as so

import engine
from engine._case_file import check_case_file
from engine.time_zones import time_zone_for
from tests.conftest import FIXTURES


@pytest.mark.parametrize(
    ("parameters", "zone"),
    [
        ({"time_zone": "Europe/Helsinki", "jurisdiction": "SE"}, "Europe/Helsinki"),
        ({"jurisdiction": "SE"}, "Europe/Stockholm"),
        ({"jurisdiction": "fi"}, "Europe/Helsinki"),
        ({"jurisdiction": "NO"}, "UTC"),
        ({}, "UTC"),
        ({"time_zone": "Mars/Olympus", "jurisdiction": "FI"}, "Europe/Helsinki"),
    ],
)
def test_time_zone_from_the_parameters(parameters: dict[str, object], zone: str) -> None:
    assert time_zone_for(parameters) == zone


def test_organisation_time_zone_reads_the_dated_parameters(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north")
        assert engine.organisation_time_zone(s, north.id) == "UTC"
        engine.set_parameter(s, "jurisdiction", "SE", organisation_id=None, valid_from=dt.date(2000, 1, 1))
        assert engine.organisation_time_zone(s, north.id) == "Europe/Stockholm"
        engine.set_parameter(
            s, "time_zone", "Europe/Helsinki", organisation_id=north.id, valid_from=dt.date(2030, 1, 1)
        )
        assert engine.organisation_time_zone(s, north.id) == "Europe/Stockholm", "not valid yet"
        assert engine.organisation_time_zone(s, north.id, dt.date(2030, 1, 1)) == "Europe/Helsinki"


FORMS = {"forms/reply.schema.json": json.dumps({"type": "object", "properties": {}})}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("[]", "must be a JSON object"),
        ({"sumary": []}, "unknown keys ['sumary']"),
        ({"summary": [{"label": "x"}]}, "summary[0] must be an object with a data 'key'"),
        ({"summary": [{"key": "a", "label": 3}]}, "summary[0].label must be a text"),
        (
            {"summary": [{"key": "a", "label": "A", "format": "colour"}]},
            "summary[0].format 'colour' is not one of",
        ),
        (
            {"summary": [{"key": "a", "label": "A", "note": {"text": "t"}}]},
            "summary[0].note must be an object",
        ),
        ({"messages": {"reply": {"label": "R", "form": "forms/missing.json"}}}, "messages.reply.form names"),
        ({"messages": {"reply": []}}, "messages.reply must be an object"),
    ],
)
def test_a_malformed_case_file_is_refused_naming_the_entry(case: object, message: str) -> None:
    content = case if isinstance(case, str) else json.dumps(case)
    with pytest.raises(engine.DeploymentError, match=re.escape(message)) as raised:
        check_case_file(content, forms=FORMS)
    assert "case.json" in str(raised.value)


def test_a_bundle_with_a_bad_case_file_does_not_deploy(
    session_factory: so.sessionmaker[so.Session], orgs: None, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for item in (FIXTURES / "case_page").rglob("*"):
        if item.is_file():
            target = bundle / item.relative_to(FIXTURES / "case_page")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(item.read_text(encoding="utf-8"), encoding="utf-8")
    case = json.loads((bundle / "case.json").read_text(encoding="utf-8"))
    case["messages"]["customer_reply"]["form"] = "forms/nowhere.schema.json"
    (bundle / "case.json").write_text(json.dumps(case), encoding="utf-8")
    with session_factory.begin() as s, pytest.raises(engine.DeploymentError, match=r"nowhere\.schema\.json"):
        engine.deploy_path(s, bundle)
