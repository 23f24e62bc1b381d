"""The demo seed file: organisations with different limits, dated parameters, users, the goal catalogue."""

from __future__ import annotations

import datetime as dt

import sqlalchemy.orm as so

import engine
from engine._workflow import current_parameters
from tests.processes.driver import PROCESSES


def test_demo_seed_loads_idempotently_with_dated_parameters(
    session_factory: so.sessionmaker[so.Session],
) -> None:
    seed = engine.read_seed_file(PROCESSES / "demo.json")
    seed["users"] = [{**u, "password": None} for u in seed["users"]]
    for _ in range(2):
        with session_factory.begin() as s:
            engine.load_seed(s, seed)
    with session_factory() as s:
        se = engine.get_organisation(s, "exempelby").id
        fi = engine.get_organisation(s, "esimerkkila").id
        cpb = engine.get_organisation(s, "yhteishankinnat").id
        today = dt.date(2025, 3, 3)
        se_now = current_parameters(s, se, today)
        assert se_now["direct_procurement_limits"]["goods"] == 700000 and se_now["currency"] == "SEK"
        assert current_parameters(s, se, dt.date(2021, 6, 1))["direct_procurement_limits"]["goods"] == 615312
        fi_now = current_parameters(s, fi, today)
        assert fi_now["direct_procurement_limits"]["services"] == 60000 and fi_now["currency"] == "EUR"
        assert current_parameters(s, cpb, today)["sla_working_days"]["advice"] == 2
        catalogue = fi_now["goal_catalogue"]
        assert [t["number"] for t in catalogue["themes"]] == list(range(1, 9))
        assert all(len(t["goals"]) >= 2 for t in catalogue["themes"])
        roles = {r for u in seed["users"] if u["organisation"] == "exempelby" for r in u["roles"]}
        assert roles == set(engine.ROLES)
        assert engine.membership_of(s, engine.get_user(s, "demo-admin"), cpb).roles == ["admin"]
