"""Done when (Chromium, as admin): a waiting direct procurement moves to the organisation's version 2
after a dry run, then continues on version 2 restored from the database; a case that cannot move is
refused with its reason and left untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from playwright.sync_api import expect

import engine
from tests.processes.test_direct_procurement import _need
from tests.web.test_browser import sign_in

pytestmark = pytest.mark.slow

PROCUREMENT = Path(__file__).resolve().parents[2] / "processes" / "direct_procurement"
SHOTS = Path("/tmp/shots/d")


def _version_2(tmp_path: Path) -> Path:
    """A changed copy: the quote request step renamed, and the need form asks for a budget code."""
    folder = tmp_path / "v2" / "direct_procurement"
    shutil.copytree(PROCUREMENT, folder)
    bpmn = folder / "direct_procurement.bpmn"
    bpmn.write_text(bpmn.read_text().replace('name="Request quotes"', 'name="Request quotes (v2)"'))
    names = json.loads((folder / "names.json").read_text())
    names["request_quotes"] = {"sv": "Begär in offerter (v2)", "fi": "Pyydä tarjoukset (v2)"}
    (folder / "names.json").write_text(json.dumps(names, ensure_ascii=False))
    form = folder / "forms" / "describe_need.schema.json"
    schema = json.loads(form.read_text())
    schema["required"].append("budget_code")
    schema["properties"]["budget_code"] = {"type": "string", "title": "Budget code"}
    form.write_text(json.dumps(schema, ensure_ascii=False))
    return folder


@pytest.fixture
def procurements(
    session_factory: so.sessionmaker[so.Session], password_hash: str, tmp_path: Path
) -> dict[str, int]:
    """The demo organisations; Exempelby's own direct procurement v1 with two cases, and its v2."""
    with session_factory.begin() as s:
        seed = engine.read_seed_file(PROCESSES_DEMO)
        engine.load_seed(s, {**seed, "users": [{**u, "password": None} for u in seed["users"]]})
        for name in ("se-admin", "se-requester"):
            engine.get_user(s, name).password_hash = password_hash
        for folder in sorted(PROCUREMENT.parent.iterdir()):
            if (folder / f"{folder.name}.bpmn").exists():
                engine.deploy_path(s, folder)  # shared, as the demo runs them
        engine.deploy_path(s, PROCUREMENT, organisation="exempelby")
        describing = engine.start_instance(
            s, "direct_procurement", organisation="exempelby", user="se-requester"
        ).id
        declaring = engine.start_instance(
            s, "direct_procurement", organisation="exempelby", user="se-requester"
        ).id
    with session_factory.begin() as s:
        (task,) = engine.list_tasks(s, instance_id=declaring)
        data = engine.load_json(json.dumps(_need("se", value_excl_vat=330000)))
        engine.complete_task(s, task.id, user="se-requester", data=data)
    with session_factory.begin() as s:
        (deployed,) = engine.deploy_path(s, _version_2(tmp_path), organisation="exempelby")
        assert deployed.version == 2
    return {"describing": describing, "declaring": declaring}


PROCESSES_DEMO = PROCUREMENT.parent / "demo.json"


def _restored(session_factory: so.sessionmaker[so.Session], instance_id: int) -> tuple[int, int, str]:
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        instance = s.get(engine.ProcessInstance, instance_id)
        assert instance is not None
        return instance.definition.version, instance.lock_version, instance.state


def _shoot(browser: Any, live_server: str, url: str, language: str, name: str, width: int = 1280) -> None:
    context = browser.new_context(
        base_url=live_server, locale=language, viewport={"width": width, "height": 900}
    )
    page = context.new_page()
    page.goto("/login")
    page.locator("#username").fill("se-admin")
    page.locator("#password").fill("correct horse battery staple")
    page.locator("article.login form button[type=submit]").click()
    expect(page.locator("h1")).to_be_visible()
    page.goto(url)
    SHOTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if width == 1280 else f"-{width}"
    page.screenshot(path=str(SHOTS / f"{name}-{language[:2]}{suffix}.png"), full_page=True)
    context.close()


def test_a_waiting_direct_procurement_moves_to_version_2_and_continues_there(
    page: Any,
    browser: Any,
    live_server: str,
    procurements: dict[str, int],
    session_factory: so.sessionmaker[so.Session],
) -> None:
    describing, declaring = procurements["describing"], procurements["declaring"]
    untouched = _restored(session_factory, describing)
    sign_in(page, "se-admin")
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Migration").click()
    expect(page.get_by_role("heading", name="Move cases to another version")).to_be_visible()
    page.get_by_label("Process").select_option("direct_procurement")
    page.get_by_role("button", name="Choose versions").click()
    page.get_by_label("Cases on").select_option(label="Version 1")
    page.get_by_label("Move to").select_option(label="Version 2")
    page.get_by_role("button", name="Dry run").click()

    expect(page.get_by_text("1 of 2 cases can move.")).to_be_visible()
    movable = page.locator(f'tr[data-instance="{declaring}"]')
    expect(movable).to_contain_text("Can move")
    expect(movable).to_contain_text("Declare conflicts of interest")
    refused = page.locator(f'tr[data-instance="{describing}"]')
    expect(refused).to_contain_text(
        "The field Budget code (budget_code) of its open step “Describe the need and requirements” "
        "is required in version 2, has no default and the case has no value for it."
    )
    dry_run_url = page.url
    assert _restored(session_factory, declaring)[0] == 1, "a dry run changes nothing"
    for language in ("en-GB", "sv-SE", "fi-FI"):
        _shoot(browser, live_server, dry_run_url, language, "dry-run")
    _shoot(browser, live_server, dry_run_url, "fi-FI", "dry-run", width=390)

    page.get_by_role("button", name="Move 1 case to Version 2").click()
    expect(page.get_by_role("status")).to_contain_text("Moved 1 case to Version 2:")
    expect(page.get_by_role("status")).not_to_contain_text("not moved")  # only the movable ones were sent
    expect(page.locator(f'tr[data-instance="{describing}"]')).to_contain_text("budget_code")
    expect(page.locator(f'tr[data-instance="{declaring}"]')).to_have_count(0)
    for language in ("en-GB", "sv-SE", "fi-FI"):
        _shoot(browser, live_server, page.url, language, "moved")

    assert _restored(session_factory, describing) == untouched, "the refused case is left as it was"
    assert _restored(session_factory, declaring)[0] == 2
    # The case goes on, restored from the database onto version 2's spec parsed afresh.
    engine.SPEC_CACHE.clear()
    with session_factory.begin() as s:
        (task,) = engine.list_tasks(s, instance_id=declaring)
        engine.complete_task(s, task.id, user="se-requester", data={"has_conflict": False, "details": ""})
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=declaring)
        assert (task.bpmn_id, task.name) == ("request_quotes", "Request quotes (v2)")
        events = [e.kind for e in engine.instance_events(s, declaring)]
        assert events.count("migrated") == 1
        migrated = s.scalars(
            sa.select(engine.AuditEvent).where(engine.AuditEvent.kind == "admin.instance_migrated")
        ).all()
        assert [(m.actor, m.instance_id) for m in migrated] == [("se-admin", declaring)]
    page.goto(f"/instances/{declaring}")
    expect(page.get_by_text("Request quotes (v2)").first).to_be_visible()
