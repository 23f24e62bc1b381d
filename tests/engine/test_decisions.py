"""Decision tables run in the sandbox, read dated organisation parameters and are audited."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy.orm as so

import engine
from engine.models import Parameter
from tests.conftest import FIXTURES

Factory = so.sessionmaker[so.Session]


@pytest.fixture
def deployed(session_factory: Factory, orgs: None) -> None:
    today = dt.date.today()
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "decision")
        north = engine.get_organisation(s, "north")
        s.add_all(
            [
                # Shared default, an expired own value and a current own value for north.
                Parameter(
                    organisation_id=None, key="direct_limit", value=700_000, valid_from=dt.date(2022, 2, 1)
                ),
                Parameter(
                    organisation_id=north.id,
                    key="direct_limit",
                    value=100,
                    valid_from=dt.date(2020, 1, 1),
                    valid_to=today - dt.timedelta(days=1),
                ),
                Parameter(organisation_id=north.id, key="direct_limit", value=50_000, valid_from=today),
            ]
        )


@pytest.mark.parametrize(
    ("org", "value", "procedure"),
    [("north", 40_000, "direct"), ("north", 60_000, "advertised"), ("south", 600_000, "direct")],
)
def test_decision_uses_the_organisations_current_parameter(
    session_factory: Factory, deployed: None, org: str, value: int, procedure: str
) -> None:
    with session_factory.begin() as s:
        instance = engine.start_instance(
            s, "decision", organisation=org, user=f"{org}-req", data={"value": value}
        )
        assert engine.instance_data(s, instance)["procedure"] == procedure
        (event,) = [e for e in engine.instance_events(s, instance.id) if e.kind == "decision_made"]
        assert event.element == "choose"
        assert event.detail["inputs"] == {"value": value}
        assert event.detail["outputs"] == {"procedure": procedure}
        assert event.detail["decision"] == "ProcedureChoiceTable"


def test_missing_parameter_is_a_clear_error(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "decision")
        instance = engine.start_instance(
            s, "decision", organisation="north", user="north-req", data={"value": 1}
        )
    assert instance.status == "error"
    assert "direct_limit" in (instance.error_message or "")
