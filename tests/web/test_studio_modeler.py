"""In Chromium, as a process owner: the studio's BPMN modeler (palette, properties panel for Procflow's
SpiffWorkflow extensions, problems pinned on elements, the deploy dialog's diff) under the CSP."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
from lxml import etree
from playwright.sync_api import expect

import engine
from tests.web.test_browser import sign_in

pytestmark = pytest.mark.slow

PROCESSES = Path(__file__).resolve().parents[2] / "processes"
SHOTS = Path("/tmp/shots/b")
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
BPMN_FILE = "direct_procurement.bpmn"


@pytest.fixture
def procurement(session_factory: so.sessionmaker[so.Session], deployed: None) -> None:
    """direct_procurement deployed for the north organisation, and the approvers' group with display names."""
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement", organisation="north")
        engine.seed.set_group(
            s,
            engine.get_organisation(s, "north").id,
            "approvers",
            name="Approvers",
            names={"sv": "Godkännare", "fi": "Hyväksyjät"},
        )


def open_modeler(page: Any, process_id: str = "direct_procurement") -> None:
    sign_in(page, "north-owner")
    page.goto(f"/studio/{process_id}")
    expect(page.locator("#studio-modeler[data-ready=true]")).to_be_attached(timeout=20_000)


def select(page: Any, element_id: str) -> None:
    page.evaluate(
        """(id) => {
          const modeler = window.procflowModeler;
          const element = modeler.get("elementRegistry").get(id);
          modeler.get("selection").select(element);
          modeler.get("canvas").scrollToElement(element);
        }""",
        element_id,
    )


def saved_xml(page: Any) -> etree._Element:
    """Save through the toolbar and read the draft's BPMN file back from the server."""
    page.locator('[data-action="save"]').click()
    expect(page.locator("[data-status]")).to_have_text("Saved")
    text = page.evaluate(
        "(url) => fetch(url, {credentials: 'same-origin'}).then((r) => r.text())",
        f"/studio/direct_procurement/files/{BPMN_FILE}",
    )
    return etree.fromstring(text.encode("utf-8"))


def group(page: Any, group_id: str) -> Any:
    """The properties panel's group, opened."""
    header = page.locator(f'[data-group-id="group-{group_id}"] .bio-properties-panel-group-header')
    if "open" not in (header.get_attribute("class") or ""):
        header.click()
    return page.locator(f'[data-group-id="group-{group_id}"]')


def test_the_modeler_holds_the_palette_and_the_properties_panel_under_the_csp(
    page: Any, procurement: None
) -> None:
    open_modeler(page)
    expect(page.locator(".djs-palette")).to_be_visible()
    expect(page.locator(".bio-properties-panel")).to_be_visible()
    expect(page.locator('[data-element-id="describe_need"]')).to_be_attached()
    # The file list links forms and decision tables to their editors.
    expect(page.locator('a[href="/studio/direct_procurement/decisions/ApproverLevel.dmn"]')).to_be_attached()
    expect(page.locator("[data-files] a[href*='/forms/']").first).to_be_attached()
    select(page, "describe_need")
    expect(page.locator('[data-group-id="group-procflow-form"]')).to_be_visible()
    expect(page.locator('[data-link="new-form"]')).to_have_attribute(
        "href", "/studio/direct_procurement/forms/new?task=describe_need"
    )


def test_setting_a_form_and_a_candidate_group_writes_spiffworkflow_properties(
    page: Any, procurement: None
) -> None:
    open_modeler(page)
    select(page, "approve")
    form = group(page, "procflow-form")
    form.locator("select[name=formJsonSchemaFilename]").select_option("describe_need.schema.json")
    who = group(page, "procflow-assignment")
    options = who.locator("select[name=candidateGroup] option")
    expect(options.filter(has_text="Approvers (approvers)")).to_have_count(1)
    who.locator("select[name=candidateGroup]").select_option("approvers")
    who.locator("input[name=excludeStarter]").check()
    due = who.locator("input[name=dueIn]")
    due.fill("'P2D'")
    due.press("Tab")
    root = saved_xml(page)
    (task,) = root.xpath("//bpmn:userTask[@id='approve']", namespaces=NS)
    properties = task.xpath(
        "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", namespaces=NS
    )
    values = {p.get("name"): p.get("value") for p in properties}
    assert values["formJsonSchemaFilename"] == "describe_need.schema.json"
    assert values["candidateGroup"] == "approvers"
    assert values["excludeStarter"] == "true"
    assert values["dueIn"] == "'P2D'"
    # One properties container, as spiff-arena writes it.
    assert len(task.xpath("bpmn:extensionElements/spiffworkflow:properties", namespaces=NS)) == 1
    # Multi-instance collections named by variable survive the round trip through bpmn-js.
    (loop,) = root.xpath(
        "//bpmn:userTask[@id='declare_conflict']/bpmn:multiInstanceLoopCharacteristics", namespaces=NS
    )
    assert loop.findtext("bpmn:loopDataInputRef", namespaces=NS) == "coi_pending"
    assert loop.get(f"{{{NS['spiffworkflow']}}}scriptsOnInstances") == "true"


def test_a_script_edit_writes_bpmn_script(page: Any, procurement: None) -> None:
    open_modeler(page)
    select(page, "check_conflicts")
    scripts = group(page, "procflow-scripts")
    editor = scripts.locator('[data-entry-id="script"] .cm-content')
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nchecked = True")
    page.locator(".studio-head h1").click()  # blur: the editor writes at once
    root = saved_xml(page)
    script = root.xpath("//bpmn:scriptTask[@id='check_conflicts']/bpmn:script", namespaces=NS)[0].text
    assert script.startswith("coi_declarations = coi_declarations + coi_results")
    assert script.rstrip().endswith("checked = True")


def test_validate_pins_a_problem_on_its_element(page: Any, procurement: None) -> None:
    open_modeler(page)
    select(page, "select_procedure")
    decision = group(page, "procflow-decision").locator("select[name=calledDecisionId]")
    expect(decision).to_have_value("ProcedureSelection")
    # A decision id the bundle does not have: deploy would refuse it.
    page.evaluate(
        """() => {
          const modeler = window.procflowModeler;
          const element = modeler.get("elementRegistry").get("select_procedure");
          const ext = element.businessObject.extensionElements.values.find(
            (v) => v.$type === "spiffworkflow:calledDecisionId",
          );
          modeler.get("modeling").updateModdleProperties(element, ext, { value: "NoSuchDecision" });
        }"""
    )
    page.locator('[data-action="validate"]').click()
    expect(page.locator("[data-problem-list] li").first).to_be_visible(timeout=20_000)
    pinned = page.locator('.djs-element.studio-problem-error[data-element-id="select_procedure"]')
    expect(pinned).to_be_attached()
    expect(page.locator('.studio-problem-badge[data-problem-for="select_procedure"]')).to_be_visible()
    # Clicking the problem selects its element.
    page.locator('[data-problem-list] a[data-problem-element="select_procedure"]').first.click()
    expect(page.locator('.djs-element.selected[data-element-id="select_procedure"]')).to_be_attached()


def test_the_deploy_dialog_lists_the_changed_elements(page: Any, procurement: None, start: Any) -> None:
    start("direct_procurement")
    open_modeler(page)
    page.evaluate(
        """() => {
          const modeler = window.procflowModeler;
          const element = modeler.get("elementRegistry").get("describe_need");
          modeler.get("modeling").updateProperties(element, { name: "Describe what is needed" });
        }"""
    )
    page.locator('[data-action="deploy"]').click()
    dialog = page.locator("[data-deploy-dialog]")
    expect(dialog).to_be_visible(timeout=20_000)
    changed = dialog.locator('[data-changes="changed"] li')
    expect(changed).to_have_count(1)
    expect(changed).to_have_text("Describe what is needed (UserTask describe_need): name")
    expect(dialog.locator('[data-staying="1"]')).to_have_text("Running instances that stay on version 1: 1")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "deploy-dialog.png"))
    dialog.locator('[data-action="deploy-confirm"]').click()
    expect(page.locator("[data-status]")).to_have_text(re.compile(r"Deployed version \d+"), timeout=20_000)


@pytest.mark.parametrize("language", ["English", "Svenska", "Suomi"])
def test_screenshots_of_the_modeler_with_a_user_task_selected(
    page: Any, procurement: None, language: str
) -> None:
    open_modeler(page)
    if language != "English":
        page.get_by_role("button", name=language).click()
        expect(page.locator("#studio-modeler[data-ready=true]")).to_be_attached(timeout=20_000)
    select(page, "approve")
    group(page, "procflow-assignment")
    expect(page.locator('[data-group-id="group-procflow-form"]')).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"modeler-{language.lower()}.png"), full_page=True)


def test_the_panel_context_names_groups_connectors_forms_decisions_and_processes(
    login_as: Any, procurement: None
) -> None:
    client = login_as("process_owner")
    context = client.get("/studio/direct_procurement/modeler/context").get_json()
    assert {"key": "approvers", "name": "Approvers"} in context["groups"]
    email = next(c for c in context["connectors"] if c["name"] == "email.send")
    assert [(p["id"], p["type"], p["required"]) for p in email["parameters"]] == [
        ("to", "str", True),
        ("subject", "str", True),
        ("body", "str", False),
    ]
    assert {"value": "describe_need.schema.json", "path": "forms/describe_need.schema.json"} in context[
        "forms"
    ]
    assert {"id": "ProcedureSelection", "file": "ProcedureSelection.dmn"} in [
        {"id": d["id"], "file": d["file"]} for d in context["decisions"]
    ]
    assert "direct_procurement" in [p["id"] for p in context["processes"]]
    # Another organisation's own process is not in its studio.
    assert (
        login_as("process_owner", "south").get("/studio/direct_procurement/modeler/context").status_code
        == 404
    )


def test_a_shared_process_opens_read_only_until_customised(page: Any, procurement: None) -> None:
    open_modeler(page, "web_purchase")
    expect(page.locator("[data-customise]")).to_be_visible()
    expect(page.locator('[data-action="deploy"]')).to_be_disabled()
    page.evaluate(
        """() => {
          const modeler = window.procflowModeler;
          const element = modeler.get("elementRegistry").filter((e) => e.type === "bpmn:UserTask")[0];
          modeler.get("modeling").updateProperties(element, { name: "Changed" });
        }"""
    )
    expect(page.locator('[data-action="save"]')).to_be_disabled()
    page.locator("[data-customise] button").click()
    expect(page.locator("#studio-modeler[data-ready=true]")).to_be_attached(timeout=20_000)
    expect(page.locator("[data-customise]")).to_have_count(0)
    expect(page.locator('[data-action="deploy"]')).to_be_enabled()


def replace_code(page: Any, editor: Any, text: str) -> None:
    """Replace the text of a CodeMirror entry and leave it (it writes on blur)."""
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    page.locator(".studio-head h1").click()


def test_connector_condition_payload_and_correlation_write_spiff_xml(page: Any, procurement: None) -> None:
    open_modeler(page)
    select(page, "notify_stopped")
    connector = group(page, "procflow-connector")
    connector.locator("select[name=serviceTaskOperator]").select_option("reporting.sum")
    expect(connector.locator("input[name=parameter-0]")).to_be_visible()
    connector.locator("input[name=parameter-0]").fill("'direct_procurement'")
    connector.locator("input[name=parameter-0]").press("Tab")
    # The panel writes a text field after a pause in typing: wait for it before selecting elsewhere.
    page.wait_for_function(
        """() => window.procflowModeler.get("elementRegistry").get("notify_stopped").businessObject
          .extensionElements.values.some((v) => v.id === "reporting.sum"
            && v.parameterList.parameters[0].value === "'direct_procurement'")"""
    )
    select(page, "f_stop")
    condition = group(page, "procflow-condition").locator('[data-entry-id="conditionExpression"] .cm-content')
    expect(condition).to_have_text("procedure != 'direct'")
    replace_code(page, condition, "procedure not in ('direct', 'small')")
    page.wait_for_function(
        """() => window.procflowModeler.get("elementRegistry").get("f_stop").businessObject
          .conditionExpression.body === "procedure not in ('direct', 'small')" """
    )
    select(page, "report_goal_task")
    # The panel may still be settling on the flow (a debounced write): select again until it shows the task.
    for _ in range(3):
        if page.locator('[data-group-id="group-procflow-message"]').count():
            break
        page.wait_for_timeout(1000)
        select(page, "report_goal_task")
    message = group(page, "procflow-message")
    replace_code(
        page, message.locator('[data-entry-id="messagePayload"] .cm-content'), "{'goal_plan_ref': ref}"
    )
    message.locator("input[name=correlation-new]").fill("goal_plan_ref")
    message.locator("input[name=correlation-new]").press("Enter")
    page.wait_for_function(
        """() => window.procflowModeler.getDefinitions().rootElements.some((r) => r.id === "goal_plan_ref")"""
    )
    root = saved_xml(page)

    (operator,) = root.xpath(
        "//bpmn:serviceTask[@id='notify_stopped']/bpmn:extensionElements/spiffworkflow:serviceTaskOperator",
        namespaces=NS,
    )
    assert operator.get("id") == "reporting.sum"
    assert operator.get("resultVariable") == "stop_notification"  # kept from the earlier connector
    parameters = operator.xpath("spiffworkflow:parameters/spiffworkflow:parameter", namespaces=NS)
    assert [(p.get("id"), p.get("type"), p.get("value")) for p in parameters] == [
        ("process_id", "str", "'direct_procurement'"),
        ("where", "any", ""),
        ("field", "str", ""),
    ]
    (flow,) = root.xpath("//bpmn:sequenceFlow[@id='f_stop']/bpmn:conditionExpression", namespaces=NS)
    assert flow.text == "procedure not in ('direct', 'small')"
    assert flow.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "bpmn:tFormalExpression"
    payload = root.xpath(
        "//bpmn:sendTask[@id='report_goal_task']/bpmn:extensionElements/spiffworkflow:messagePayload",
        namespaces=NS,
    )
    assert [p.text for p in payload] == ["{'goal_plan_ref': ref}"]
    (expression,) = root.xpath(
        "/bpmn:definitions/bpmn:correlationProperty[@id='goal_plan_ref']"
        "/bpmn:correlationPropertyRetrievalExpression[@messageRef='msg_goal_task_completed']",
        namespaces=NS,
    )
    assert expression.findtext("bpmn:formalExpression", namespaces=NS) == "goal_plan_ref"
