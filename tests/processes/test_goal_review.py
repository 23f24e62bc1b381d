"""Scenario tests of processes/goal_review: plan, approval, assignments, quarters, evaluation, next year."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import engine
from engine.form_choices import goal_task_parts, open_goal_tasks
from tests.processes.driver import Clock, Driver, EngineDriver, Run, ScenarioError

SE_PLAN_2025 = "212000-0001/2025"
FI_MAILBOX = "hankinnat@esimerkkila.demo.example"


def _national(goal_id: str, owner: str, year: int = 2025, **changes: Any) -> dict[str, Any]:
    return {
        "catalogue_goal": goal_id,
        "source": "national",
        "level": "procurement",
        "baseline": "10 %",
        "target": "30 %",
        "owner": owner,
        "period_start": f"{year}-01-01",
        "period_end": f"{year}-12-31",
        **changes,
    }


OWN_GOAL = {
    "goal_id": "OWN-1",
    "source": "own",
    "theme": 2,
    "title": "Every buyer trained in the new procurement guidelines",
    "level": "organisation",
    "indicator": "Share of buyers trained (%)",
    "baseline": "0 %",
    "target": "100 %",
    "owner": "se-buyer",
    "period_start": "2025-01-01",
    "period_end": "2025-12-31",
}


def _plan(run: Run, user: str, goals: list[dict[str, Any]], schedule: list[dict[str, Any]]) -> None:
    assert run.open_tasks() == ["select_goals"]
    run.complete("select_goals", user=user, data={"goals": goals})
    assert run.open_tasks() == ["schedule_goals"]
    run.complete("schedule_goals", user=user, data={"schedule": schedule})
    assert run.open_tasks() == ["approve_plan"]


def _decide(run: Run, user: str, decision: str, comments: str = "") -> None:
    run.complete("approve_plan", user=user, data={"plan_decision": decision, "approval_comments": comments})


def _until(driver: Driver, clock: Clock, when: dt.datetime) -> None:
    """Move the clock to an hour before *when*, check nothing fired, then past it and fire the timers."""
    clock.advance(seconds=(when - dt.datetime.now(dt.UTC)).total_seconds() - 3600)
    driver.fire_due_timers()
    clock.advance(hours=2)
    driver.fire_due_timers()


def _report(run: Run, user: str, rag: str, percent: float, value: str, **extra: Any) -> None:
    run.complete(
        "report_goal_status",
        user=user,
        data={"rag": rag, "percent_fulfilled": percent, "indicator_value": value, "comment": "", **extra},
    )


def _quarter_end(quarter: int, year: int = 2025) -> dt.datetime:
    return dt.datetime(year + (quarter == 4), 1 if quarter == 4 else 3 * quarter + 1, 1, tzinfo=dt.UTC)


def _subjects(driver: Driver, prefix: str) -> list[str]:
    return sorted(e["to"] for e in driver.emails if e["subject"].startswith(prefix))


def test_a_year_of_goals_with_completions_corrective_action_and_carry_over(
    driver: Driver, clock: Clock
) -> None:
    run = driver.start("goal_review", org="exempelby", user="se-buyer", data={"plan_year": 2025})
    data = run.data
    assert (data["origin"], data["plan_year"], data["goal_plan_ref"]) == ("manual", 2025, SE_PLAN_2025)
    catalogue = data["catalogue_goals"]
    assert {g["theme"] for g in catalogue} == set(range(1, 9)) and len(catalogue) == 19
    t81 = next(g for g in catalogue if g["goal_id"] == "T8.1")
    assert data["goals"] == [] and data["previous_plan"] == []

    _plan(
        run,
        "se-buyer",
        [_national("T8.1", "se-quality"), OWN_GOAL],
        [{"goal_id": "OWN-1", "q1": 10, "q2": 40, "q3": 70, "q4": 100}],
    )
    goals = {g["goal_id"]: g for g in run.data["goals"]}
    # The national goal takes its wording from the catalogue; an unscheduled goal progresses evenly.
    assert (goals["T8.1"]["title"], goals["T8.1"]["indicator"], goals["T8.1"]["theme"]) == (
        t81["title"],
        t81["indicator"],
        8,
    )
    assert goals["T8.1"]["schedule"] == [25, 50, 75, 100]
    assert goals["OWN-1"]["schedule"] == [10, 40, 70, 100]
    if isinstance(driver, EngineDriver):
        with pytest.raises(ScenarioError, match="No ready task 'approve_plan' for 'se-buyer'"):
            _decide(run, "se-buyer", "approve")
    _decide(run, "se-director", "approve", "Good plan.")
    assert run.open_tasks() == ["assign_goals"]
    run.complete(
        "assign_goals",
        user="se-buyer",
        data={
            "assignments": [
                {
                    "goal_id": "T8.1",
                    "procurement_id": "DP-2025-017",
                    "lifecycle_phase": "tendering",
                    "task": "Require eco-labelled products in the quote request",
                    "due_date": "2025-06-30",
                },
                {
                    "goal_id": "T8.1",
                    "procurement_id": "MC-2025-001",
                    "lifecycle_phase": "contract",
                    "task": "Follow up the environmental clause",
                    "due_date": "2025-11-30",
                },
            ]
        },
    )
    assert run.open_tasks() == [] and run.status == "waiting"
    assert [a["status"] for a in run.data["assignments"]] == ["open", "open"]
    # Approved on 3 March: the plan is in force for 29 days of Q1, fewer than the 90 days of
    # goal_report_min_days_in_quarter, so the first report is for Q2, not one for Q1 in four weeks.
    assert run.data["quarter_numbers"] == [2, 3, 4]

    completion = {
        "goal_plan_ref": SE_PLAN_2025,
        "goal_id": "T8.1",
        "procurement_id": "DP-2025-017",
        "source": "direct_procurement",
        "note": "Eco-label required",
    }
    (reached,) = driver.send_message("goal_task_completed", completion, org="exempelby")
    assert reached.process_id == "goal_review"
    with pytest.raises((ScenarioError, engine.NotFoundError)):
        driver.send_message(
            "goal_task_completed", {**completion, "goal_plan_ref": "212000-0001/2024"}, org="exempelby"
        )
    driver.send_message(
        "goal_task_completed", {**completion, "procurement_id": "DP-UNKNOWN"}, org="exempelby"
    )
    data = run.data
    assert [(a["procurement_id"], a["status"]) for a in data["assignments"]] == [
        ("DP-2025-017", "done"),
        ("MC-2025-001", "open"),
    ]
    assert data["assignments"][0]["completion_note"] == "Eco-label required"
    assert [(c["procurement_id"], c["matched"]) for c in data["quarter_completions"]] == [
        ("DP-2025-017", True),
        ("DP-UNKNOWN", False),
    ]

    _until(driver, clock, _quarter_end(1))
    assert run.open_tasks() == [], "no report for Q1"
    # Q2: the own goal is reported red and goes to management.
    _until(driver, clock, _quarter_end(2))
    assert run.open_tasks() == ["report_goal_status", "report_goal_status"]
    _report(run, "se-quality", "green", 50, "12 %")
    _report(run, "se-buyer", "red", 5, "5 %", comment="Trainer on leave.")
    data = run.data
    tracks = {s["goal_id"]: (s["track"], s["track_reason"]) for s in data["statuses"]}
    assert tracks == {"T8.1": ("on_track", "On schedule"), "OWN-1": ("off_track", "Reported red")}
    assert [g["goal_id"] for g in data["off_track_goals"]] == ["OWN-1"]
    assert run.open_tasks() == ["corrective_action"]
    if isinstance(driver, EngineDriver):
        with pytest.raises(ScenarioError, match="No ready task 'corrective_action' for 'se-buyer'"):
            run.complete("corrective_action", user="se-buyer", data={})
    run.complete(
        "corrective_action",
        user="se-director",
        data={
            "corrective_actions": [
                {
                    "goal_id": "OWN-1",
                    "action": "Buy the course",
                    "responsible": "se-buyer",
                    "due_date": "2025-08-31",
                }
            ]
        },
    )
    assert run.open_tasks() == [] and run.status == "waiting"
    assert run.data["open_assignments"] == 1, "the next quarter listens for the open assignment"

    # Q3: nothing off track; the owner reports the remaining assignment done herself.
    _until(driver, clock, _quarter_end(3))
    _report(run, "se-quality", "amber", 65, "20 %", completed_procurements=["MC-2025-001"])
    _report(run, "se-buyer", "green", 70, "70 %")
    assert run.open_tasks() == []
    # Q4: nothing open any more, so the quarter just waits for its end.
    assert run.data["open_assignments"] == 0
    with pytest.raises((ScenarioError, engine.NotFoundError)):
        driver.send_message("goal_task_completed", completion, org="exempelby")
    _until(driver, clock, _quarter_end(4))
    _report(run, "se-quality", "green", 100, "31 %")
    _report(run, "se-buyer", "amber", 95, "95 %")
    assert run.open_tasks() == ["evaluate_year"]
    data = run.data
    assert [q["quarter"] for q in data["quarter_results"]] == [2, 3, 4]
    q2, q3 = data["quarter_results"][:2]
    assert [c["goal_id"] for c in q2["corrective_actions"]] == ["OWN-1"] and q3["corrective_actions"] == []
    assert {s["goal_id"]: s["track"] for s in q3["statuses"]} == {"T8.1": "at_risk", "OWN-1": "on_track"}
    assert [a["completion_note"] for a in data["assignments"]] == [
        "Eco-label required",
        "Reported done in the Q3 status update",
    ]
    assert data["assignments_done"] == 2 and data["off_track_quarters"] == 1

    run.complete(
        "evaluate_year",
        user="se-buyer",
        data={
            "evaluation": "Eco-labels are now standard; training done.",
            "goal_outcomes": [
                {"goal_id": "T8.1", "outcome": "achieved", "carry_over": True, "next_target": "40 %"},
                {"goal_id": "OWN-1", "outcome": "partly_achieved", "carry_over": False},
            ],
            "continue_next_year": True,
        },
    )
    assert run.status == "completed"
    runs = driver.runs_of("goal_review")
    assert len(runs) == 2
    next_year = runs[1]
    data = next_year.data
    assert (data["origin"], data["plan_year"], data["goal_plan_ref"]) == (
        "carried_over",
        2026,
        "212000-0001/2026",
    )
    assert data["previous_goal_plan_ref"] == SE_PLAN_2025
    assert "carried_over" not in data and "quarter_results" not in data
    (carried,) = data["goals"]
    assert (carried["goal_id"], carried["baseline"], carried["target"], carried["owner"]) == (
        "T8.1",
        "31 %",
        "40 %",
        "se-quality",
    )
    assert (carried["period_start"], carried["period_end"]) == ("2026-01-01", "2026-12-31")
    assert next_year.open_tasks() == ["select_goals"]


def test_revisions_are_bounded_then_the_plan_is_not_approved(driver: Driver, clock: Clock) -> None:
    run = driver.start("goal_review", org="esimerkkila", user="fi-buyer")
    data = run.data
    assert (data["plan_year"], data["goal_plan_ref"], data["max_revisions"]) == (2025, "0123456-7/2025", 2)
    goal = _national("T5.1", "fi-quality", level="organisation")
    for revision in range(3):
        _plan(run, "fi-buyer", [goal], [])
        assert run.data["plan_revision"] == revision
        _decide(run, "fi-director", "revise", f"Round {revision}: be more ambitious.")
        if revision < 2:
            assert run.data["revision_comments"] == f"Round {revision}: be more ambitious."
    assert run.status == "completed", "the third request for a revision is one too many"
    assert _subjects(driver, "Goal plan not approved: 0123456-7/2025") == [FI_MAILBOX]


def test_rejected_plan_ends_the_year_at_once(driver: Driver, clock: Clock) -> None:
    run = driver.start("goal_review", org="esimerkkila", user="fi-buyer", data={"plan_year": 2026})
    _plan(run, "fi-buyer", [_national("T6.1", "fi-quality", year=2026)], [])
    _decide(run, "fi-finance-head", "reject", "Not this year.")
    assert run.status == "completed"
    assert _subjects(driver, "Goal plan not approved: 0123456-7/2026") == [FI_MAILBOX]


def test_scheduled_start_with_nothing_assigned_and_no_next_year(driver: Driver, clock: Clock) -> None:
    new_year = dt.datetime(2026, 1, 1, 6, 0, tzinfo=dt.UTC)
    if isinstance(driver, EngineDriver):
        with driver.session_factory.begin() as s:
            with pytest.raises(engine.FormValidationError):
                engine.start_instance(
                    s, "goal_review", organisation="esimerkkila", user="fi-buyer", data={"plan_year": 1999}
                )
            engine.schedule_start(s, "goal_review", organisation="esimerkkila", cron="0 6 1 1 *")
        _until(driver, clock, new_year)
        (run,) = driver.runs_of("goal_review")
    else:
        _until(driver, clock, new_year)
        run = driver.start(
            "goal_review", org="esimerkkila", user="fi-buyer", data={"scheduled_for": new_year.isoformat()}
        )
    data = run.data
    assert (data["origin"], data["plan_year"], data["goal_plan_ref"]) == ("manual", 2026, "0123456-7/2026")
    _plan(run, "fi-buyer", [_national("T2.1", "fi-quality", year=2026, level="organisation")], [])
    _decide(run, "fi-director", "approve")
    run.complete("assign_goals", user="fi-buyer", data={"assignments": []})
    assert run.data["open_assignments"] == 0
    with pytest.raises((ScenarioError, engine.NotFoundError)):
        driver.send_message(
            "goal_task_completed",
            {"goal_plan_ref": "0123456-7/2026", "goal_id": "T2.1", "procurement_id": "X"},
            org="esimerkkila",
        )
    for quarter, percent in ((1, 25), (2, 30), (3, 70), (4, 100)):
        _until(driver, clock, _quarter_end(quarter, 2026))
        _report(run, "fi-quality", "green", percent, f"{percent} %")
        if quarter == 2:
            # Reported green, but 20 points behind the schedule: more than the tolerated 15.
            assert run.open_tasks() == ["corrective_action"]
            corrective = {
                "goal_id": "T2.1",
                "action": "Plan sessions",
                "responsible": "fi-buyer",
                "due_date": "2026-08-31",
            }
            run.complete(
                "corrective_action", user="fi-finance-head", data={"corrective_actions": [corrective]}
            )
        assert run.open_tasks() == (["evaluate_year"] if quarter == 4 else [])
    tracks = [
        (q["statuses"][0]["track"], q["statuses"][0]["track_reason"]) for q in run.data["quarter_results"]
    ]
    assert tracks == [
        ("on_track", "On schedule"),
        ("off_track", "More than 15 points behind the schedule"),
        ("at_risk", "Behind the schedule"),
        ("on_track", "On schedule"),
    ]
    run.complete(
        "evaluate_year",
        user="fi-buyer",
        data={
            "evaluation": "All buyers have a plan.",
            "goal_outcomes": [{"goal_id": "T2.1", "outcome": "achieved", "carry_over": False}],
            "continue_next_year": False,
        },
    )
    assert run.status == "completed"
    assert len(driver.runs_of("goal_review")) == 1


@pytest.mark.parametrize(
    ("approved", "quarters"),
    [
        (dt.datetime(2025, 5, 15, 9, 0, tzinfo=dt.UTC), [3, 4]),
        (dt.datetime(2025, 7, 1, 9, 0, tzinfo=dt.UTC), [3, 4]),
        (dt.datetime(2025, 11, 20, 9, 0, tzinfo=dt.UTC), [4]),
    ],
)
def test_a_plan_approved_mid_year_reports_from_its_first_full_quarter(
    driver: Driver, clock: Clock, approved: dt.datetime, quarters: list[int]
) -> None:
    clock.advance(seconds=(approved - dt.datetime.now(dt.UTC)).total_seconds())
    run = driver.start("goal_review", org="esimerkkila", user="fi-buyer", data={"plan_year": 2025})
    # The catalogue's choice list carries every language's wording; the plan takes the organisation's.
    t21 = next(g for g in run.data["catalogue_goals"] if g["goal_id"] == "T2.1")
    assert t21["label"] == {
        "en": "T2.1 · Every buyer has a personal competence plan",
        "sv": "T2.1 · Varje inköpare har en personlig kompetensplan",
        "fi": "T2.1 · Jokaisella hankkijalla on henkilökohtainen osaamissuunnitelma",
    }
    _plan(run, "fi-buyer", [_national("T2.1", "fi-quality", level="organisation")], [])
    assert run.data["goals"][0]["title"] == "Jokaisella hankkijalla on henkilökohtainen osaamissuunnitelma"
    _decide(run, "fi-director", "approve")
    run.complete("assign_goals", user="fi-buyer", data={"assignments": []})
    assert run.data["quarter_numbers"] == quarters
    assert run.open_tasks() == [], "no report is asked at once"
    driver.fire_due_timers()
    assert run.open_tasks() == []
    _until(driver, clock, _quarter_end(quarters[0]))
    assert run.open_tasks() == ["report_goal_status"]


def test_a_national_goal_must_be_one_of_the_catalogue(driver: Driver, clock: Clock) -> None:
    run = driver.start("goal_review", org="esimerkkila", user="fi-buyer", data={"plan_year": 2025})
    with pytest.raises(engine.FormValidationError):
        run.complete("select_goals", user="fi-buyer", data={"goals": [_national("T9.9", "fi-quality")]})
    goal = {k: v for k, v in _national("T2.1", "fi-quality").items() if k != "catalogue_goal"}
    with pytest.raises(engine.FormValidationError):
        run.complete("select_goals", user="fi-buyer", data={"goals": [goal]})
    assert run.open_tasks() == ["select_goals"]


def test_open_goal_tasks_are_offered_to_the_other_processes_and_reach_the_right_review(
    driver: Driver, clock: Clock
) -> None:
    run = driver.start("goal_review", org="exempelby", user="se-buyer", data={"plan_year": 2025})
    _plan(run, "se-buyer", [_national("T8.1", "se-quality")], [])
    _decide(run, "se-director", "approve")
    assignment = {
        "goal_id": "T8.1",
        "procurement_id": "DP-2025-017",
        "lifecycle_phase": "tendering",
        "task": "Require eco-labelled products",
        "due_date": "2025-06-30",
    }
    run.complete("assign_goals", user="se-buyer", data={"assignments": [assignment]})
    # Another organisation's review with a task of its own, which exempelby must never be offered.
    other = driver.start("goal_review", org="esimerkkila", user="fi-buyer", data={"plan_year": 2025})
    _plan(other, "fi-buyer", [_national("T2.1", "fi-quality", level="organisation")], [])
    _decide(other, "fi-director", "approve")
    other.complete("assign_goals", user="fi-buyer", data={"assignments": [{**assignment, "goal_id": "T2.1"}]})
    value = f"{SE_PLAN_2025}#T8.1#DP-2025-017"
    if isinstance(driver, EngineDriver):
        # The describe_need form of a direct procurement lists the open goal tasks of its own organisation.
        purchase = driver.start("direct_procurement", org="exempelby", user="se-buyer")
        (row,) = purchase.task_rows("describe_need")  # type: ignore[attr-defined]
        with driver.session_factory() as s:
            schema = engine.task_form_schema(s, engine.get_task(s, row.id))
        assert schema is not None
        (offered,) = schema["properties"]["goal_task"]["oneOf"]
        assert offered["const"] == value
        assert offered["title"].startswith(
            "T8.1 Kriterier för klimatneutral upphandling används · DP-2025-017"
        )
    else:
        # In memory the driver offers what the engine would: the open tasks of the same organisation.
        (own,) = [r for r in driver.runs_of("goal_review") if r.org == "exempelby"]  # type: ignore[attr-defined]
        assert [c["const"] for c in open_goal_tasks([own.data])] == [value]
    plan_ref, goal_id, procurement_id = goal_task_parts(value)
    payload = {"goal_plan_ref": plan_ref, "goal_id": goal_id, "procurement_id": procurement_id}
    (reached,) = driver.send_message(
        "goal_task_completed", {**payload, "source": "direct_procurement"}, org="exempelby"
    )
    assert reached.process_id == "goal_review"
    assert [a["status"] for a in run.data["assignments"]] == ["done"]
    assert [a["status"] for a in other.data["assignments"]] == ["open"], "the other review is not touched"


def test_a_direct_procurement_linked_to_a_goal_task_completes_it(driver: Driver, clock: Clock) -> None:
    from tests.processes import test_direct_procurement as dp

    review = driver.start("goal_review", org="esimerkkila", user="fi-buyer", data={"plan_year": 2025})
    _plan(review, "fi-buyer", [_national("T6.1", "fi-quality")], [])
    _decide(review, "fi-director", "approve")
    assignment = {
        "goal_id": "T6.1",
        "procurement_id": "HAN-2025-030",
        "lifecycle_phase": "evaluation",
        "task": "Evaluate on life-cycle cost",
        "due_date": "2025-09-30",
    }
    review.complete("assign_goals", user="fi-buyer", data={"assignments": [assignment]})
    goal_task = "0123456-7/2025#T6.1#HAN-2025-030"
    purchase = driver.start("direct_procurement", org="esimerkkila", user="fi-requester")
    need = dp._need(
        "fi", value_excl_vat=30000, category="services", cpv_code="79530000-8", subject="Translations"
    )
    with pytest.raises(engine.FormValidationError):
        # Only an open goal task of the organisation's own reviews can be named.
        purchase.complete(
            "describe_need", user="fi-requester", data={**need, "goal_task": "0123456-7/2025#T6.1#TYPED"}
        )
    purchase.complete("describe_need", user="fi-requester", data={**need, "goal_task": goal_task})
    dp._declare_none(purchase, "fi-requester")
    dp._request_quotes(purchase, "fi")
    dp._through_deadline(driver, clock, purchase)
    purchase.complete(
        "register_quotes",
        user="fi-buyer",
        data={"quotes": [dp._quote(dp.SUPPLIERS[0], 29000, 60), dp._quote(dp.SUPPLIERS[1], 27000, 85)]},
    )
    purchase.complete(
        "select_supplier",
        user="fi-buyer",
        data={"winner_org_number": "556000-0002", "justification": "Best score and price."},
    )
    purchase.complete(
        "approve",
        user="fi-area-head",
        data={"approved": True, "approval_comment": "", "approver_has_conflict": False},
    )
    assert [a["status"] for a in review.data["assignments"]] == ["open"]
    dp._order(purchase, "fi")
    (done,) = review.data["assignments"]
    assert (done["status"], done["completion_note"]) == ("done", "Ordered: Translations")
    assert [(c["source"], c["matched"]) for c in review.data["quarter_completions"]] == [
        ("direct_procurement", True)
    ]
