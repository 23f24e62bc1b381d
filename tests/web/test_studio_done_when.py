"""Issue 11's acceptance, in Chromium: a process owner changes direct_procurement in the studio (a new
user task with a new form in three languages, an error pinned to its element and fixed, deploy), and a
requester's new case reaches that task with its form; a changed decision table row changes a decision
in a new case; a broken model is refused with its element highlighted; a spiff-arena model folder
uploaded as a zip deploys and runs; the studio of another organisation is 404.

Between the studio and the requester every cache of parsed specs is emptied, so the requester's case
runs on what the database holds, as another web process would.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from playwright.sync_api import expect

import engine
from engine._specs import SPEC_CACHE
from tests.conftest import FIXTURES, PROCESSES
from tests.engine.test_spiff_arena_compat import PROCESS_ID, registry  # noqa: F401  (registry: a fixture)
from tests.web.test_browser import sign_in, sign_out
from tests.web.test_studio_modeler import group, open_modeler, select

pytestmark = pytest.mark.slow

SHOTS = Path("/tmp/shots/lead")


@pytest.fixture
def own_procurement(session_factory: so.sessionmaker[so.Session], deployed: None) -> None:
    """North's own version of the shipped direct procurement (version 1)."""
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement", organisation="north")


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")


def _insert_task_on_flow(page: Any, flow_id: str) -> str:
    """Drag a task from the palette onto the sequence flow *flow_id* (bpmn-js splits the flow); its id."""
    page.locator('.djs-palette [data-action="create.task"]').click()
    box = page.locator(f'.djs-connection[data-element-id="{flow_id}"]').bounding_box()
    assert box is not None, f"flow {flow_id} is not drawn"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 20, y - 20)
    page.mouse.move(x, y, steps=5)
    page.mouse.click(x, y)
    created = page.evaluate("() => window.procflowModeler.get('selection').get().map((e) => e.id)")
    assert len(created) == 1, created
    return str(created[0])


def _make_user_task(page: Any, element_id: str) -> str:
    """Replace the task with a user task through the context pad's wrench; the new element's id."""
    select(page, element_id)
    page.locator('.djs-context-pad [data-action="replace"]').click()
    page.locator('.djs-popup [data-id="replace-with-user-task"]').click()
    return str(page.evaluate("() => window.procflowModeler.get('selection').get()[0].id"))


def _incoming_and_outgoing(page: Any, element_id: str) -> list[str]:
    return list(
        page.evaluate(
            """(id) => {
              const bo = window.procflowModeler.get("elementRegistry").get(id).businessObject;
              return [...bo.incoming.map((f) => f.sourceRef.id), ...bo.outgoing.map((f) => f.targetRef.id)];
            }""",
            element_id,
        )
    )


def _back_to_modeler(page: Any, process_id: str = "direct_procurement") -> None:
    page.goto(f"/studio/{process_id}")
    expect(page.locator("#studio-modeler[data-ready=true]")).to_be_attached(timeout=20_000)


def _save(page: Any) -> None:
    page.locator('[data-action="save"]').click()
    expect(page.locator("[data-status]")).to_have_text("Saved", timeout=20_000)


def test_a_process_owner_adds_a_user_task_with_a_form_and_a_requesters_new_case_reaches_it(
    page: Any, own_procurement: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    open_modeler(page)
    task = _make_user_task(page, _insert_task_on_flow(page, "f_start"))
    assert _incoming_and_outgoing(page, task) == ["start", "describe_need"], "the task is not on the flow"
    general = group(page, "general")
    name = general.locator("#bio-properties-panel-name")
    name.fill("Confirm the budget")
    name.press("Tab")
    # An error the deploy refuses: a due date 500 years ahead.
    due = group(page, "procflow-assignment").locator("input[name=dueIn]")
    due.fill("P500Y")
    due.press("Tab")
    _save(page)

    # The task's form, made in the form editor: one field, labelled in three languages.
    group(page, "procflow-form").locator('[data-link="new-form"]').click()
    page.get_by_label("File name").fill("confirm_budget")
    page.get_by_role("button", name="Make the form").click()
    expect(page.get_by_role("heading", name="Form editor", level=1)).to_be_visible()
    page.get_by_role("button", name="Add field", exact=True).click()
    field = page.locator("#editor-form > article.form-field").last
    field.get_by_label("Key").fill("budget_line")
    field.get_by_label("Label (English)").fill("Budget line")
    field.get_by_label("Label (Svenska)").fill("Budgetrad")
    field.get_by_label("Label (Suomi)").fill("Budjettirivi")
    page.locator("#preview-language").get_by_label("Svenska").check()
    expect(page.locator("#form-preview").get_by_label("Budgetrad")).to_be_visible()
    page.locator(".form-studio-actions").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Form saved in the draft.")).to_be_visible()

    # Back in the modeler: validate pins the error on the new task; fix it; validate again.
    _back_to_modeler(page)
    page.locator('[data-action="validate"]').click()
    expect(page.locator("[data-problem-list] li").first).to_contain_text(
        "longer than the limit of 100 years", timeout=20_000
    )
    expect(page.locator(f'.djs-element.studio-problem-error[data-element-id="{task}"]')).to_be_attached()
    _shot(page, "done-when-error-pinned")
    select(page, task)
    form = group(page, "procflow-form").locator("select[name=formJsonSchemaFilename]")
    expect(form).to_have_value("confirm_budget.schema.json")
    due = group(page, "procflow-assignment").locator("input[name=dueIn]")
    due.fill("P2D")
    due.press("Tab")
    _save(page)
    page.locator('[data-action="validate"]').click()
    expect(page.locator(f'.djs-element.studio-problem-error[data-element-id="{task}"]')).to_have_count(
        0, timeout=20_000
    )

    page.locator('[data-action="deploy"]').click()
    dialog = page.locator("[data-deploy-dialog]")
    expect(dialog.locator('[data-changes="added"]')).to_contain_text("Confirm the budget", timeout=20_000)
    dialog.locator('[data-action="deploy-confirm"]').click()
    expect(page.locator("[data-status]")).to_have_text(re.compile(r"Deployed version 2"), timeout=20_000)

    # The requester's new case, on what the database holds.
    SPEC_CACHE.clear()
    sign_out(page)
    sign_in(page, "north-req")
    page.goto("/processes/")
    card = page.locator("#process-direct_procurement")
    expect(card).to_contain_text("Version 2")
    card.get_by_label("Title (optional)").fill("Budget check")
    card.get_by_role("button", name="Start").click()
    page.goto("/")
    page.get_by_role("link", name="Confirm the budget").first.click()
    expect(page.get_by_label("Budget line")).to_be_visible()
    page.get_by_role("button", name="Svenska").click()
    expect(page.get_by_label("Budgetrad")).to_be_visible()
    _shot(page, "done-when-requester-task-sv")
    with session_factory() as s:
        versions = s.scalars(
            sa.select(engine.ProcessDefinition.version)
            .join(engine.ProcessInstance, engine.ProcessInstance.definition_id == engine.ProcessDefinition.id)
            .where(engine.ProcessInstance.process_id == "direct_procurement")
        ).all()
    assert versions == [2]


def _start_decision_case(session_factory: so.sessionmaker[so.Session]) -> Any:
    """Start a case of the decision fixture for north with a value over the limit; its chosen procedure."""
    SPEC_CACHE.clear()
    with session_factory.begin() as s:
        instance = engine.start_instance(
            s, "decision", organisation="north", user="north-req", data={"value": 9000}
        )
        instance_id = instance.id
    with session_factory() as s:
        return engine.instance_data(s, engine.get_instance(s, instance_id)).get("procedure")


def test_a_decision_row_changed_in_the_editor_changes_the_decision_of_a_new_case(
    page: Any, session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "decision", organisation="north")
        north = engine.get_organisation(s, "north")
        engine.set_parameter(
            s, "direct_limit", 1000, organisation_id=north.id, valid_from=dt.date(2000, 1, 1)
        )
    assert _start_decision_case(session_factory) == "advertised"

    sign_in(page, "north-owner")
    page.goto("/studio/decision/decisions/ProcedureChoice.dmn")
    cell = page.locator('#dmn-editor td[data-element-id="o2"]')
    cell.locator("[contenteditable]:visible").click()
    page.keyboard.press("Control+A")
    page.keyboard.type("'open'")
    expect(cell).to_contain_text("'open'")
    page.locator("#dmn-editor [data-dmn-save]").click()
    expect(page.locator("#dmn-editor [data-dmn-status]")).to_have_attribute("data-kind", "ok")

    _back_to_modeler(page, "decision")
    page.locator('[data-action="deploy"]').click()
    dialog = page.locator("[data-deploy-dialog]")
    expect(dialog).to_be_visible(timeout=20_000)
    dialog.locator('[data-action="deploy-confirm"]').click()
    expect(page.locator("[data-status]")).to_have_text(re.compile(r"Deployed version 2"), timeout=20_000)
    assert _start_decision_case(session_factory) == "open"


def test_a_broken_model_is_refused_with_its_element_highlighted(
    page: Any, own_procurement: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    open_modeler(page)
    # A condition that is not Python on the first conditional flow: the deploy must refuse it.
    broken = page.evaluate(
        """() => {
          const modeler = window.procflowModeler;
          const flow = modeler.get("elementRegistry").filter((e) => e.businessObject.conditionExpression)[0];
          const expression = modeler.get("moddle").create("bpmn:FormalExpression", { body: "amount >" });
          modeler.get("modeling").updateProperties(flow, { conditionExpression: expression });
          return flow.id;
        }"""
    )
    page.locator('[data-action="deploy"]').click()
    dialog = page.locator("[data-deploy-dialog]")
    expect(dialog).to_be_visible(timeout=20_000)
    dialog.locator('[data-action="deploy-confirm"]').click()
    problem = page.locator("[data-problem-list] li").first
    expect(problem).to_be_visible(timeout=20_000)
    expect(page.locator(f'.djs-element.studio-problem-error[data-element-id="{broken}"]')).to_be_attached()
    expect(problem).to_contain_text("the sandbox refuses this condition")
    _shot(page, "done-when-broken-refused")
    with session_factory() as s:
        versions = s.scalars(
            sa.select(engine.ProcessDefinition.version).where(
                engine.ProcessDefinition.process_id == "direct_procurement",
                engine.ProcessDefinition.organisation_id.is_not(None),
            )
        ).all()
    assert versions == [1], "the broken model was deployed"


def test_a_spiff_arena_model_folder_uploaded_as_a_zip_deploys_and_runs(
    page: Any,
    session_factory: so.sessionmaker[so.Session],
    deployed: None,
    registry: str,  # noqa: F811  (the fixture imported above)
) -> None:
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north")
        engine.set_parameter(
            s, "http_allowed_hosts", [registry], organisation_id=north.id, valid_from=dt.date(2020, 1, 1)
        )
    folder = FIXTURES / "spiff_arena" / "vendor-check"
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"vendor-check/{path.relative_to(folder).as_posix()}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    upload = SHOTS / "vendor-check.zip"
    upload.write_bytes(data.getvalue())

    sign_in(page, "north-owner")
    page.goto("/studio/")
    page.locator("input[type=file]:not([webkitdirectory])").set_input_files(str(upload))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#studio-modeler[data-ready=true]")).to_be_attached(timeout=20_000)
    page.locator('[data-action="validate"]').click()
    # The leftover of an older modeler is a warning, pinned on its element, not a refusal.
    expect(page.locator("[data-problem-list] li").first).to_contain_text("[object Object]", timeout=20_000)
    page.locator('[data-action="deploy"]').click()
    page.locator("[data-deploy-dialog] [data-action='deploy-confirm']").click()
    expect(page.locator("[data-status]")).to_have_text(re.compile(r"Deployed version 1"), timeout=20_000)

    SPEC_CACHE.clear()
    with session_factory.begin() as s:
        instance_id = engine.start_instance(
            s, PROCESS_ID, organisation="north", user="north-req", data={"registry_url": registry}
        ).id
    for user, data_in in (
        ("north-req", {"vendor_id": "556677-8899", "vendor_name": "Acme AB"}),
        ("north-boss", {"approved": True}),
    ):
        SPEC_CACHE.clear()
        with session_factory.begin() as s:
            (task,) = engine.list_tasks(s, instance_id=instance_id)
            engine.complete_task(s, task.id, user=user, data=data_in)
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.status == "completed", instance.error_message
        assert engine.instance_data(s, instance)["vendor_status"] == "active"


def test_the_studio_of_another_organisation_is_not_found(
    page: Any, session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement", organisation="south")
    for username in ("north-owner", "north-admin", "north-handler", "north-req"):
        sign_in(page, username)
        for path in (
            "/studio/direct_procurement",
            "/studio/direct_procurement/files",
            "/studio/direct_procurement/forms/forms/approve.schema.json",
            "/studio/direct_procurement/decisions/ApproverLevel.dmn",
            "/studio/direct_procurement/versions",
        ):
            response = page.request.get(path)
            assert response.status == 404, f"{username} got {response.status} for {path}"
        sign_out(page)
    sign_in(page, "north-handler")
    assert page.request.get("/studio/").status == 404
