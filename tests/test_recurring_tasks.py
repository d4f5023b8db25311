"""Recurring tasks through the API (issue 23): the new fields, the one successor that completing an
occurrence creates, the end of a series, skip, and a reminder re-armed when it moves.

The clock is fixed (django.utils.timezone.now, as tasks/services.py reads it) in March 2027, the
month Europe/Berlin changes to summer time (on Sunday the 28th): a weekly 09:00 task is due at 08:00Z
before it and at 07:00Z after it.
"""

import re
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authbridge.models import User
from tasks.models import Task
from tests.support.api import iso

NOW = datetime(2027, 3, 17, 12, 0, tzinfo=UTC)  # a Wednesday
MONDAY = datetime(2027, 3, 22, 8, 0, tzinfo=UTC)  # 09:00 in Berlin (CET, +01:00)
NEXT_MONDAY = datetime(2027, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 in Berlin (CEST, +02:00)
HOUR = timedelta(hours=1)
WEEKLY = "FREQ=WEEKLY;BYDAY=MO"

CANNOT_SKIP = {
    "status": 409,
    "code": "cannot_skip",
    "message": "Only an open recurring task whose series goes on, and whose next occurrence does not exist "
    "yet, can skip to it.",
}
NOT_FOUND = {"status": 404, "code": "not_found", "message": "Not found."}
PRECONDITION_FAILED = {
    "status": 412,
    "code": "precondition_failed",
    "message": "The task has changed since you read it (If-Match). Fetch it again.",
}
# Read before the fixture below replaces it, for what compares against the real clock.
REAL_NOW = timezone.now


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """The server's time, moved by the test: `clock.now = ...`."""
    clock = SimpleNamespace(now=NOW)
    monkeypatch.setattr("tasks.services.timezone.now", lambda: clock.now)
    return clock


def v1_tasks(client):
    return "/api/v1/tasks"


def compat_tasks(client):
    return f"/api/{client.sub}/tasks"


both_families = pytest.mark.parametrize("tasks_of", [v1_tasks, compat_tasks], ids=["v1", "compat"])


def weekly_meeting(**fields):
    """A weekly task with a reminder an hour before, as a client sends it."""
    return {
        "title": "Team meeting",
        "description": "Room 4",
        "priority": "high",
        "tags": ["Work", "meetings"],
        "recurrence": WEEKLY,
        "due_at": "2027-03-22T09:00:00+01:00",
        "remind_at": "2027-03-22T08:00:00+01:00",
        "time_zone": "Europe/Berlin",
        **fields,
    }


def create(client, tasks_of=v1_tasks, **fields):
    response = client.post(tasks_of(client), weekly_meeting(**fields), format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()


def read(client, task_id):
    response = client.get(f"/api/v1/tasks/{task_id}")
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def tasks_titled(client, title="Team meeting"):
    return Task.objects.filter(owner__sub=client.sub, title=title)


def completed(task, successor_id, at=NOW):
    """The task as the completing write returns it."""
    return {
        **task,
        "completed": True,
        "completed_at": iso(at),
        "next_occurrence": successor_id,
        "updated_at": iso(at),
    }


def successor(task, successor_id, due_at, remind_at, at=NOW):
    """The open occurrence created when `task` was completed at `at`."""
    return {
        **task,
        "id": successor_id,
        "completed": False,
        "completed_at": None,
        "due_at": iso(due_at),
        "remind_at": iso(remind_at),
        "reminded_at": None,
        "next_occurrence": None,
        "created_at": iso(at),
        "updated_at": iso(at),
    }


def patch_completed(client, tasks_of, task, **headers):
    return client.patch(f"{tasks_of(client)}/{task['id']}", {"completed": True}, format="json", **headers)


def put_completed(client, tasks_of, task):
    # The task as read, sent back whole: the read-only fields in it are ignored.
    return client.put(f"{tasks_of(client)}/{task['id']}", {**task, "completed": True}, format="json")


def toggle(client, tasks_of, task, **headers):
    return client.patch(f"{compat_tasks(client)}/{task['id']}/complete", **headers)


def complete(client, task, tasks_of=v1_tasks):
    response = patch_completed(client, tasks_of, task)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


# The fields


@both_families
def test_a_weekly_task_with_a_reminder_is_created_with_every_field(alice, tasks_of):
    response = alice.post(tasks_of(alice), weekly_meeting(recurrence=f"RRULE:{WEEKLY}"), format="json")

    assert response.status_code == HTTPStatus.CREATED, response.content
    assert response.json() == {
        "id": response.json()["id"],
        "title": "Team meeting",
        "description": "Room 4",
        "completed": False,
        "completed_at": None,
        "priority": "high",
        "due_at": "2027-03-22T08:00:00Z",
        "tags": ["meetings", "Work"],
        "recurrence": WEEKLY,
        "time_zone": "Europe/Berlin",
        "repeat_from": "due",
        "remind_at": "2027-03-22T07:00:00Z",
        "reminded_at": None,
        "next_occurrence": None,
        "created_at": iso(NOW),
        "updated_at": iso(NOW),
    }
    assert read(alice, response.json()["id"]) == response.json()


@both_families
def test_a_task_created_without_the_new_fields_gets_their_defaults(alice, tasks_of):
    response = alice.post(tasks_of(alice), {"title": "Once"}, format="json")

    assert response.status_code == HTTPStatus.CREATED
    assert response.json() == {
        "id": response.json()["id"],
        "title": "Once",
        "description": "",
        "completed": False,
        "completed_at": None,
        "priority": "medium",
        "due_at": None,
        "tags": [],
        "recurrence": None,
        "time_zone": "UTC",
        "repeat_from": "due",
        "remind_at": None,
        "reminded_at": None,
        "next_occurrence": None,
        "created_at": iso(NOW),
        "updated_at": iso(NOW),
    }


# Completing an occurrence


@pytest.mark.parametrize(
    ("tasks_of", "write"),
    [
        (v1_tasks, patch_completed),
        (compat_tasks, patch_completed),
        (v1_tasks, put_completed),
        (compat_tasks, put_completed),
        (compat_tasks, toggle),
    ],
    ids=["v1-patch", "compat-patch", "v1-put", "compat-put", "compat-toggle"],
)
def test_completing_an_occurrence_creates_its_successor_and_returns_the_task_pointing_at_it(
    alice, tasks_of, write
):
    task = create(alice, tasks_of)

    response = write(alice, tasks_of, task)

    assert response.status_code == HTTPStatus.OK, response.content
    following = tasks_titled(alice).exclude(pk=task["id"]).get()
    assert response.json() == completed(task, following.pk)
    assert read(alice, task["id"]) == response.json()
    # 09:00 in Berlin the next Monday, after the change to summer time; the reminder an hour before.
    assert read(alice, following.pk) == successor(task, following.pk, NEXT_MONDAY, NEXT_MONDAY - HOUR)
    assert following.owner.sub == alice.sub
    assert tasks_titled(alice).count() == 2


@pytest.fixture
def staff(db):
    client = Client()
    client.force_login(
        User.objects.create(username="admin", email="admin@example.com", is_staff=True, is_superuser=True)
    )
    return client


def test_completing_an_occurrence_in_the_admin_creates_its_successor(alice, staff):
    task = create(alice)
    owner = Task.objects.get(pk=task["id"]).owner_id

    # The change form as the admin shows it (its times in settings.TIME_ZONE, UTC), with "completed" ticked.
    response = staff.post(
        f"/admin/tasks/task/{task['id']}/change/",
        {
            "owner": owner,
            "title": "Team meeting",
            "description": "Room 4",
            "priority": 3,
            "due_at_0": "2027-03-22",
            "due_at_1": "08:00:00",
            "tag_names": "meetings\nWork",
            "completed": "on",
            "recurrence": WEEKLY,
            "time_zone": "Europe/Berlin",
            "repeat_from": "due",
            "remind_at_0": "2027-03-22",
            "remind_at_1": "07:00:00",
        },
    )

    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[-2000:]
    following = tasks_titled(alice).exclude(pk=task["id"]).get()
    assert read(alice, task["id"]) == completed(task, following.pk)
    assert read(alice, following.pk) == successor(task, following.pk, NEXT_MONDAY, NEXT_MONDAY - HOUR)


@both_families
def test_a_completion_after_missed_occurrences_skips_them_and_is_never_in_the_past(alice, tasks_of):
    # Due three Mondays ago at 09:00 in Berlin: the 8th and the 15th were missed too.
    task = create(alice, tasks_of, due_at="2027-03-01T09:00:00+01:00", remind_at="2027-03-01T08:45:00+01:00")

    done = complete(alice, task, tasks_of)

    assert read(alice, done["next_occurrence"]) == successor(
        task, done["next_occurrence"], MONDAY, MONDAY - timedelta(minutes=15)
    )


def test_a_completion_after_the_due_date_on_its_own_day_moves_to_the_next_occurrence(alice, clock):
    task = create(alice)
    clock.now = MONDAY + timedelta(hours=5)

    done = complete(alice, task)

    assert done == completed(task, done["next_occurrence"], at=clock.now)
    assert read(alice, done["next_occurrence"])["due_at"] == iso(NEXT_MONDAY)


@pytest.mark.parametrize(
    ("rule", "completed_at", "due_at"),
    [
        # 00:30 on Sunday the 21st in Berlin (still the 20th in UTC): three days later, at 09:00.
        (
            "FREQ=DAILY;INTERVAL=3",
            datetime(2027, 3, 20, 23, 30, tzinfo=UTC),
            datetime(2027, 3, 24, 8, 0, tzinfo=UTC),
        ),
        # A week after Wednesday the 24th, across the change to summer time: still 09:00.
        ("FREQ=WEEKLY", datetime(2027, 3, 24, 10, 0, tzinfo=UTC), datetime(2027, 3, 31, 7, 0, tzinfo=UTC)),
        # Two months after an early completion, however far the due date is.
        ("FREQ=MONTHLY;INTERVAL=2", NOW, datetime(2027, 5, 17, 7, 0, tzinfo=UTC)),
    ],
    ids=["daily-local-date", "weekly-across-dst", "monthly-early"],
)
def test_repeat_from_completion_counts_intervals_from_the_local_day_of_the_completion(
    alice, clock, rule, completed_at, due_at
):
    task = create(alice, recurrence=rule, repeat_from="completion")
    assert task["repeat_from"] == "completion"
    clock.now = completed_at

    done = complete(alice, task)

    assert done == completed(task, done["next_occurrence"], at=completed_at)
    assert read(alice, done["next_occurrence"]) == successor(
        task, done["next_occurrence"], due_at, due_at - HOUR, at=completed_at
    )


def test_count_counts_every_occurrence_and_the_last_one_has_no_successor(alice):
    # Occurrences 1 to 3 are 1, 8 and 15 March, all missed; the 22nd is the fourth and last.
    task = create(alice, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=4", due_at="2027-03-01T09:00:00+01:00")
    fourth = read(alice, complete(alice, task)["next_occurrence"])
    assert fourth["due_at"] == iso(MONDAY)

    done = complete(alice, fourth)

    assert done == completed(fourth, None)
    assert tasks_titled(alice).count() == 2


def test_a_series_whose_count_was_used_up_by_missed_occurrences_creates_nothing(alice):
    task = create(alice, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=3", due_at="2027-03-01T09:00:00+01:00")

    done = complete(alice, task)

    assert done == completed(task, None)
    assert tasks_titled(alice).count() == 1


@pytest.mark.parametrize(
    "until",
    ["20270325T000000Z", "20270329T065959Z"],
    ids=["days-before", "a-second-before"],
)
def test_a_series_past_its_until_creates_nothing(alice, until):
    task = create(alice, recurrence=f"{WEEKLY};UNTIL={until}")

    done = complete(alice, task)

    assert done == completed(task, None)
    assert tasks_titled(alice).count() == 1


def test_until_includes_an_occurrence_due_exactly_then(alice):
    task = create(alice, recurrence=f"{WEEKLY};UNTIL=20270329T070000Z")

    done = complete(alice, task)

    assert read(alice, done["next_occurrence"])["due_at"] == iso(NEXT_MONDAY)


def test_a_non_recurring_task_completed_creates_nothing(alice):
    task = create(alice, recurrence=None)

    done = complete(alice, task)

    assert done == completed(task, None)
    assert tasks_titled(alice).count() == 1


# At most one successor per occurrence


@both_families
def test_completing_again_after_reopening_creates_no_second_successor(alice, tasks_of):
    task = create(alice, tasks_of)
    first = complete(alice, task, tasks_of)

    reopened = alice.patch(f"{tasks_of(alice)}/{task['id']}", {"completed": False}, format="json")
    again = complete(alice, task, tasks_of)

    assert reopened.status_code == HTTPStatus.OK
    assert reopened.json() == {**first, "completed": False, "completed_at": None}
    assert again == first
    assert tasks_titled(alice).count() == 2


def test_toggling_an_occurrence_back_and_forth_creates_one_successor(alice):
    task = create(alice)

    responses = [toggle(alice, compat_tasks, task) for _ in range(5)]

    assert [response.status_code for response in responses] == [HTTPStatus.OK] * 5
    assert [response.json()["completed"] for response in responses] == [True, False, True, False, True]
    following = tasks_titled(alice).exclude(pk=task["id"]).get()
    assert {response.json()["next_occurrence"] for response in responses} == {following.pk}


@both_families
def test_a_retried_completion_creates_one_successor_and_answers_the_same(alice, tasks_of):
    task = create(alice, tasks_of)

    first = patch_completed(alice, tasks_of, task)
    retry = patch_completed(alice, tasks_of, task)

    assert first.status_code == retry.status_code == HTTPStatus.OK
    assert retry.json() == first.json()
    assert tasks_titled(alice).count() == 2


@both_families
def test_a_create_retried_with_its_idempotency_key_then_completed_twice_makes_one_successor(
    alice, clock, tasks_of
):
    # The key's record is stamped by the real clock (its default is timezone.now as imported): the
    # server's must agree, or the record reads as expired.
    clock.now = REAL_NOW()
    key = "weekly-meeting-1"
    created = [
        alice.post(tasks_of(alice), weekly_meeting(), format="json", HTTP_IDEMPOTENCY_KEY=key)
        for _ in range(2)
    ]
    assert [response.status_code for response in created] == [HTTPStatus.CREATED] * 2
    assert created[1]["Idempotent-Replayed"] == "true"
    task = created[0].json()

    completions = [
        alice.patch(
            f"{tasks_of(alice)}/{task['id']}", {"completed": True}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        for _ in range(2)
    ]

    assert [response.status_code for response in completions] == [HTTPStatus.OK] * 2
    assert completions[0].json() == completions[1].json()
    assert tasks_titled(alice).count() == 2


@pytest.mark.parametrize("write", [patch_completed, toggle], ids=["patch", "toggle"])
def test_a_completion_with_a_stale_if_match_is_412_and_creates_nothing(alice, write):
    task = create(alice)
    stale = alice.get(f"/api/v1/tasks/{task['id']}")["ETag"]
    renamed = alice.patch(f"/api/v1/tasks/{task['id']}", {"title": "Team meeting!"}, format="json").json()

    response = write(alice, compat_tasks, task, HTTP_IF_MATCH=stale)

    assert (response.status_code, response.json()) == (HTTPStatus.PRECONDITION_FAILED, PRECONDITION_FAILED)
    assert read(alice, task["id"]) == renamed
    assert tasks_titled(alice, "Team meeting!").count() == 1


# Reopening, ending the series, deleting


@both_families
def test_reopening_an_occurrence_leaves_its_successor(alice, tasks_of):
    task = create(alice, tasks_of)
    done = complete(alice, task, tasks_of)
    following = read(alice, done["next_occurrence"])

    reopened = alice.patch(f"{tasks_of(alice)}/{task['id']}", {"completed": False}, format="json")

    assert reopened.status_code == HTTPStatus.OK
    assert reopened.json()["next_occurrence"] == following["id"]
    assert read(alice, following["id"]) == following


@both_families
def test_clearing_the_recurrence_ends_the_series_and_keeps_the_task(alice, tasks_of):
    task = create(alice, tasks_of)

    ended = alice.patch(f"{tasks_of(alice)}/{task['id']}", {"recurrence": None}, format="json")
    done = complete(alice, task, tasks_of)

    assert ended.status_code == HTTPStatus.OK
    assert ended.json() == {**task, "recurrence": None}
    assert done == completed({**task, "recurrence": None}, None)
    assert tasks_titled(alice).count() == 1


@both_families
def test_deleting_an_occurrence_deletes_only_it(alice, tasks_of):
    task = create(alice, tasks_of)
    following = read(alice, complete(alice, task, tasks_of)["next_occurrence"])

    deleted = alice.delete(f"{tasks_of(alice)}/{task['id']}")

    assert deleted.status_code == HTTPStatus.NO_CONTENT
    assert alice.get(f"/api/v1/tasks/{task['id']}").status_code == HTTPStatus.NOT_FOUND
    assert read(alice, following["id"]) == following
    assert list(tasks_titled(alice).values_list("pk", flat=True)) == [following["id"]]


def test_deleting_the_successor_leaves_the_completed_occurrence(alice):
    task = create(alice)
    done = complete(alice, task)

    deleted = alice.delete(f"/api/v1/tasks/{done['next_occurrence']}")

    assert deleted.status_code == HTTPStatus.NO_CONTENT
    assert read(alice, task["id"]) == done
    assert tasks_titled(alice).count() == 1


# What a completion costs


TABLE = re.compile(r"\b(tasks|authbridge)_[a-z_]+")


def sent_during(client, method, path, body=None):
    """(first word, first table named, inside a transaction?) of each statement the request sends,
    less the transaction's own BEGIN and COMMIT (SQLite's show up here, PostgreSQL's do not), and the
    savepoints the test's own transaction turns them into."""
    seen = []

    def spy(execute, sql, params, many, context):
        seen.append((sql, connection.in_atomic_block))
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(spy):
        response = getattr(client, method)(path, body, format="json")
    assert response.status_code == HTTPStatus.OK, response.content
    own = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")
    seen = [(sql, in_transaction) for sql, in_transaction in seen if sql.split()[0] not in own]
    sent = [query["sql"] for query in captured if query["sql"].split()[0] not in own]
    assert len(sent) == len(seen)  # the spy saw every statement Django logged, and no other
    return [(sql.split()[0], TABLE.search(sql).group(), in_transaction) for sql, in_transaction in seen]


# The statements of completing a task before recurring tasks existed (a63a49d^), on either database.
COMPLETION = [
    ("SELECT", "tasks_task", False),  # the task, with its tags' names
    ("UPDATE", "tasks_task", True),
    ("WITH", "authbridge_user", True),  # the change: INSERT INTO tasks_change after the owner's lock
]


@pytest.mark.django_db(transaction=True)  # the test's own transaction would hide the code's
@pytest.mark.parametrize("how", ["patch", "toggle"])
def test_completing_a_non_recurring_task_costs_what_it_did_before_recurrence(alice, how):
    task = create(alice, recurrence=None, tags=[])

    if how == "patch":
        statements = sent_during(alice, "patch", f"/api/v1/tasks/{task['id']}", {"completed": True})
    else:
        statements = sent_during(alice, "patch", f"/api/{alice.sub}/tasks/{task['id']}/complete")

    assert statements == COMPLETION
    assert tasks_titled(alice).count() == 1


@pytest.mark.django_db(transaction=True)
def test_completing_a_recurring_task_writes_its_successor_in_the_completing_transaction(alice):
    task = create(alice, tags=[])

    statements = sent_during(alice, "patch", f"/api/v1/tasks/{task['id']}", {"completed": True})

    assert statements[0] == COMPLETION[0]
    assert statements[-1] == COMPLETION[-1]
    assert all(in_transaction for _, _, in_transaction in statements[1:])
    assert ("INSERT", "tasks_task", True) in statements


def test_completing_a_recurring_task_without_tags_costs_one_more_insert(alice):
    task = create(alice, tags=[])

    statements = sent_during(alice, "patch", f"/api/v1/tasks/{task['id']}", {"completed": True})

    # The successor first, so the completing UPDATE also sets next_occurrence; then both changes.
    assert [statement for statement in statements if statement[0] != "SELECT"] == [
        ("INSERT", "tasks_task", True),
        ("UPDATE", "tasks_task", True),
        ("WITH", "authbridge_user", True),
    ]


# The change feed


def cursor_now(client):
    cursor = None
    while True:
        page = client.get("/api/v1/changes", {"cursor": cursor} if cursor else {}).json()
        cursor = page["cursor"]
        if not page["has_more"]:
            return cursor


def test_the_completion_and_its_successor_enter_the_change_feed(alice):
    task = create(alice)
    cursor = cursor_now(alice)

    done = complete(alice, task)

    page = alice.get("/api/v1/changes", {"cursor": cursor})
    assert page.status_code == HTTPStatus.OK
    following = read(alice, done["next_occurrence"])
    assert page.json()["changes"] == [
        {"kind": "upsert", "id": task["id"], "task": done},
        {"kind": "upsert", "id": following["id"], "task": following},
    ]


def test_a_skip_enters_the_change_feed(alice):
    task = create(alice)
    cursor = cursor_now(alice)

    skipped = alice.post(f"/api/v1/tasks/{task['id']}/skip")

    page = alice.get("/api/v1/changes", {"cursor": cursor})
    assert page.json()["changes"] == [{"kind": "upsert", "id": task["id"], "task": skipped.json()}]


# Skip


def skip_path(tasks_of, client, task_id):
    return f"{tasks_of(client)}/{task_id}/skip"


@both_families
def test_skip_moves_an_open_occurrence_to_the_next_one_with_its_reminder_re_armed(alice, tasks_of):
    task = create(alice, tasks_of)
    Task.objects.filter(pk=task["id"]).update(reminded_at=MONDAY - HOUR)

    response = alice.post(skip_path(tasks_of, alice, task["id"]))

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json() == {
        **task,
        "due_at": iso(NEXT_MONDAY),
        "remind_at": iso(NEXT_MONDAY - HOUR),
        "reminded_at": None,
    }
    assert read(alice, task["id"]) == response.json()
    assert tasks_titled(alice).count() == 1


def test_skip_moves_an_overdue_occurrence_one_step_even_into_the_past(alice):
    task = create(alice, due_at="2027-03-01T09:00:00+01:00", remind_at=None)

    response = alice.post(f"/api/v1/tasks/{task['id']}/skip")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {**task, "due_at": "2027-03-08T08:00:00Z"}


def test_skip_counts_towards_count_and_refuses_past_the_last_occurrence(alice):
    task = create(alice, recurrence=f"{WEEKLY};COUNT=2")
    path = f"/api/v1/tasks/{task['id']}/skip"

    first = alice.post(path)
    second = alice.post(path)

    assert first.status_code == HTTPStatus.OK
    assert first.json()["due_at"] == iso(NEXT_MONDAY)
    assert (second.status_code, second.json()) == (HTTPStatus.CONFLICT, CANNOT_SKIP)
    assert read(alice, task["id"]) == first.json()


@pytest.mark.parametrize(
    "fields",
    [
        {"completed": True},
        {"recurrence": None},
        {"recurrence": f"{WEEKLY};COUNT=1"},
        {"recurrence": f"{WEEKLY};UNTIL=20270328T000000Z"},
    ],
    ids=["completed", "not-recurring", "count-reached", "until-reached"],
)
@both_families
def test_skip_refuses_a_task_that_cannot_move_on_and_changes_nothing(alice, tasks_of, fields):
    task = create(alice, tasks_of, **fields)
    before = Task.objects.filter(pk=task["id"]).values().get()

    response = alice.post(skip_path(tasks_of, alice, task["id"]))

    assert (response.status_code, response.json()) == (HTTPStatus.CONFLICT, CANNOT_SKIP)
    assert Task.objects.filter(pk=task["id"]).values().get() == before


@both_families
def test_skip_of_someone_elses_task_is_404(alice, bob, tasks_of):
    task = create(alice)

    response = bob.post(skip_path(tasks_of, bob, task["id"]))

    assert (response.status_code, response.json()) == (HTTPStatus.NOT_FOUND, NOT_FOUND)
    assert read(alice, task["id"]) == task


@both_families
def test_skip_with_a_stale_if_match_is_412_and_moves_nothing(alice, tasks_of):
    task = create(alice, tasks_of)
    stale = alice.get(f"/api/v1/tasks/{task['id']}")["ETag"]
    renamed = alice.patch(f"/api/v1/tasks/{task['id']}", {"title": "Team meeting!"}, format="json").json()

    response = alice.post(skip_path(tasks_of, alice, task["id"]), HTTP_IF_MATCH=stale)

    assert (response.status_code, response.json()) == (HTTPStatus.PRECONDITION_FAILED, PRECONDITION_FAILED)
    assert read(alice, task["id"]) == renamed
    current = alice.get(f"/api/v1/tasks/{task['id']}")["ETag"]
    moved = alice.post(skip_path(tasks_of, alice, task["id"]), HTTP_IF_MATCH=current)
    assert (moved.status_code, moved.json()["due_at"]) == (HTTPStatus.OK, iso(NEXT_MONDAY))


# The reminder


@both_families
def test_moving_the_reminder_to_another_instant_re_arms_it(alice, tasks_of):
    task = create(alice, tasks_of)
    Task.objects.filter(pk=task["id"]).update(reminded_at=MONDAY - HOUR)

    response = alice.patch(
        f"{tasks_of(alice)}/{task['id']}", {"remind_at": "2027-03-22T08:30:00+01:00"}, format="json"
    )

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {**task, "remind_at": "2027-03-22T07:30:00Z", "reminded_at": None}


@both_families
def test_setting_the_reminder_to_the_same_instant_keeps_it_fired(alice, tasks_of):
    task = create(alice, tasks_of)
    Task.objects.filter(pk=task["id"]).update(reminded_at=MONDAY - HOUR)

    # The same instant, written with another offset.
    response = alice.patch(
        f"{tasks_of(alice)}/{task['id']}", {"remind_at": "2027-03-22T09:00:00+02:00"}, format="json"
    )

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {**task, "reminded_at": iso(MONDAY - HOUR)}


def test_the_successor_of_an_occurrence_whose_reminder_fired_is_armed(alice):
    task = create(alice)
    Task.objects.filter(pk=task["id"]).update(reminded_at=MONDAY - HOUR)

    done = complete(alice, task)

    assert done["reminded_at"] == iso(MONDAY - HOUR)
    assert read(alice, done["next_occurrence"])["reminded_at"] is None
