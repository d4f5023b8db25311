"""The event publisher (tasks/events.py), one poll at a time with a clock the test moves, sending to the
Dapr sidecar double (tests/support/dapr.py): what each write publishes, where, in what order, and what
happens when Dapr fails. tests/test_events_live.py runs it inside `manage.py run_worker`."""

import http.client
import json
import logging
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authbridge.models import User
from tasks import services
from tasks.events import BACKOFF_CAP, Publisher, backlog, pending_events
from tasks.models import Change, Tag, Task
from tests.support.clock import FakeClock
from tests.support.dapr import DROP, FAIL, DaprSidecar, slow

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TIMEOUT = 0.5  # the publisher's, in these tests; a "slow" sidecar answers after twice that


@pytest.fixture
def sidecar():
    double = DaprSidecar(components={"pubsub": {"task-events", "reminders"}})
    yield double
    double.stop()


@pytest.fixture
def events_on(settings, sidecar):
    settings.EVENTS_ENABLED = True
    settings.DAPR_HTTP_ENDPOINT = sidecar.url
    return settings


@pytest.fixture
def clock():
    return FakeClock(timezone.now())  # datetimes, advanced by timedeltas


@pytest.fixture
def publisher(sidecar, clock):
    # jitter 1.0: every backoff waits its whole ceiling, so the test knows when a user is due again.
    return Publisher(endpoint=sidecar.url, poll_seconds=1, timeout=TIMEOUT, clock=clock, jitter=lambda: 1.0)


def user_of(client):
    return User.objects.get(sub=client.sub)


def changes_of(client):
    return list(Change.objects.filter(owner__sub=client.sub).order_by("id"))


def received_for(sidecar, client):
    return [r for r in sidecar.requests() if r.partition_key == client.sub]


def poll_until_drained(publisher, clock, rounds=20):
    for _ in range(rounds):
        publisher.poll()
        if not pending_events(1):
            return
        clock.advance(timedelta(seconds=BACKOFF_CAP))
    raise AssertionError("events still wait")


def assert_envelope(received, change, *, type_, topic, data, sub, traceparent=None):
    """One request, attribute by attribute, as the CloudEvents SDK parsed it and as it was sent."""
    assert received.invalid is None, received.invalid
    assert received.method == "POST"
    assert (received.pubsub, received.topic) == ("pubsub", topic)
    assert received.query == {"metadata.partitionKey": [sub]}
    assert received.headers["content-type"] == "application/cloudevents+json"
    event = received.event
    assert event.get_specversion() == "1.0"
    assert event.get_id() == str(change.pk)
    assert event.get_source() == "todo-api"
    assert event.get_type() == type_
    assert event.get_subject() == str(change.task_id)
    assert event.get_time() == change.recorded_at
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == data
    assert event.get_extension("traceparent") == traceparent
    expected_names = {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"}
    assert set(received.envelope) == expected_names | ({"traceparent"} if traceparent else set())


def test_each_kind_of_write_publishes_its_type_on_its_topic_with_its_data(
    alice, events_on, sidecar, publisher
):
    created = alice.post(
        "/api/v1/tasks",
        {"title": "Plan", "tags": ["Work"], "remind_at": "2026-01-01T09:00:00Z"},
        format="json",
        HTTP_TRACEPARENT=TRACEPARENT,
    ).json()
    path = f"/api/v1/tasks/{created['id']}"
    put = alice.put(path, {"title": "Plan the week", "tags": ["Work"]}, format="json").json()
    patched = alice.patch(path, {"priority": "high"}, format="json").json()
    toggled = alice.patch(f"/api/{alice.sub}/tasks/{created['id']}/complete").json()
    reopened = alice.patch(f"/api/{alice.sub}/tasks/{created['id']}/complete").json()
    assert services.task_remind(created["id"], datetime(2026, 1, 1, 9, tzinfo=UTC), timezone.now())
    reminded = alice.get(path).json()
    staff = Client()
    staff.force_login(User.objects.create(username="admin", is_staff=True, is_superuser=True))
    work = Tag.objects.get(owner=user_of(alice), name="Work")
    staff.post(f"/admin/tasks/tag/{work.pk}/change/", {"owner": user_of(alice).pk, "name": "Job"})
    renamed = alice.get(path).json()
    assert alice.delete(path).status_code == HTTPStatus.NO_CONTENT

    publisher.poll()

    tasks, reminders = "task-events", "reminders"
    expected = [
        ("todo.task.created.v1", tasks, created, TRACEPARENT),
        ("todo.task.updated.v1", tasks, put, None),
        ("todo.task.updated.v1", tasks, patched, None),
        ("todo.task.completed.v1", tasks, toggled, None),
        ("todo.task.updated.v1", tasks, reopened, None),
        ("todo.reminder.due.v1", reminders, reminded, None),
        ("todo.task.updated.v1", tasks, renamed, None),
        ("todo.task.deleted.v1", tasks, None, None),
    ]
    changes = changes_of(alice)
    received = sidecar.requests()
    assert len(changes) == len(received) == len(expected)
    for request, change, (type_, topic, task, traceparent) in zip(received, changes, expected, strict=True):
        if type_ == "todo.task.deleted.v1":
            data = {"user_id": alice.sub, "id": created["id"]}
        else:
            data = {"user_id": alice.sub, "task": task}
        assert_envelope(
            request, change, type_=type_, topic=topic, data=data, sub=alice.sub, traceparent=traceparent
        )
    assert renamed["tags"] == ["Job"] and reminded["reminded_at"] is not None
    assert not Change.objects.filter(published_at__isnull=True).exists()
    assert publisher.published == 8


def test_a_completion_that_creates_the_next_occurrence_publishes_both(alice, events_on, sidecar, publisher):
    weekly = alice.post(
        "/api/v1/tasks",
        {"title": "Water plants", "due_at": "2026-12-07T08:00:00Z", "recurrence": "FREQ=WEEKLY"},
        format="json",
    ).json()
    completed = alice.patch(f"/api/v1/tasks/{weekly['id']}", {"completed": True}, format="json").json()
    successor = alice.get(f"/api/v1/tasks/{completed['next_occurrence']}").json()

    publisher.poll()

    _, completion, creation = sidecar.requests()
    assert (completion.envelope["type"], completion.envelope["data"]["task"]) == (
        "todo.task.completed.v1",
        completed,
    )
    assert (creation.envelope["type"], creation.envelope["data"]["task"]) == (
        "todo.task.created.v1",
        successor,
    )


def test_a_write_that_rolls_back_publishes_nothing(alice, events_on, sidecar, publisher):
    created = alice.post("/api/v1/tasks", {"title": "Kept"}, format="json").json()
    task = Task.objects.get(pk=created["id"])

    with pytest.raises(RuntimeError), transaction.atomic():
        services.task_update(task, title="Never seen")
        services.task_create(owner=task.owner, title="Never created")
        raise RuntimeError("the request failed after the writes")
    publisher.poll()

    (change,) = changes_of(alice)
    assert [r.envelope["id"] for r in sidecar.requests()] == [str(change.pk)]
    assert sidecar.requests()[0].envelope["data"]["task"] == created


@pytest.mark.parametrize(
    "failure", [FAIL, slow(TIMEOUT * 2), DROP], ids=["500", "slower-than-the-timeout", "dropped-connection"]
)
def test_a_failing_sidecar_delays_a_users_events_in_order_and_holds_up_no_one_else(
    alice, bob, events_on, sidecar, publisher, clock, failure
):
    for n in range(3):
        alice.post("/api/v1/tasks", {"title": f"alice {n}"}, format="json")
        bob.post("/api/v1/tasks", {"title": f"bob {n}"}, format="json")
    failing = {"on": True}
    sidecar.answer_with(lambda r: failure if failing["on"] and r.partition_key == alice.sub else None)

    publisher.poll()
    # Bob's three are out; alice's stream stopped at her first event.
    assert [r.envelope["data"]["task"]["title"] for r in received_for(sidecar, bob)] == [
        "bob 0",
        "bob 1",
        "bob 2",
    ]
    assert [r.envelope["data"]["task"]["title"] for r in received_for(sidecar, alice)] == ["alice 0"]

    publisher.poll()  # alice waits 1 s: she is not even queried
    assert len(received_for(sidecar, alice)) == 1
    clock.advance(timedelta(seconds=1))
    publisher.poll()  # tried again, failed again: she now waits 2 s
    assert len(received_for(sidecar, alice)) == 2
    clock.advance(timedelta(seconds=1.5))
    publisher.poll()
    assert len(received_for(sidecar, alice)) == 2
    bob.post("/api/v1/tasks", {"title": "bob 3"}, format="json")
    publisher.poll()  # bob's new event goes out while alice waits
    assert received_for(sidecar, bob)[-1].envelope["data"]["task"]["title"] == "bob 3"
    assert received_for(sidecar, bob)[-1].status == HTTPStatus.NO_CONTENT

    failing["on"] = False
    clock.advance(timedelta(seconds=0.5))
    publisher.poll()

    sent = received_for(sidecar, alice)
    assert [r.envelope["data"]["task"]["title"] for r in sent] == ["alice 0"] * 3 + ["alice 1", "alice 2"]
    assert len({r.envelope["id"] for r in sent[:3]}) == 1  # the same event each time
    for client in (alice, bob):
        # Each user's in order; a slow answer may still have been taken: a duplicate with the same id.
        delivered = [r.envelope["id"] for r in sidecar.delivered() if r.partition_key == client.sub]
        assert list(dict.fromkeys(delivered)) == [str(c.pk) for c in changes_of(client)]
    assert not pending_events(10)
    assert sidecar.invalid() == []


def test_backoff_doubles_from_1_s_to_a_cap_of_60_s_with_full_jitter(alice, events_on, sidecar, clock):
    draws = iter([1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 0.0])
    publisher = Publisher(endpoint=sidecar.url, poll_seconds=1, clock=clock, jitter=lambda: next(draws))
    alice.post("/api/v1/tasks", {"title": "Stuck"}, format="json")
    sidecar.answer_with(lambda r: FAIL)
    waits = []

    for _ in range(9):
        publisher.poll()
        (state,) = publisher.backoff.values()
        waits.append((state.until - clock()).total_seconds())
        clock.now = state.until

    assert waits == [1, 2, 4, 4, 16, 32, 60, 60, 0]
    assert len(sidecar.requests()) == 9


@pytest.mark.parametrize(
    ("setting", "value", "status"),
    [("EVENTS_PUBSUB", "kafka-pubsub", 404), ("EVENTS_TOPIC_TASKS", "tasks", 403)],
)
def test_403_and_404_are_logged_as_configuration_errors_and_retried(
    alice, events_on, sidecar, publisher, clock, caplog, setting, value, status
):
    alice.post("/api/v1/tasks", {"title": "Configured?"}, format="json")
    setattr(events_on, setting, value)

    with caplog.at_level(logging.INFO, logger="tasks.events"):
        publisher.poll()
        clock.advance(timedelta(seconds=1))
        publisher.poll()

    assert [r.status for r in sidecar.requests()] == [status, status]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "a configuration problem" in errors[0].getMessage()
    assert (errors[0].status, errors[0].topic) == (status, events_on.EVENTS_TOPIC_TASKS)
    assert json.loads(errors[0].dapr_error)["errorCode"] in ("ERR_PUBSUB_NOT_FOUND", "ERR_PUBSUB_FORBIDDEN")
    assert backlog()[0] == 1  # never dropped

    setattr(events_on, setting, {"EVENTS_PUBSUB": "pubsub", "EVENTS_TOPIC_TASKS": "task-events"}[setting])
    clock.advance(timedelta(seconds=2))
    publisher.poll()

    assert [r.status for r in sidecar.requests()] == [status, status, 204]
    assert backlog() == (0, None)


def test_it_warns_when_the_oldest_event_has_waited_over_a_minute(alice, events_on, sidecar, clock, caplog):
    publisher = Publisher(endpoint=sidecar.url, poll_seconds=1, clock=clock, jitter=lambda: 1.0)
    alice.post("/api/v1/tasks", {"title": "Waiting"}, format="json")
    sidecar.answer_with(lambda r: FAIL)

    with caplog.at_level(logging.WARNING, logger="tasks.events"):
        publisher.poll()
        clock.advance(timedelta(seconds=59))
        publisher.poll()
        assert not [r for r in caplog.records if hasattr(r, "oldest_age_seconds")]
        clock.advance(timedelta(seconds=11))  # looked at every 10 s
        publisher.poll()
        clock.advance(timedelta(seconds=10))
        publisher.poll()  # warned once a minute, not at every look

    (stale,) = [r for r in caplog.records if hasattr(r, "oldest_age_seconds")]
    assert (stale.levelno, stale.pending, stale.oldest_age_seconds) == (logging.WARNING, 1, 70)


def test_a_poll_reads_the_queue_in_one_query_and_marks_each_event_once(alice, bob, events_on, sidecar, clock):
    publisher = Publisher(endpoint=sidecar.url, poll_seconds=1, clock=clock, batch_size=4)
    for n in range(3):
        alice.post("/api/v1/tasks", {"title": f"alice {n}"}, format="json")
        bob.post("/api/v1/tasks", {"title": f"bob {n}"}, format="json")
    publisher.stale_checked_at = clock()  # the stale check's query is not part of this count

    with CaptureQueriesContext(connection) as queries:
        found = publisher.poll()

    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert found == 4
    if connection.vendor == "postgresql":
        # Per user, in a transaction (a savepoint in the test's), the claim of the user's stream.
        claim = ["SAVEPOINT", "SELECT", "UPDATE", "UPDATE", "RELEASE"]
        assert statements == ["SELECT", *claim, *claim]
        assert "pg_try_advisory_xact_lock" in queries.captured_queries[2]["sql"]
    else:
        assert statements == ["SELECT"] + ["UPDATE"] * 4
    assert "published_at" in queries.captured_queries[-2]["sql"]
    publisher.poll()
    assert len(sidecar.delivered()) == len(sidecar.requests()) == 6
    # The oldest four first (alice 0, bob 0, alice 1, bob 1), each user's in order, whatever the batches.
    by_user = {
        client.sub: [r.envelope["id"] for r in sidecar.delivered() if r.partition_key == client.sub]
        for client in (alice, bob)
    }
    assert by_user == {client.sub: [str(c.pk) for c in changes_of(client)] for client in (alice, bob)}
    assert {r.envelope["data"]["task"]["title"] for r in sidecar.delivered()[:4]} == {
        "alice 0",
        "bob 0",
        "alice 1",
        "bob 1",
    }


def test_an_event_another_publisher_marked_first_keeps_its_time(alice, events_on, sidecar, clock):
    alice.post("/api/v1/tasks", {"title": "Twice"}, format="json")
    first = Publisher(endpoint=sidecar.url, poll_seconds=1, clock=clock)
    second = Publisher(endpoint=sidecar.url, poll_seconds=1, clock=FakeClock(clock() + timedelta(seconds=5)))
    (read_by_second,) = pending_events(10)

    first.poll()
    assert second.send(read_by_second)  # it read the event before the first marked it

    (change,) = changes_of(alice)
    assert change.published_at == clock()
    assert [r.envelope["id"] for r in sidecar.delivered()] == [str(change.pk)] * 2  # a duplicate, same id


def test_with_events_off_nothing_is_recorded_published_or_grows(alice, settings, sidecar, publisher):
    settings.EVENTS_ENABLED = False
    for n in range(5):
        alice.post("/api/v1/tasks", {"title": f"Quiet {n}"}, format="json")

    publisher.poll()

    assert Change.objects.count() == 5
    assert not Change.objects.filter(event__isnull=False).exists()
    assert (backlog(), sidecar.requests()) == ((0, None), [])


def test_events_status_prints_how_many_wait_and_how_old_the_oldest_is(alice, events_on):
    out = StringIO()
    call_command("events_status", stdout=out)
    assert out.getvalue() == "0 events wait.\n"

    alice.post("/api/v1/tasks", {"title": "One"}, format="json")
    alice.post("/api/v1/tasks", {"title": "Two"}, format="json")
    Change.objects.update(recorded_at=timezone.now() - timedelta(seconds=90))
    out = StringIO()
    call_command("events_status", stdout=out)

    assert out.getvalue().startswith("2 events wait; the oldest was recorded 90 s ago (")


def test_a_user_without_a_better_auth_id_is_partitioned_by_the_local_id(db, events_on, sidecar, publisher):
    staff = User.objects.create(username="admin", is_staff=True)
    services.task_create(owner=staff, title="Staff task")

    publisher.poll()

    (received,) = sidecar.requests()
    assert received.partition_key == received.envelope["data"]["user_id"] == f"local:{staff.pk}"


def test_the_double_refuses_a_body_that_is_not_a_cloud_event(sidecar):
    conn = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=2)
    conn.request(
        "POST", "/v1.0/publish/pubsub/task-events", body=b"{}", headers={"Content-Type": "application/json"}
    )
    response = conn.getresponse()

    assert (response.status, json.loads(response.read())["errorCode"]) == (400, "ERR_PUBSUB_CLOUD_EVENTS_SER")
    (refused,) = sidecar.invalid()  # {} has no id, source or type
    assert "id" in refused.invalid
