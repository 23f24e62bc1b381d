"""The studio's decision table page: the dmn-js editor's mount, the checks at deploy, "try it"."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy.orm as so

import engine
from tests.conftest import PROCESSES
from tests.web.conftest import LoginAs

Factory = so.sessionmaker[so.Session]
PAGE = "/studio/direct_procurement/decisions/ApproverLevel.dmn"
TRY = PAGE + "/try"


@pytest.fixture
def direct(session_factory: Factory, users: None) -> None:
    """direct_procurement shared, and north's draft of it (south has none)."""
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement")
        north = engine.get_organisation(s, "north")
        engine.studio.open_draft(s, north.id, "direct_procurement", user="north-owner", customise=True)


def text(response: object) -> str:
    return html.unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


def try_values(**values: str) -> dict[str, str]:
    return {"decision": "ApproverLevel", **{f"input:{key}": value for key, value in values.items()}}


def test_the_page_mounts_the_editor_on_the_files_urls(login_as: LoginAs, direct: None) -> None:
    client = login_as("process_owner")
    response = client.get(PAGE)
    assert response.status_code == 200
    page = text(response)
    assert '<div id="dmn-editor"' in page
    assert 'data-file-url="/studio/direct_procurement/files/ApproverLevel.dmn"' in page
    assert 'data-save-url="/studio/direct_procurement/files/ApproverLevel.dmn"' in page
    assert "/static/vendor/studio/dmn-editor.js" in page and "/static/vendor/studio/dmn-editor.css" in page
    assert "/static/js/studio-decisions.js" in page
    assert "<script>" not in page  # the Content-Security-Policy allows no inline script


def test_the_page_lists_the_checks_at_deploy(login_as: LoginAs, direct: None) -> None:
    page = text(login_as("process_owner").get(PAGE))
    assert "no rule matches when Jurisdiction = 'SE' and Contract value in base amounts > 50" in page
    assert "no rule matches when Jurisdiction is none of 'FI', 'SE'" in page
    quotes = text(login_as("process_owner").get("/studio/direct_procurement/decisions/QuotesRequired.dmn"))
    assert "No overlapping rows and no gaps." in quotes


def test_the_try_form_has_one_field_per_input_labelled(login_as: LoginAs, direct: None) -> None:
    page = text(login_as("process_owner").get(PAGE))
    assert '<label for="try-ApproverLevel-ApproverLevel_in0">' in page
    assert re.search(r"Jurisdiction\s*<input id=\"try-ApproverLevel-ApproverLevel_in0\"", page)
    assert re.search(
        r"Contract value in base amounts\s*<input id=\"try-ApproverLevel-ApproverLevel_in1\"", page
    )
    assert "contract_value / parameters['approval_base_amount']" in page  # the expression as a hint
    assert f'hx-post="{TRY}"' in page


def test_trying_lists_the_matching_rows_and_the_outputs(login_as: LoginAs, direct: None) -> None:
    response = login_as("process_owner").post(
        TRY, data=try_values(ApproverLevel_in0="SE", ApproverLevel_in1="4")
    )
    assert response.status_code == 200
    fragment = text(response)
    assert "<html" not in fragment
    rows = re.findall(r'<tr class="(decision-row-matched[^"]*)" data-rule="([^"]+)"', fragment)
    assert rows == [
        ("decision-row-matched decision-row-used", "ApproverLevel_r1"),
        ("decision-row-matched", "ApproverLevel_r2"),
        ("decision-row-matched", "ApproverLevel_r3"),
    ]
    assert "Sweden: up to 5 price base amounts" in fragment
    assert re.search(
        r"<dt>Level <small><code>approver_level</code></small></dt>\s*<dd><code>area_head</code>", fragment
    )
    assert 'value="4"' in fragment and 'data-tried="true"' in fragment  # the values stay in the form


def test_no_matching_row_is_said(login_as: LoginAs, direct: None) -> None:
    fragment = text(
        login_as("process_owner").post(TRY, data=try_values(ApproverLevel_in0="NO", ApproverLevel_in1="1"))
    )
    assert "No row matches these values: the decision sets no outputs." in fragment


def test_a_bad_value_is_shown_beside_its_input(login_as: LoginAs, direct: None) -> None:
    fragment = text(
        login_as("process_owner").post(TRY, data=try_values(ApproverLevel_in0="SE", ApproverLevel_in1="four"))
    )
    field = re.search(
        r'<input id="try-ApproverLevel-ApproverLevel_in1"[^>]*>\s*'
        r'<small id="([^"]+)" class="field-error">([^<]+)<',
        fragment,
    )
    assert field is not None
    assert field.group(1) == "try-ApproverLevel-ApproverLevel_in1-error"
    assert field.group(2) == "Enter a number, such as 1 234,50."
    assert 'aria-invalid="true" aria-describedby="try-ApproverLevel-ApproverLevel_in1-error"' in fragment
    assert fragment.count('class="field-error"') == 2  # the field's message and the summary, nothing else
    assert "decision-row-matched" not in fragment


def test_labels_are_translated(login_as: LoginAs, direct: None) -> None:
    client = login_as("process_owner")
    client.post("/language", data={"lang": "sv", "next": PAGE})
    page = text(client.get(PAGE))
    assert "Prova" in page and "Kontroller vid driftsättning" in page
    client.post("/language", data={"lang": "fi", "next": PAGE})
    fragment = text(client.post(TRY, data=try_values(ApproverLevel_in0="SE", ApproverLevel_in1="x")))
    assert "Anna luku, esimerkiksi 1 234,50." in fragment


def test_trying_reads_the_saved_draft(session_factory: Factory, login_as: LoginAs, direct: None) -> None:
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north")
        draft = engine.studio.find_draft(s, north.id, "direct_procurement")
        assert draft is not None
        item = engine.studio.read_draft_file(s, draft, "ApproverLevel.dmn")
        changed = item.content.replace("'area_head'</text>", "'deputy_head'</text>", 1)
        engine.studio.save_draft_file(s, draft, item.name, changed, user="north-owner")
    fragment = text(
        login_as("process_owner").post(TRY, data=try_values(ApproverLevel_in0="SE", ApproverLevel_in1="4"))
    )
    assert "<dd><code>deputy_head</code>" in fragment


def test_an_evaluation_error_is_shown(session_factory: Factory, login_as: LoginAs, direct: None) -> None:
    with session_factory.begin() as s:
        draft = engine.studio.find_draft(s, engine.get_organisation(s, "north").id, "direct_procurement")
        assert draft is not None
        item = engine.studio.read_draft_file(s, draft, "ApproverLevel.dmn")
        broken = item.content.replace("&lt;= 3</text>", "[1..3]</text>", 1)
        engine.studio.save_draft_file(s, draft, item.name, broken, user="north-owner")
    client = login_as("process_owner")
    fragment = text(client.post(TRY, data=try_values(ApproverLevel_in0="SE", ApproverLevel_in1="2")))
    assert "The table could not be evaluated" in fragment and "row 1" in fragment
    assert "write 1 <= ? <= 3" in text(client.get(PAGE))  # and the check says how to write it


def test_the_findings_fragment(login_as: LoginAs, direct: None) -> None:
    fragment = text(login_as("process_owner").get(PAGE + "/findings"))
    assert fragment.lstrip().startswith('<section id="decision-findings"')
    assert "no rule matches when Jurisdiction = 'FI'" in fragment


def test_a_shared_process_without_a_draft_is_read_only(
    login_as: LoginAs, session_factory: Factory, users: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement")
    page = text(login_as("process_owner", "south").get(PAGE))
    assert 'data-read-only="true"' in page and "data-save-url" not in page
    assert "Customise" in page
    fragment = text(
        login_as("process_owner", "south").post(
            TRY, data=try_values(ApproverLevel_in0="FI", ApproverLevel_in1="1")
        )
    )
    assert 'data-rule="ApproverLevel_r4"' in fragment  # trying works on the version that runs


@pytest.mark.parametrize("role", ["case_handler", "requester", "approver", "auditor"])
def test_others_than_process_owners_and_admins_get_404(login_as: LoginAs, direct: None, role: str) -> None:
    client = login_as(role)
    assert client.get(PAGE).status_code == 404
    assert client.post(TRY, data=try_values(ApproverLevel_in0="SE", ApproverLevel_in1="1")).status_code == 404


def test_an_admin_may_use_it(login_as: LoginAs, direct: None) -> None:
    assert login_as("admin").get(PAGE).status_code == 200


def test_another_organisations_process_is_404(
    session_factory: Factory, login_as: LoginAs, users: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement", organisation="north")
    assert login_as("process_owner", "north").get(PAGE).status_code == 200
    client = login_as("process_owner", "south")
    assert client.get(PAGE).status_code == 404
    assert client.get(PAGE + "/findings").status_code == 404
    assert client.post(TRY, data=try_values(ApproverLevel_in0="SE", ApproverLevel_in1="1")).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/studio/direct_procurement/decisions/Nope.dmn",
        "/studio/direct_procurement/decisions/direct_procurement.bpmn",
        "/studio/no_such_process/decisions/ApproverLevel.dmn",
    ],
)
def test_unknown_files_are_404(login_as: LoginAs, direct: None, path: str) -> None:
    assert login_as("process_owner").get(path).status_code == 404


def test_an_unknown_decision_is_404(login_as: LoginAs, direct: None) -> None:
    assert login_as("process_owner").post(TRY, data={"decision": "Nope"}).status_code == 404


def test_anonymous_users_are_sent_to_sign_in(client: object, direct: None) -> None:
    response = client.get(PAGE)  # type: ignore[attr-defined]
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]
