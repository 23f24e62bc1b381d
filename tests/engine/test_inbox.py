"""The inbox query: visibility, filters, sorts, keyset paging and counts (engine/inbox.py).

Task rows are written directly, with the dates, groups and assignees each
test needs; one test runs a real process to see the engine's own rows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy.orm as so

import engine
from engine.models import HumanTaskExclusion
from tests.conftest import FIXTURES

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
# user: {organisation: (roles, groups)}
PEOPLE = {
    "ann": {"north": (["case_handler"], ["a", "b"]), "south": (["case_handler"], [])},
    "bob": {"north": (["case_handler"], ["b"])},
    "aud": {"north": (["auditor"], ["a"]), "south": (["requester"], [])},
    "eve": {"south": (["case_handler"], ["a"])},
}


class Tasks:
    """Writes task rows (each in a case of its own) and remembers their ids by name."""

    def __init__(self, session: so.Session) -> None:
        self.session = session
        self.ids: dict[str, int] = {}
        self.users = {name: engine.get_user(session, name).id for name in PEOPLE}
        self.clock = itertools.count()
        deployment = engine.Deployment(name="inbox", content_hash="inbox")
        self.definition = engine.ProcessDefinition(
            deployment=deployment, process_id="p1", name="P1", version=1, content_hash="inbox"
        )
        session.add(self.definition)

    def add(
        self,
        name: str,
        *,
        org: str = "north",
        group: str | None = None,
        assignee: str | None = None,
        excluded: tuple[str, ...] = (),
        due: int | None = None,
        created: int | None = None,
        state: str = "ready",
        process: str = "p1",
        title: str = "",
        key: str | None = None,
    ) -> int:
        """Add a task; *due* and *created* are hours after T0 (created: the next tick by default)."""
        organisation = engine.get_organisation(self.session, org)
        instance = engine.ProcessInstance(
            definition=self.definition,
            organisation_id=organisation.id,
            process_id=process,
            status="running",
            title=title,
            business_key=key,
            state="",
            serializer_version="1",
        )
        task = engine.HumanTask(
            instance=instance,
            organisation_id=organisation.id,
            process_id=process,
            task_uuid=str(uuid.uuid4()),
            bpmn_id=name.replace(" ", "_"),
            name=name,
            candidate_group=group,
            assignee_id=self.users[assignee] if assignee else None,
            state=state,
            due_at=T0 + dt.timedelta(hours=due) if due is not None else None,
            created_at=T0 + dt.timedelta(hours=created if created is not None else next(self.clock)),
            exclusions=[HumanTaskExclusion(user_id=self.users[u]) for u in excluded],
        )
        self.session.add(task)
        self.session.flush()
        self.ids[name] = task.id
        return task.id

    def names(self, tasks: list[engine.HumanTask]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[t.id] for t in tasks]


@pytest.fixture
def tasks(session_factory: so.sessionmaker[so.Session]) -> Iterator[Tasks]:
    """Organisations north and south with the users of ``PEOPLE``, and a :class:`Tasks` writer."""
    with session_factory.begin() as s:
        for org in ("north", "south"):
            engine.add_organisation(s, org, name=org.title())
        for username, memberships in PEOPLE.items():
            for org, (roles, groups) in memberships.items():
                engine.add_user(s, username, organisation=org, roles=roles, groups=groups)
    with session_factory() as s, s.begin():
        assert engine.get_organisation(s, "north").id == NORTH
        yield Tasks(s)


def north(**kwargs: Any) -> engine.TaskFilter:
    """A filter for organisation north (the first made on the empty database) and *kwargs*."""
    return engine.TaskFilter(organisation_id=NORTH, **kwargs)


NORTH = 1


def visible(tasks: Tasks, user: str, where: engine.TaskFilter | None = None) -> list[str]:
    """The names of the tasks *user* sees (oldest first)."""
    found = engine.matching_tasks(tasks.session, user_id=tasks.users[user], where=where or north())
    return tasks.names(found)


def walk(tasks: Tasks, user: str, where: engine.TaskFilter, sort: str, limit: int) -> list[list[str]]:
    """Follow the next-page cursors from the first page to the last; return each page's names."""
    pages: list[list[str]] = []
    after = None
    while True:
        page = engine.inbox_page(
            tasks.session, user_id=tasks.users[user], where=where, sort=sort, limit=limit, after=after
        )
        pages.append(tasks.names(page.tasks))
        assert len(pages) < 50, "the cursors go round in circles"
        if page.next_cursor is None:
            return pages
        after = page.next_cursor


# -- visibility ---------------------------------------------------------------------------------


def test_assigned_tasks_are_seen_only_by_their_assignee(tasks: Tasks) -> None:
    tasks.add("claimed by ann", group="b", assignee="ann")
    tasks.add("given to bob outside his groups", group="a", assignee="bob")
    assert visible(tasks, "ann") == ["claimed by ann"]  # not bob's, though ann is in group a
    assert visible(tasks, "bob") == ["given to bob outside his groups"]  # not ann's, though in group b


def test_unassigned_tasks_are_seen_by_their_group(tasks: Tasks) -> None:
    tasks.add("for a", group="a")
    tasks.add("for b", group="b")
    tasks.add("for c", group="c")
    assert visible(tasks, "ann") == ["for a", "for b"]
    assert visible(tasks, "bob") == ["for b"]


def test_tasks_without_a_group_are_seen_by_every_member_who_works_on_tasks(tasks: Tasks) -> None:
    tasks.add("anyone")
    assert visible(tasks, "ann") == visible(tasks, "bob") == ["anyone"]


def test_excluded_users_do_not_see_the_task(tasks: Tasks) -> None:
    tasks.add("ann started it", group="b", excluded=("ann",))
    tasks.add("ann started it too", assignee="ann", excluded=("ann",))
    assert visible(tasks, "ann") == []
    assert visible(tasks, "bob") == ["ann started it"]


def test_auditors_see_no_tasks_to_work_on(tasks: Tasks) -> None:
    tasks.add("for a", group="a")
    tasks.add("anyone")
    tasks.add("assigned to the auditor", assignee="aud")
    assert visible(tasks, "aud") == []
    assert engine.inbox_counts(tasks.session, user_id=tasks.users["aud"], where=north()).all == 0


def test_tasks_of_another_organisation_are_not_seen(tasks: Tasks) -> None:
    tasks.add("south, anyone", org="south")
    tasks.add("south, group a", org="south", group="a")
    tasks.add("north, anyone")
    assert visible(tasks, "eve") == []  # not a member of north
    everywhere = engine.TaskFilter()
    assert visible(tasks, "eve", everywhere) == ["south, anyone", "south, group a"]
    # Ann is in group a of north only; the role counts per organisation (aud requests in south).
    assert visible(tasks, "ann", everywhere) == ["south, anyone", "north, anyone"]
    assert visible(tasks, "aud", everywhere) == ["south, anyone"]


def test_visibility_is_the_rule_check_may_work_on_enforces(tasks: Tasks) -> None:
    combinations = list(
        itertools.product(
            ("north", "south"), (None, "a", "b", "c"), (None, "ann", "bob", "aud"), ((), ("ann",), ("bob",))
        )
    )
    for number, (org, group, assignee, excluded) in enumerate(combinations):
        tasks.add(f"task {number}", org=org, group=group, assignee=assignee, excluded=excluded)
    everywhere = engine.TaskFilter()
    for username, user_id in tasks.users.items():
        user = tasks.session.get(engine.User, user_id)
        assert user is not None
        expected = []
        for number, (org, group, assignee, excluded) in enumerate(combinations):
            roles, groups = PEOPLE[username].get(org, ([], []))
            may = bool(engine.TASK_ROLES & set(roles)) and username not in excluded
            if assignee is not None:
                may = may and assignee == username
            else:
                may = may and (group is None or group in groups)
            task = tasks.session.get(engine.HumanTask, tasks.ids[f"task {number}"])
            assert task is not None
            try:
                engine.check_may_work_on(tasks.session, task, user)
                allowed = True
            except (engine.NotFoundError, engine.PermissionDeniedError):
                allowed = False
            assert may == allowed, (username, org, group, assignee, excluded)
            if may:
                expected.append(f"task {number}")
        assert visible(tasks, username, everywhere) == expected, username
        counts = engine.inbox_counts(tasks.session, user_id=user_id, where=everywhere)
        assert counts.all == len(expected), username


def test_the_inbox_shows_the_engine_s_own_task_rows(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "approval")
        instance = engine.start_instance(s, "approval", organisation="north", user="north-req", data={})
    with session_factory() as s:
        where = engine.TaskFilter(organisation_id=instance.organisation_id)
        requester = engine.get_user(s, "north-req").id
        page = engine.inbox_page(s, user_id=requester, where=where, limit=10)
        assert [(t.instance_id, t.bpmn_id) for t in page.tasks] == [(instance.id, "request")]
        assert page.tasks[0].instance.title == instance.title


# -- filters ------------------------------------------------------------------------------------


def test_filters(tasks: Tasks) -> None:
    first = tasks.add("review", title="Laptops for the school", key="DNR-2026/17")
    tasks.add("approve", process="p2", assignee="ann", title="Chairs")
    tasks.add("archive", state="completed")
    tasks.add("all% sure_thing")
    instance = engine.get_task(tasks.session, first).instance_id
    assert visible(tasks, "ann", north(instance_id=instance)) == ["review"]
    assert visible(tasks, "ann", north(state=None)) == ["review", "approve", "archive", "all% sure_thing"]
    assert visible(tasks, "ann", north(view="mine")) == ["approve"]
    assert visible(tasks, "ann", north(view="group")) == ["review", "all% sure_thing"]
    assert visible(tasks, "ann", north(process_id="p2")) == ["approve"]
    assert visible(tasks, "ann", north(text="REV")) == ["review"]  # task name, any case
    assert visible(tasks, "ann", north(text="laptops")) == ["review"]  # case title
    assert visible(tasks, "ann", north(text="dnr-2026")) == ["review"]  # business key
    assert visible(tasks, "ann", north(text=str(instance))) == ["review"]  # case number
    # % and _ are literal: as wildcards they would match "Laptops" and "review" too.
    assert visible(tasks, "ann", north(text="l%")) == ["all% sure_thing"]
    assert visible(tasks, "ann", north(text="e_t")) == ["all% sure_thing"]
    assert visible(tasks, "ann", north(text="e_i")) == []
    assert visible(tasks, "ann", north(text="nothing like it")) == []


def test_unknown_views_sorts_and_views_without_a_user_are_refused(tasks: Tasks) -> None:
    with pytest.raises(engine.DataError, match="view 'everything'"):
        visible(tasks, "ann", north(view="everything"))
    with pytest.raises(engine.DataError, match="needs a user"):
        engine.matching_tasks(tasks.session, where=north(view="mine"))
    with pytest.raises(engine.DataError, match="sort 'priority'"):
        engine.inbox_page(tasks.session, user_id=tasks.users["ann"], where=north(), sort="priority", limit=5)


# -- sorts and paging ---------------------------------------------------------------------------


@pytest.fixture
def many(tasks: Tasks) -> Tasks:
    """Eleven tasks Ann sees, in every order, with ties on due date, creation time and name."""
    tasks.add("delta", due=30, created=5)
    tasks.add("alpha", due=10, created=3)
    tasks.add("echo", created=1)  # no due date
    tasks.add("bravo", due=10, created=3, assignee="ann")  # same due and created as alpha: by id
    tasks.add("charlie", due=20, created=2, group="a")
    tasks.add("foxtrot", created=0, group="b")
    tasks.add("golf", due=5, created=9, assignee="ann")
    tasks.add("hotel", created=1)  # same created as echo, no due date: by id
    tasks.add("india", due=40, created=4, group="a")
    tasks.add("juliet", due=1, created=8)
    tasks.add("kilo", due=20, created=2, group="b")
    # Not Ann's: they must never show up on a page.
    tasks.add("lima", group="c", due=2)
    tasks.add("mike", assignee="bob", due=3)
    tasks.add("november", excluded=("ann",), due=4)
    return tasks


DUE = ["juliet", "golf", "alpha", "bravo", "charlie", "kilo", "delta", "india", "foxtrot", "echo", "hotel"]
CREATED = [
    "foxtrot",
    "echo",
    "hotel",
    "charlie",
    "kilo",
    "alpha",
    "bravo",
    "india",
    "delta",
    "juliet",
    "golf",
]
NAME = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo"]


@pytest.mark.parametrize(("sort", "order"), [("due", DUE), ("created", CREATED), ("name", NAME)])
@pytest.mark.parametrize("limit", [1, 3, 4, 11, 20])
def test_pages_hold_every_visible_task_once_in_order(
    many: Tasks, sort: str, order: list[str], limit: int
) -> None:
    pages = walk(many, "ann", north(), sort, limit)
    assert [name for page in pages for name in page] == order
    assert all(len(page) == limit for page in pages[:-1]) and 0 < len(pages[-1]) <= limit


@pytest.mark.parametrize(("view", "sort"), [("mine", "due"), ("group", "due"), ("group", "name")])
def test_each_view_pages_in_the_same_order(many: Tasks, view: str, sort: str) -> None:
    order = {"due": DUE, "name": NAME}[sort]
    mine = {"bravo", "golf"}
    expected = [n for n in order if (n in mine) == (view == "mine")]
    assert [n for page in walk(many, "ann", north(view=view), sort, 2) for n in page] == expected


def test_previous_pages_are_the_pages_walked_forward(many: Tasks) -> None:
    ann = many.users["ann"]
    forward = []
    page = engine.inbox_page(many.session, user_id=ann, where=north(), limit=3)
    assert page.previous_cursor is None
    while True:
        forward.append(many.names(page.tasks))
        if page.next_cursor is None:
            break
        page = engine.inbox_page(many.session, user_id=ann, where=north(), limit=3, after=page.next_cursor)
    backward = [many.names(page.tasks)]
    while page.previous_cursor is not None:
        page = engine.inbox_page(
            many.session, user_id=ann, where=north(), limit=3, before=page.previous_cursor
        )
        backward.append(many.names(page.tasks))
    assert backward[::-1] == forward
    assert page.previous_cursor is None and page.next_cursor is not None


def test_a_task_arriving_between_pages_does_not_repeat_or_hide_others(many: Tasks) -> None:
    ann = many.users["ann"]
    first = engine.inbox_page(many.session, user_id=ann, where=north(), sort="created", limit=4)
    assert many.names(first.tasks) == CREATED[:4]
    many.add("oscar", created=-1)  # sorts before the cursor: not on the pages after it
    many.add("papa", created=100)  # sorts after everything: on the last page
    rest = []
    after = first.next_cursor
    while after is not None:
        page = engine.inbox_page(
            many.session, user_id=ann, where=north(), sort="created", limit=4, after=after
        )
        rest += many.names(page.tasks)
        after = page.next_cursor
    assert rest == [*CREATED[4:], "papa"]


def test_a_cursor_past_the_end_gives_the_first_page(many: Tasks) -> None:
    ann = many.users["ann"]
    last = engine.inbox_page(many.session, user_id=ann, where=north(), sort="name", limit=11)
    cursor = engine.inbox_cursor("name", last.tasks[-1])
    page = engine.inbox_page(many.session, user_id=ann, where=north(), sort="name", limit=4, after=cursor)
    assert many.names(page.tasks) == NAME[:4] and page.previous_cursor is None


def test_cursors_are_url_safe_and_checked(many: Tasks) -> None:
    ann = many.users["ann"]
    page = engine.inbox_page(many.session, user_id=ann, where=north(), limit=2)
    assert page.next_cursor is not None
    assert all(c.isalnum() or c in "-_" for c in page.next_cursor)
    for cursor, sort in [
        ("not-a-cursor", "due"),
        (page.next_cursor, "name"),  # made for another sort
        (page.next_cursor[:-3], "due"),  # cut
        (engine.inbox_cursor("created", many.session.get(engine.HumanTask, many.ids["alpha"])), "due"),
    ]:
        with pytest.raises(engine.DataError, match="Invalid inbox cursor"):
            engine.inbox_page(many.session, user_id=ann, where=north(), sort=sort, limit=2, after=cursor)


# -- counts -------------------------------------------------------------------------------------


def test_counts_by_view(many: Tasks) -> None:
    def counts(user: str, **kwargs: Any) -> engine.InboxCounts:
        return engine.inbox_counts(many.session, user_id=many.users[user], where=north(**kwargs))

    assert (counts("ann").mine, counts("ann").group, counts("ann").all) == (2, 9, 11)
    assert (counts("bob").mine, counts("bob").group) == (1, 8)
    assert counts("ann", text="alpha").all == 1
    assert counts("ann", process_id="p2").all == 0
    assert counts("ann", view="mine").all == 11  # the view does not narrow the counts
