"""The shipped direct procurement's forms in real Chromium: what an approver sees, Finnish, a malformed date.

The case is moved between the browser's steps through the engine with the
demo organisations, users and parameters (``processes/demo.json``); each step
the test is about is done in the browser as the user who would do it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy.orm as so
import time_machine
from playwright.sync_api import expect

import engine
from tests.conftest import PROCESSES
from tests.processes.test_direct_procurement import SUPPLIERS, _need, _quote
from tests.web.test_browser import sign_in

pytestmark = pytest.mark.slow

FORMS = PROCESSES / "direct_procurement" / "forms"


def fi_title(form: str, *path: str) -> str:
    """Return the Finnish title of a field of a shipped direct-procurement form."""
    node = json.loads((FORMS / f"{form}.schema.json").read_text(encoding="utf-8"))
    for name in path:
        node = node["properties"][name]
    title: str = node["x-translations"]["fi"]["title"]
    return title


@pytest.fixture
def demo(session_factory: so.sessionmaker[so.Session], password_hash: str, deployed: None) -> None:
    """The demo organisations and users (all with the test password) and the shipped direct procurement."""
    with session_factory.begin() as s:
        seed = engine.read_seed_file(PROCESSES / "demo.json")
        engine.load_seed(s, {**seed, "users": [{**u, "password": None} for u in seed["users"]]})
        for user in seed["users"]:
            engine.get_user(s, user["username"]).password_hash = password_hash
        engine.deploy_path(s, PROCESSES / "direct_procurement")


class Case:
    """One direct procurement of Exempelby kommun, stepped through the engine by its BPMN task ids."""

    def __init__(self, session_factory: so.sessionmaker[so.Session]) -> None:
        self.session_factory = session_factory
        with session_factory.begin() as s:
            self.id = engine.start_instance(
                s, "direct_procurement", organisation="exempelby", user="se-requester", title="Office chairs"
            ).id

    def open_tasks(self) -> list[engine.HumanTask]:
        with self.session_factory() as s:
            return list(engine.list_tasks(s, instance_id=self.id))

    def task(self, bpmn_id: str) -> engine.HumanTask:
        (task,) = [t for t in self.open_tasks() if t.bpmn_id == bpmn_id]
        return task

    def complete(self, bpmn_id: str, user: str, **data: Any) -> None:
        with self.session_factory.begin() as s:
            engine.complete_task(s, self.task(bpmn_id).id, user=user, data=data)

    def worker_of(self, bpmn_id: str) -> str:
        """Return a demo user who may do the open task *bpmn_id* (its group's, not excluded from it)."""
        task_id = self.task(bpmn_id).id
        with self.session_factory() as s:
            task = engine.get_task(s, task_id)
            for user in engine.read_seed_file(PROCESSES / "demo.json")["users"]:
                member = engine.get_user(s, user["username"])
                if task.candidate_group not in user.get("groups", []):
                    continue
                try:
                    engine.check_may_work_on(s, task, member)
                except engine.PermissionDeniedError:
                    continue
                return str(user["username"])
        raise AssertionError(f"no demo user may do {bpmn_id} (group {task.candidate_group})")

    def up_to_request_quotes(self) -> None:
        self.complete("describe_need", "se-requester", **_need("se", value_excl_vat=330000))
        self.complete("declare_conflict", "se-requester", has_conflict=False, details="")
        assert [t.bpmn_id for t in self.open_tasks()] == ["request_quotes"]

    def up_to_approval(self) -> None:
        self.up_to_request_quotes()
        self.complete(
            "request_quotes",
            "se-buyer",
            suppliers=SUPPLIERS,
            request_text="Please quote for 40 ergonomic chairs.",
            quotes_requested_on=dt.date.today().isoformat(),
            quote_deadline=(dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat(timespec="seconds"),
        )
        self.pass_the_quote_deadline()
        self.complete(
            "register_quotes",
            "se-buyer",
            quotes=[_quote(SUPPLIERS[0], 310000, 80), _quote(SUPPLIERS[1], 320000, 90)],
        )
        self.complete(
            "select_supplier",
            "se-buyer",
            winner_org_number="556000-0002",
            justification="Best score on ergonomics and service.",
        )
        assert [t.bpmn_id for t in self.open_tasks()] == ["approve"]

    def pass_the_quote_deadline(self) -> None:
        with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=8), tick=False):
            summary = engine.run_due_jobs(self.session_factory)
        assert summary.failed == 0
        assert [t.bpmn_id for t in self.open_tasks()] == ["register_quotes"]


@pytest.fixture
def case(session_factory: so.sessionmaker[so.Session], demo: None) -> Iterator[Case]:
    yield Case(session_factory)


def test_an_approver_sees_the_supplier_the_value_and_the_documentation_record(page: Any, case: Case) -> None:
    case.up_to_approval()
    approver = case.worker_of("approve")
    sign_in(page, approver)
    page.goto(f"/tasks/{case.task('approve').id}")
    expect(page.get_by_role("heading", name="Approve the purchase", level=1)).to_be_visible()
    winner = page.locator("#f-winner")
    expect(winner).to_be_visible()
    expect(winner.locator("#f-winner-supplier")).to_have_text("Kontorsmöbler AB")
    expect(winner.locator("#f-winner-org_number")).to_have_text("556000-0002")
    expect(winner).to_contain_text("Organisation number")
    expect(page.locator("#f-contract_value")).to_have_text(re.compile(r"320,000"))
    expect(page.locator("#f-justification")).to_have_text("Best score on ergonomics and service.")
    if page.locator('input[name="approver_has_conflict"]').count():
        page.locator('input[name="approver_has_conflict"][value="false"]').check()
    page.locator('input[name="approved"][value="true"]').check()
    page.get_by_role("button", name="Complete task").click()
    expect(page.get_by_text("Task “Approve the purchase” completed.")).to_be_visible()

    if any(t.bpmn_id == "quality_review" for t in case.open_tasks()):
        reviewer = case.worker_of("quality_review")
        case.complete(
            "quality_review", reviewer, quality_ok=True, quality_remarks="", reviewer_has_conflict=False
        )
    case.complete(
        "place_order",
        "se-buyer",
        order_number="PO-2026-0042",
        order_date=dt.date.today().isoformat(),
        delivery_or_contract_period="Delivery within 6 weeks",
    )
    archivist = case.worker_of("archive_documentation")
    if archivist != approver:
        page.locator("nav details.dropdown summary").click()
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, archivist)
    page.goto(f"/tasks/{case.task('archive_documentation').id}")
    record = page.locator("#f-documentation_record")
    expect(record).to_be_visible()
    expect(record.locator("#f-documentation_record-winner_name")).to_have_text("Kontorsmöbler AB")
    expect(record.locator("#f-documentation_record-winner_org_number")).to_have_text("556000-0002")
    expect(record.locator("#f-documentation_record-buyer_name")).to_have_text("Exempelby kommun")
    expect(record.locator("#f-documentation_record-estimated_value")).to_have_text("330,000")
    expect(record).to_contain_text("Stolfabriken AB")  # the suppliers asked, as a table
    expect(record.get_by_role("columnheader", name="Supplier").first).to_be_visible()
    page.get_by_label("The record is complete and correct").check()
    page.get_by_label("Archive reference (diary number)").fill("KS 2026/117")
    page.get_by_role("button", name="Complete task").click()
    expect(page.locator("hgroup .status")).to_have_text("Completed")


def test_the_approval_form_in_finnish(page: Any, case: Case) -> None:
    case.up_to_approval()
    sign_in(page, case.worker_of("approve"))
    page.goto(f"/tasks/{case.task('approve').id}")
    page.get_by_role("button", name="Suomi").click()
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page.get_by_text(fi_title("approve", "winner"), exact=True)).to_be_visible()
    expect(
        page.locator("#f-winner").get_by_text(fi_title("approve", "winner", "supplier"), exact=True)
    ).to_be_visible()
    expect(page.locator("#f-approved legend")).to_contain_text(fi_title("approve", "approved"))
    expect(page.locator("#f-approved")).to_contain_text("Kyllä")
    # Numbers are written the Finnish way.
    expect(page.locator("#f-contract_value")).to_have_text(re.compile(r"320\s000"))


def test_a_malformed_quote_deadline_is_a_field_error_with_everything_typed_kept(
    page: Any, case: Case
) -> None:
    case.up_to_request_quotes()
    sign_in(page, "se-buyer")
    page.goto(f"/tasks/{case.task('request_quotes').id}")
    deadline = page.locator("#f-quote_deadline")
    expect(deadline).to_have_attribute("type", "datetime-local")
    expect(page.locator("#f-quote_deadline-format")).to_contain_text("YYYY-MM-DD HH:MM, Europe/Stockholm")
    expect(page.locator("#f-suppliers tbody tr")).to_have_count(1)  # as many empty rows as minItems asks
    page.get_by_label("Supplier (row 1)").fill("Stolfabriken AB")
    page.get_by_label("Organisation number (row 1)").fill("556000-0001")
    page.get_by_label("E-mail (row 1)").fill("offert@stolfabriken.example")
    page.get_by_label("Request for quotation").fill("Please quote for 40 ergonomic chairs.")
    page.get_by_label("Sent on").fill(dt.date.today().isoformat())
    # A browser without a date-time picker (or a pasted value) sends what was typed.
    deadline.evaluate("input => { input.type = 'text'; }")
    deadline.fill("1 Dec 2026 10:00")
    page.get_by_role("button", name="Complete task").click()

    expect(page.locator("#f-quote_deadline-error")).to_have_text("Enter a date and time as YYYY-MM-DD HH:MM.")
    expect(page.locator("#f-quote_deadline")).to_have_value("1 Dec 2026 10:00")
    expect(page.get_by_label("Supplier (row 1)")).to_have_value("Stolfabriken AB")
    expect(page.get_by_label("Organisation number (row 1)")).to_have_value("556000-0001")
    expect(page.get_by_label("E-mail (row 1)")).to_have_value("offert@stolfabriken.example")
    expect(page.get_by_label("Request for quotation")).to_have_value("Please quote for 40 ergonomic chairs.")
    expect(page.get_by_label("Sent on")).to_have_value(dt.date.today().isoformat())

    # A deadline that has passed is refused too, beside the field.
    page.locator("#f-quote_deadline").fill("2020-01-01 10:00")
    page.get_by_role("button", name="Complete task").click()
    expect(page.locator("#f-quote_deadline-error")).to_have_text("Must not be in the past.")

    later = (dt.datetime.now() + dt.timedelta(days=7)).strftime("%Y-%m-%dT10:00")
    page.locator("#f-quote_deadline").fill(later)
    page.get_by_role("button", name="Complete task").click()
    expect(page.get_by_text("Task “Request quotes” completed.")).to_be_visible()
    with case.session_factory() as s:
        data = engine.instance_data(s, s.get(engine.ProcessInstance, case.id))
    stockholm = dt.datetime.fromisoformat(data["quote_deadline"])
    assert stockholm.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))
    assert stockholm.strftime("%Y-%m-%dT%H:%M") == later
