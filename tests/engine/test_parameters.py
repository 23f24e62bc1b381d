"""Dated parameters: the value in force, append-only history, types, the catalogue, the audit."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine._parameters_file import check_parameters_file
from engine._workflow import current_parameters
from engine.parameters import (
    check_value,
    parameter_catalogue,
    parameter_entry,
    parameter_history,
    parameters_in_force,
    parse_value,
    record_parameter_value,
    use_shared_parameter,
)
from tests.conftest import PROCESSES

D = dt.date


def _org(s: so.Session, key: str = "north") -> int:
    return engine.get_organisation(s, key).id


def _set(s: so.Session, key: str, value: object, org: int | None, start: D, end: D | None = None) -> None:
    engine.set_parameter(s, key, value, organisation_id=org, valid_from=start, valid_to=end)


def test_own_over_shared_and_the_latest_start_in_force(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        north = _org(s)
        _set(s, "limit", 100, None, D(2020, 1, 1))
        _set(s, "limit", 200, None, D(2024, 1, 1))
        _set(s, "limit", 50, north, D(2023, 1, 1), D(2023, 12, 31))
    with session_factory() as s:
        assert current_parameters(s, north, D(2022, 6, 1))["limit"] == 100
        assert current_parameters(s, north, D(2023, 6, 1))["limit"] == 50
        # The own row has ended: the shared one in force that day applies again.
        assert current_parameters(s, north, D(2024, 6, 1))["limit"] == 200
        assert "limit" not in current_parameters(s, north, D(2019, 12, 31))
        assert current_parameters(s, _org(s, "south"), D(2023, 6, 1))["limit"] == 100


def test_a_correction_is_a_newer_row_that_supersedes_the_older(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        north = _org(s)
        _set(s, "limit", 100, north, D(2020, 1, 1))
        _set(s, "limit", 110, north, D(2020, 1, 1))
        # A correction narrowing the end supersedes the older row's open end too.
        _set(s, "other", 1, north, D(2020, 1, 1))
        _set(s, "other", 1, north, D(2020, 1, 1), D(2020, 6, 30))
    with session_factory() as s:
        rows = s.scalars(sa.select(engine.Parameter).where(engine.Parameter.key == "limit")).all()
        assert sorted(r.value for r in rows) == [100, 110], "nothing is edited in place"
        values = current_parameters(s, north, D(2021, 1, 1))
        assert values["limit"] == 110 and "other" not in values
        history = parameter_history(s, north, "limit")
        assert [(h.row.value, h.superseded) for h in history] == [(110, False), (100, True)]


def test_uses_shared_from_a_date(session_factory: so.sessionmaker[so.Session], orgs: None) -> None:
    with session_factory.begin() as s:
        north = _org(s)
        _set(s, "limit", 100, None, D(2020, 1, 1))
        _set(s, "limit", 70, north, D(2021, 1, 1))
        use_shared_parameter(s, north, "limit", valid_from=D(2022, 1, 1), note="back", actor="north-admin")
    with session_factory() as s:
        assert current_parameters(s, north, D(2021, 6, 1))["limit"] == 70
        assert current_parameters(s, north, D(2022, 6, 1))["limit"] == 100
        event = s.scalars(sa.select(engine.AuditEvent).where(engine.AuditEvent.kind.like("admin.%"))).one()
        assert (event.kind, event.element, event.actor) == (
            "admin.parameter_uses_shared",
            "parameter limit",
            "north-admin",
        )
        assert event.detail["before"]["value"] == 70 and event.organisation_id == north


def test_going_back_to_the_shared_value_needs_an_own_one_and_a_shared_one(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        north = _org(s)
        _set(s, "shared_only", 1, None, D(2020, 1, 1))
        _set(s, "own_only", 1, north, D(2020, 1, 1))
        with pytest.raises(engine.FormValidationError) as own:
            use_shared_parameter(s, north, "shared_only", valid_from=D(2021, 1, 1), actor="a")
        with pytest.raises(engine.FormValidationError) as shared:
            use_shared_parameter(s, north, "own_only", valid_from=D(2021, 1, 1), actor="a")
    assert list(own.value.errors) == ["key"] and "uses the shared one" in own.value.errors["key"][0]
    assert "no shared value" in shared.value.errors["key"][0]


def test_a_number_with_a_fraction_reaches_scripts_as_a_decimal(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    # Stored as JSON, 58 800.50 is a float; scripts and decisions get it as a form's amounts are.
    with session_factory.begin() as s:
        north = _org(s)
        _set(s, "base", 58800.50, north, D(2020, 1, 1))
        _set(s, "ladder", [{"up_to": 2.5}, {"up_to": 10}], north, D(2020, 1, 1))
    with session_factory() as s:
        values = current_parameters(s, north, D(2021, 1, 1))
    assert values["base"] == Decimal("58800.5") and isinstance(values["base"], Decimal)
    assert values["ladder"] == [{"up_to": Decimal("2.5")}, {"up_to": 10}]
    assert Decimal("117601.00") / values["base"] == 2


def test_organisation_settings_win_over_the_rows(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        north = _org(s)
        _set(s, "jurisdiction", "SE", north, D(2000, 1, 1))
        _set(s, "currency", "SEK", north, D(2000, 1, 1))
        engine.get_organisation(s, "north").country = "FI"
    with session_factory() as s:
        values = current_parameters(s, north)
        # The set setting wins; an unset one (currency) leaves the row's value.
        assert values["jurisdiction"] == "FI" and values["currency"] == "SEK"
        assert values["organisation_name"] == "North"


def test_seeding_twice_adds_no_row(session_factory: so.sessionmaker[so.Session], orgs: None) -> None:
    seed = engine.read_seed_file(PROCESSES / "demo.json")
    seed = {**seed, "users": []}
    with session_factory.begin() as s:
        engine.load_seed(s, seed)
    with session_factory() as s:
        count = s.scalar(sa.select(sa.func.count()).select_from(engine.Parameter))
        noted = s.scalar(
            sa.select(engine.Parameter).where(engine.Parameter.key == "documentation_threshold").limit(1)
        )
        assert noted is not None and noted.note and noted.created_by == "seed"
    with session_factory.begin() as s:
        engine.load_seed(s, seed)
    with session_factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.Parameter)) == count
    changed = json.loads(json.dumps(seed))
    changed["organisations"][0]["parameters"][0]["value"] = "changed@exempelby.demo.example"
    with session_factory.begin() as s:
        engine.load_seed(s, changed)
    with session_factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.Parameter)) == count + 1


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("money", "100 000,50", 100000.5),
        ("money", "2500", 2500),
        ("days", "30", 30),
        ("working_days", "0", 0),
        ("percentage", "12.5 %", 12.5),
        ("integer", "-3", -3),
        ("text", "  SE ", "SE"),
        ("list", '["a", "b"]', ["a", "b"]),
        ("object", '{"goods": 1}', {"goods": 1}),
        (None, '{"any": [1]}', {"any": [1]}),
    ],
)
def test_values_are_parsed_by_type(kind: str | None, text: str, value: object) -> None:
    assert parse_value(kind, text) == value


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("money", -1, "must be an amount of 0 or more"),
        ("money", 1.005, "must have at most 2 decimals"),
        ("money", "100", "must be a number"),
        ("money", True, "must be a number"),
        ("days", 1.5, "must be a whole number"),
        ("days", -1, "must be a whole number of days, 0 or more"),
        ("integer", 2.5, "must be a whole number"),
        ("percentage", 101, "must be a percentage from 0 to 100"),
        ("text", "", "must be a text"),
        ("list", {"a": 1}, 'must be a JSON list, such as ["a", "b"]'),
        ("object", [1], 'must be a JSON object, such as {"goods": 100}'),
    ],
)
def test_values_of_the_wrong_type_are_refused_naming_the_field(
    kind: str, value: object, message: str
) -> None:
    with pytest.raises(engine.FormValidationError) as refused:
        check_value(kind, value)
    assert refused.value.errors == {"value": [message]}


def test_not_json_where_json_is_needed() -> None:
    with pytest.raises(engine.FormValidationError) as refused:
        parse_value("list", "[1,")
    assert refused.value.errors == {"value": ["is not valid JSON"]}


def test_catalogue_lists_what_the_deployed_processes_read_and_declare(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement")
        north = _org(s)
        _set(s, "three_quotes_threshold", 10000, None, D(2020, 1, 1))
        _set(s, "three_quotes_threshold", 20000, north, D(2021, 1, 1))
        _set(s, "south_secret", 1, _org(s, "south"), D(2020, 1, 1))
        _set(s, "http_allowed_hosts", ["a.example"], north, D(2020, 1, 1))
    with session_factory() as s:
        entries = {e.key: e for e in parameter_catalogue(s, north)}
        quotes = entries["three_quotes_threshold"]
        assert (quotes.type, quotes.value, quotes.source) == ("money", 20000, "own")
        assert quotes.processes == ("direct_procurement",) and quotes.label_in("sv")
        assert quotes.label_in("sv") != quotes.label_in("en")
        assert entries["approval_ladder"].type == "list" and not entries["approval_ladder"].has_value
        # Keys the organisation has a value of are listed, read by a process or not.
        assert entries["http_allowed_hosts"].processes == () and entries["http_allowed_hosts"].type is None
        assert (
            entries["organisation_name"].source == "settings" and entries["organisation_name"].from_settings
        )
        assert "south_secret" not in entries
        with pytest.raises(engine.NotFoundError):
            parameter_entry(s, north, "south_secret")
        assert parameter_entry(s, _org(s, "south"), "three_quotes_threshold").value == 10000


def test_record_checks_the_declared_type_and_audits(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement")
        north = _org(s)
        _set(s, "three_quotes_threshold", 10000, None, D(2020, 1, 1))
        with pytest.raises(engine.FormValidationError) as refused:
            record_parameter_value(
                s, north, "three_quotes_threshold", -5, valid_from=D(2030, 1, 1), actor="x"
            )
        assert refused.value.errors == {"value": ["must be an amount of 0 or more"]}
        with pytest.raises(engine.FormValidationError) as dates:
            record_parameter_value(
                s,
                north,
                "three_quotes_threshold",
                5,
                valid_from=D(2030, 1, 1),
                valid_to=D(2029, 1, 1),
                actor="x",
            )
        assert list(dates.value.errors) == ["valid_to"]
        with pytest.raises(engine.FormValidationError) as settings:
            record_parameter_value(s, north, "jurisdiction", "SE", valid_from=D(2030, 1, 1), actor="x")
        assert list(settings.value.errors) == ["key"]
        row = record_parameter_value(
            s,
            north,
            "three_quotes_threshold",
            5000,
            valid_from=D(2030, 1, 1),
            note="Decision 12/2029",
            actor="anna",
        )
        assert (row.created_by, row.note, row.organisation_id) == ("anna", "Decision 12/2029", north)
    with session_factory() as s:
        (event,) = s.scalars(
            sa.select(engine.AuditEvent).where(engine.AuditEvent.kind == "admin.parameter_set")
        )
        assert event.element == "parameter three_quotes_threshold" and event.actor == "anna"
        assert event.detail["before"] == {
            "value": 10000,
            "valid_from": "2020-01-01",
            "valid_to": None,
            "shared": True,
        }
        assert event.detail["after"]["value"] == 5000 and event.detail["after"]["note"] == "Decision 12/2029"
        assert current_parameters(s, north, D(2030, 1, 1))["three_quotes_threshold"] == 5000
        assert current_parameters(s, north, D(2029, 12, 31))["three_quotes_threshold"] == 10000


def test_parameters_in_force_for_the_cli(session_factory: so.sessionmaker[so.Session], orgs: None) -> None:
    with session_factory.begin() as s:
        north = _org(s)
        _set(s, "limit", 100, None, D(2020, 1, 1))
        _set(s, "mine", 1, north, D(2020, 1, 1), D(2030, 1, 1))
    with session_factory() as s:
        listed = {p["key"]: p for p in parameters_in_force(s, north, D(2025, 1, 1))}
        assert listed["limit"] == {
            "key": "limit", "value": 100, "valid_from": "2020-01-01", "valid_to": None, "organisation": None
        }  # fmt: skip
        assert listed["mine"]["organisation"] == "north" and listed["mine"]["valid_to"] == "2030-01-01"
        assert listed["organisation_name"]["value"] == "North"
        assert [p["key"] for p in parameters_in_force(s, None, D(2025, 1, 1))] == ["limit"]


def test_every_shipped_parameters_file_declares_what_its_process_reads() -> None:
    for folder in sorted(p for p in PROCESSES.iterdir() if (p / f"{p.name}.bpmn").exists()):
        declared = check_parameters_file((folder / "parameters.json").read_text(encoding="utf-8"))
        read: set[str] = set()
        for path in [*folder.glob("*.bpmn"), *folder.glob("*.dmn")]:
            read |= engine.parameters.read_parameter_keys(path.read_text(encoding="utf-8"))
        assert set(declared) == read, folder.name
        for item in declared.values():
            assert set(item.label) == {"sv", "fi", "en"} and set(item.help) == {"sv", "fi", "en"}, item.key


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", 'must be an object with one key, "parameters"'),
        ('{"parameters": {"1x": {"type": "money", "label": {"en": "x"}}}}', "a key is a letter"),
        ('{"parameters": {"x": {"type": "euro", "label": {"en": "x"}}}}', "is not one of"),
        ('{"parameters": {"x": {"type": "money"}}}', "label must map language codes"),
        ('{"parameters": {"x": {"type": "money", "label": {"en": "x"}, "colour": 1}}}', "unknown setting"),
    ],
)
def test_a_bad_parameters_file_is_refused_at_deploy(tmp_path: Path, content: str, message: str) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for item in (PROCESSES / "customer_contact").rglob("*"):
        if item.is_file():
            target = bundle / item.relative_to(PROCESSES / "customer_contact")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.read_bytes())
    (bundle / "parameters.json").write_text(content, encoding="utf-8")
    with pytest.raises(engine.DeploymentError) as refused:
        engine._specs.parse_bundle(engine._specs.read_bundle(bundle))
    assert message in str(refused.value) and "parameters.json" in str(refused.value)
