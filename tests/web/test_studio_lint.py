"""The studio's lint: the sandbox check behind procflow/expression-refused, and the lint rules themselves.

The rules run in Node (tests/web/studio_lint_models.mjs bundles web/studio-src/lint/ as the browser
build does) on every shipped model, and in Chromium inside a bpmn-js Modeler on a page of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

import engine
from engine.expressions import MAX_CODE_CHARS, MAX_CODES, check_code
from tests.conftest import FIXTURES
from tests.web.conftest import LoginAs
from tests.web.test_browser import sign_in
from web.security import PAGE_CSP

ROOT = Path(__file__).resolve().parents[2]
LINT_MODELS = Path(__file__).with_name("studio_lint_models.mjs")
LINT_PAGE = Path(__file__).with_name("studio_lint_page.js")
FINDINGS = FIXTURES / "studio_lint" / "findings.bpmn"
SHIPPED = sorted((ROOT / "processes").glob("*/*.bpmn"))
URL = "/studio/web_purchase/lint/expressions"


def _lint(client: Any, expressions: Any) -> Any:
    return client.post(URL, json={"expressions": expressions})


# -- the sandbox check --------------------------------------------------------------------------


def test_valid_and_refused_code_get_the_sandboxs_verdict_in_order(login_as: LoginAs, deployed: None) -> None:
    client = login_as("admin")
    sent = [
        {"element": "flow_ok", "kind": "expression", "text": "amount <= 1000"},
        {"element": "flow_bad", "kind": "expression", "text": "__import__('os')"},
        {"element": "compute", "kind": "script", "text": "total = amount * 2\nimport os"},
        {"element": "read", "kind": "script", "text": "x = 1\n\ny = open('/etc/passwd').read()"},
    ]
    response = _lint(client, sent)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "results": [
            {**sent[0], "error": None, "line": None},
            {**sent[1], "error": "access to '__import__' is not allowed", "line": 1},
            {**sent[2], "error": "import is not allowed", "line": 2},
            {**sent[3], "error": "open() is not allowed", "line": 3},
        ]
    }


def test_oversized_or_malformed_requests_get_422_naming_the_field(login_as: LoginAs, deployed: None) -> None:
    client = login_as("admin")
    too_long = _lint(
        client, [{"element": "big", "kind": "script", "text": "x = 1\n" * (MAX_CODE_CHARS // 6 + 1)}]
    )
    assert too_long.status_code == 422
    body = too_long.get_json()
    assert f"at most {MAX_CODE_CHARS:,} are checked" in body["message"]
    assert "element 'big'" in body["message"]
    assert body["problems"][0]["field"] == "/expressions/0/text"

    too_many = _lint(client, [{"element": "e", "kind": "expression", "text": "1"}] * (MAX_CODES + 1))
    assert too_many.status_code == 422
    assert f"at most {MAX_CODES:,} are checked at once" in too_many.get_json()["message"]

    wrong_kind = _lint(
        client, [{"element": "e", "kind": "expression", "text": "1"}, {"kind": "macro", "text": "1"}]
    )
    assert wrong_kind.status_code == 422
    assert wrong_kind.get_json()["problems"][0]["field"] == "/expressions/1/kind"

    not_json = client.post(URL, data="expressions", headers={"X-CSRFToken": client.csrf_token or ""})
    assert not_json.status_code == 422
    assert not_json.get_json()["problems"][0]["field"] == "/expressions"


def test_a_process_the_organisation_has_not_is_404(login_as: LoginAs, deployed: None) -> None:
    response = login_as("admin").post("/studio/no_such_process/lint/expressions", json={"expressions": []})
    assert response.status_code == 404
    assert response.get_json()["message"] == "No process 'no_such_process' in this organisation's studio"


def test_only_process_owners_and_admins_reach_the_check(
    login_as: LoginAs, client: Any, deployed: None
) -> None:
    sent = [{"element": "e", "kind": "expression", "text": "1"}]
    assert _lint(client, sent).status_code in (302, 303)  # anonymous: to the sign-in page
    assert _lint(login_as("case_handler"), sent).status_code == 404
    assert _lint(login_as("requester"), sent).status_code == 404
    assert _lint(login_as("admin"), sent).status_code == 200
    assert _lint(login_as("process_owner"), sent).status_code == 200


# -- the rules, in Node -------------------------------------------------------------------------


def _node() -> str:
    found = shutil.which("node")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("node is missing: the studio's lint rules are checked with it")
        pytest.skip("node is not installed")
    return found


def _run_lint(
    files: list[Path], tmp_path: Path, *, groups: list[str] | None = None, generic: bool = False
) -> dict[str, Any]:
    """Lint *files* with the modeler's rules; expressions are answered by the engine as the server would."""
    node = _node()
    base = [node, str(LINT_MODELS), *(["--generic"] if generic else [])]
    if groups is not None:
        (tmp_path / "groups.json").write_text(json.dumps(groups))
        base += ["--groups", str(tmp_path / "groups.json")]

    def run(*extra: str) -> dict[str, Any]:
        done = subprocess.run(
            [*base, *extra, *map(str, files)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    codes = {(c["kind"], c["text"]) for found in run().values() for c in found["codes"]}
    answers = []
    for kind, text in sorted(codes):
        check = check_code(text, kind)
        answers.append({"kind": kind, "text": text, "error": check.error, "line": check.line})
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    return run("--answers", str(tmp_path / "answers.json"))


def _demo_groups() -> list[str]:
    demo = json.loads((ROOT / "processes" / "demo.json").read_text(encoding="utf-8"))
    return sorted({group["key"] for org in demo["organisations"] for group in org.get("groups", [])})


@pytest.mark.parametrize("generic", [False, True], ids=["spiffworkflow-descriptor", "generic-moddle"])
def test_the_shipped_models_lint_clean(tmp_path: Path, generic: bool) -> None:
    # Lanes are checked against the groups the demo organisations have (demo.json).
    linted = _run_lint(SHIPPED, tmp_path, groups=_demo_groups(), generic=generic)
    assert set(linted) == {str(path) for path in SHIPPED}
    assert {name: found["reports"] for name, found in linted.items()} == {str(path): [] for path in SHIPPED}
    # Not vacuous: the expression rule saw the models' code (conditions, scripts, timers, payloads...).
    kinds = [code["kind"] for found in linted.values() for code in found["codes"]]
    assert kinds.count("script") > 50 and kinds.count("expression") > 150


def test_the_rules_find_a_user_task_without_form_refused_code_and_lanes_without_group(tmp_path: Path) -> None:
    linted = _run_lint(
        [FINDINGS, ROOT / "processes/direct_procurement/direct_procurement.bpmn"],
        tmp_path,
        groups=["requesters", "approvers"],
    )
    findings = {(r["rule"], r["id"], r["category"]): r["message"] for r in linted[str(FINDINGS)]["reports"]}
    assert findings == {
        ("procflow/user-task-form", "task_no_form", "warn"): (
            "User task has no form (no formJsonSchemaFilename property): "
            "the case handler gets nothing to fill in"
        ),
        ("procflow/expression-refused", "f_bad", "error"): (
            "The condition is refused by the sandbox: access to '__import__' is not allowed"
        ),
        ("procflow/expression-refused", "script_bad", "error"): (
            "The script is refused by the sandbox (line 2): import is not allowed"
        ),
    }
    lanes = {
        r["id"]: r["message"]
        for r in linted[str(ROOT / "processes/direct_procurement/direct_procurement.bpmn")]["reports"]
    }
    # approvers' tasks name their own group (candidateGroupExpression); requesters is a group.
    assert lanes == {
        "Lane_procurement_officers": 'Lane "procurement_officers" names no group of the organisation, so its '
        "tasks reach no one (groups: approvers, requesters)",
        "Lane_quality_reviewers": 'Lane "quality_reviewers" names no group of the organisation, so its '
        "tasks reach no one (groups: approvers, requesters)",
    }


# -- the rules, in Chromium ---------------------------------------------------------------------

HARNESS = "/__lint-test"
SHOTS = Path("/tmp/shots/c")


@pytest.fixture(scope="module")
def lint_page_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test page's script and styles: bpmn-js with the studio's lint module, built by esbuild."""
    out = tmp_path_factory.mktemp("lint-page")
    build = (
        "require('esbuild').build({entryPoints: [process.argv[1]], outfile: process.argv[2], bundle: true,"
        " format: 'iife', loader: {'.svg': 'dataurl', '.woff': 'empty', '.woff2': 'empty', '.ttf': 'empty',"
        " '.eot': 'empty'}, logLevel: 'error'})"
        ".catch((error) => { console.error(error.message); process.exit(1); })"
    )
    done = subprocess.run(
        [_node(), "-e", build, str(LINT_PAGE), str(out / "page.js")], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return out


def _serve_lint_page(page: Any, bundle: Path, *, csrf_token: str, language: str, groups: list[str]) -> None:
    html = f"""<!doctype html>
<html lang="{language}"><head><meta charset="utf-8"><meta name="csrf-token" content="{csrf_token}">
<title>Lint</title><link rel="stylesheet" href="{HARNESS}/page.css">
<script src="{HARNESS}/page.js" defer></script></head>
<body><div id="modeler" data-groups='{json.dumps(groups)}' data-lint-url="{URL}"
data-diagram-url="{HARNESS}/findings.bpmn"><div data-canvas class="canvas"></div></div></body></html>"""
    files = {
        "page.html": (html, "text/html; charset=utf-8"),
        "page.js": ((bundle / "page.js").read_text(encoding="utf-8"), "text/javascript"),
        "page.css": (
            (bundle / "page.css").read_text(encoding="utf-8") + ".canvas { height: 600px; }",
            "text/css",
        ),
        "findings.bpmn": (FINDINGS.read_text(encoding="utf-8"), "application/xml"),
    }

    def fulfil(route: Any) -> None:
        body, content_type = files[route.request.url.rsplit("/", 1)[1]]
        route.fulfill(
            status=200, body=body, headers={"Content-Type": content_type, "Content-Security-Policy": PAGE_CSP}
        )

    page.route(f"**{HARNESS}/*", fulfil)


def _overlay(page: Any, element_id: str) -> Any:
    return page.locator(f'.djs-overlays[data-container-id="{element_id}"] .bjsl-overlay')


@pytest.mark.slow
def test_lint_markers_pin_a_user_task_without_form_and_a_refused_condition(
    page: Any, lint_page_bundle: Path
) -> None:
    sign_in(page, "north-admin")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    _serve_lint_page(page, lint_page_bundle, csrf_token=token, language="en", groups=["requesters"])
    page.goto(f"{HARNESS}/page.html")
    expect(page.locator("#modeler[data-loaded]")).to_be_attached()

    expect(_overlay(page, "task_no_form").locator(".bjsl-icon-warning")).to_be_visible()
    expect(_overlay(page, "task_no_form")).to_contain_text("User task has no form")
    # The condition's verdict comes from the server's sandbox, after the first lint.
    expect(_overlay(page, "f_bad").locator(".bjsl-icon-error")).to_be_visible()
    expect(_overlay(page, "f_bad")).to_contain_text(
        "The condition is refused by the sandbox: access to '__import__' is not allowed"
    )
    expect(_overlay(page, "script_bad")).to_contain_text("(line 2): import is not allowed")
    for fine in ("task_with_form", "f_ok", "route", "start", "end_small"):
        expect(_overlay(page, fine)).to_have_count(0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    _overlay(page, "f_bad").locator(".bjsl-icon").hover()
    page.screenshot(path=str(SHOTS / "lint-en.png"), full_page=True)

    # Edited to other code the sandbox refuses: asked again, and pinned again once the answer is in.
    page.evaluate(
        """() => {
          const modeler = window.lintPage.modeler;
          const flow = modeler.get("elementRegistry").get("f_bad");
          const body = "open('/etc/passwd')";
          const condition = modeler.get("moddle").create("bpmn:FormalExpression", { body });
          modeler.get("modeling").updateProperties(flow, { conditionExpression: condition });
        }"""
    )
    expect(_overlay(page, "f_bad")).to_contain_text("open() is not allowed")
    # Fixed: the marker goes.
    page.evaluate(
        """() => {
          const modeler = window.lintPage.modeler;
          const flow = modeler.get("elementRegistry").get("f_bad");
          const condition = modeler.get("moddle").create("bpmn:FormalExpression", { body: "amount > 1000" });
          modeler.get("modeling").updateProperties(flow, { conditionExpression: condition });
        }"""
    )
    expect(_overlay(page, "f_bad")).to_have_count(0)
    expect(_overlay(page, "task_no_form")).to_have_count(1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("language", "form_message", "condition_message"),
    [
        ("sv", "Användaruppgiften har inget formulär", "Villkoret godtas inte av sandlådan"),
        ("fi", "Käyttäjätehtävällä ei ole lomaketta", "Ehto: hiekkalaatikko ei hyväksy koodia"),
    ],
)
def test_lint_messages_are_in_the_pages_language(
    page: Any, lint_page_bundle: Path, language: str, form_message: str, condition_message: str
) -> None:
    sign_in(page, "north-admin")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    _serve_lint_page(page, lint_page_bundle, csrf_token=token, language=language, groups=["requesters"])
    page.goto(f"{HARNESS}/page.html")
    expect(_overlay(page, "task_no_form")).to_contain_text(form_message)
    expect(_overlay(page, "f_bad")).to_contain_text(condition_message)
    _overlay(page, "task_no_form").locator(".bjsl-icon").hover()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"lint-{language}.png"), full_page=True)


@pytest.mark.slow
def test_the_studios_modeler_pins_refused_code_and_lanes_of_no_group(
    page: Any, session_factory: Any, deployed: None
) -> None:
    # north's groups (tests/conftest.py orgs) are approvers, handlers and requesters.
    with session_factory.begin() as s:
        engine.deploy_path(s, ROOT / "processes" / "direct_procurement")
        north = engine.get_organisation(s, "north")
        engine.studio.open_draft(s, north.id, "direct_procurement", user="north-owner", customise=True)
    sign_in(page, "north-owner")
    page.goto("/studio/direct_procurement")
    expect(page.locator("#studio-modeler[data-loaded]")).to_be_attached()
    expect(_overlay(page, "Lane_procurement_officers")).to_contain_text(
        'Lane "procurement_officers" names no group of the organisation'
    )
    expect(_overlay(page, "Lane_requesters")).to_have_count(0)
    expect(_overlay(page, "f_stop")).to_have_count(0)
    page.evaluate(
        """() => {
          const modeler = window.procflowModeler;
          const flow = modeler.get("elementRegistry").get("f_stop");
          const body = "__import__('os')";
          const condition = modeler.get("moddle").create("bpmn:FormalExpression", { body });
          modeler.get("modeling").updateProperties(flow, { conditionExpression: condition });
        }"""
    )
    expect(_overlay(page, "f_stop")).to_contain_text("access to '__import__' is not allowed")
