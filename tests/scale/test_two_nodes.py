"""Two web nodes and two worker nodes on one PostgreSQL: every case completes exactly once.

Four separate processes on 127.0.0.1 (``procflow serve --production`` twice, with two
gunicorn workers each, and ``procflow worker`` twice) share the database and nothing
else. Cases are started and driven over HTTP through both web nodes; every first task
is sent to both nodes at the same moment, so the two race for it; the timer between the
two tasks is fired by whichever worker leases it. Afterwards the audit trail, the task
index and the metrics of both nodes must tell the same story: each case started once,
each task completed once, each timer fired once.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from prometheus_client.parser import text_string_to_metric_families

import engine
from tests.scale.cluster import (
    FIXTURES,
    Browser,
    Node,
    environment,
    set_up,
    wait_for,
    web_server,
    worker,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CASES = 30
TOKEN = "two-nodes-metrics"


@pytest.fixture
def cluster(db_url: str, tmp_path: Path) -> Iterator[list[Node]]:
    env = {**environment(db_url, tmp_path), "PROCFLOW_METRICS_TOKEN": TOKEN}
    set_up(
        db_url, {"nora": ("requester", "requesters"), "bo": ("case_handler", "approvers")}, FIXTURES / "relay"
    )
    nodes = [
        web_server("web-a", env, tmp_path),
        web_server("web-b", env, tmp_path),
        worker("worker-1", env, tmp_path),
        worker("worker-2", env, tmp_path),
    ]
    try:
        for node in nodes:
            node.start()
        for node in nodes[:2]:
            node.wait_until_ready()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _completed_metric(node: Node, browser: Browser) -> float:

    request = urllib.request.Request(f"{node.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with browser.opener.open(request, timeout=60) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "procflow_instances_completed_total" and sample.labels["process"] == "relay":
                return sample.value
    return 0.0


def test_cases_driven_through_two_web_nodes_and_two_workers_complete_exactly_once(
    cluster: list[Node], db_engine: sa.Engine
) -> None:
    began = time.monotonic()
    web_a, web_b, *workers = cluster
    webs = (web_a, web_b)
    nora, bo = Browser("nora", web_a), Browser("bo", web_b)
    with ThreadPoolExecutor(max_workers=6) as pool:
        started = list(pool.map(lambda i: nora.start(webs[i % 2], "relay", f"case-{i}"), range(CASES)))
        assert started == [303] * CASES  # each start answered "see your first task"

        prepare = nora.open_tasks(web_b, "relay")
        assert len(prepare) == CASES and {t["bpmn_id"] for t in prepare} == {"prepare"}

        def race(task_id: int) -> list[int]:
            body = {"data": {"note": f"prepared {task_id}"}}
            both = [pool_inner.submit(nora.api, web, f"/tasks/{task_id}/complete", body) for web in webs]
            return sorted(future.result()[0] for future in both)

        with ThreadPoolExecutor(max_workers=8) as pool_inner:
            outcomes = list(pool.map(race, [t["id"] for t in prepare]))
        # Both nodes were asked to complete each task at once: one did, the other refused (409).
        assert outcomes == [[200, 409]] * CASES

        # The workers fire each case's timer; then the approval waits in bo's inbox.
        wait_for(lambda: len(bo.open_tasks(web_a, "relay")) == CASES, 120, "every timer fired")
        approve = bo.open_tasks(web_a, "relay")
        assert {t["bpmn_id"] for t in approve} == {"approve"}
        answers = list(
            pool.map(
                lambda pair: bo.api(
                    webs[pair[0] % 2], f"/tasks/{pair[1]['id']}/complete", {"data": {"approved": True}}
                ),
                enumerate(approve),
            )
        )
        assert [status for status, _ in answers] == [200] * CASES
        assert {body["instance"]["status"] for _, body in answers} == {"completed"}
    assert all(node.alive() for node in cluster), [node.tail() for node in cluster if not node.alive()]

    with so.Session(db_engine) as s:
        instances = s.execute(
            sa.select(engine.ProcessInstance.id, engine.ProcessInstance.title, engine.ProcessInstance.status)
        ).all()
        assert sorted(title for _, title, _ in instances) == sorted(f"case-{i}" for i in range(CASES))
        assert {status for _, _, status in instances} == {"completed"}
        events: Counter[tuple[int | None, str, str | None]] = Counter(
            (instance_id, kind, element)
            for instance_id, kind, element in s.execute(
                sa.select(engine.AuditEvent.instance_id, engine.AuditEvent.kind, engine.AuditEvent.element)
            )
        )
        for instance_id, _, _ in instances:
            assert events[(instance_id, "started", None)] + events[(instance_id, "started", "start")] == 1
            assert events[(instance_id, "task_completed", "prepare")] == 1
            assert events[(instance_id, "timer_fired", "pause")] == 1
            assert events[(instance_id, "task_completed", "approve")] == 1
        # The audit trail and the task index agree: the same tasks, completed by the same people.
        audited = {
            (event.detail["task_id"], event.actor)
            for event in s.scalars(
                sa.select(engine.AuditEvent).where(engine.AuditEvent.kind == "task_completed")
            )
        }
        indexed = {
            (task.id, task.completed_by.username if task.completed_by else None)
            for task in s.scalars(sa.select(engine.HumanTask))
        }
        assert audited == indexed and len(indexed) == 2 * CASES
        assert {task.state for task in s.scalars(sa.select(engine.HumanTask))} == {"completed"}
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.Job)) == 0
    # Both nodes report the same numbers: they come from the database.
    assert _completed_metric(web_a, nora) == _completed_metric(web_b, nora) == CASES
    print(
        f"\n{CASES} cases through 2 web nodes and {len(workers)} workers in {time.monotonic() - began:.1f} s"
    )
