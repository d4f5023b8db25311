"""The reminder worker, one poll at a time with a clock the test moves: what fires, when, and what
it costs an idle database (tasks/worker.py). tests/test_worker_live.py runs it as a process."""

import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from authbridge.models import User
from tasks import services
from tasks.models import Change, Task
from tasks.worker import ReminderWorker, due_reminders, due_reminders_query
from tests.support.clock import FakeClock
from todo_api.logging import JsonFormatter

pytestmark = pytest.mark.django_db

NINE = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    return FakeClock(NINE - timedelta(minutes=1))  # datetimes, advanced by timedeltas


@pytest.fixture
def worker(clock):
    return ReminderWorker(poll_seconds=1, clock=clock)


@pytest.fixture
def alice_user():
    return User.objects.create(username="alice-sub", sub="alice-sub")


def task(owner, remind_at=NINE, **fields):
    return services.task_create(owner=owner, title="Call the dentist", remind_at=remind_at, **fields)


def reminders(task):
    return Change.objects.filter(task_id=task.pk, action=Change.Action.REMINDED).count()


def test_it_fires_a_due_reminder_and_records_the_change(worker, clock, alice_user):
    dentist = task(alice_user)
    clock.advance(timedelta(minutes=1, seconds=2))

    worker.poll()

    dentist.refresh_from_db()
    assert dentist.reminded_at == NINE + timedelta(seconds=2)
    reminded = Change.objects.get(task_id=dentist.pk, action=Change.Action.REMINDED)
    assert reminded.owner_id == alice_user.pk
    assert worker.fired == 1


def test_it_fires_at_remind_at_exactly_and_not_a_moment_before(worker, clock, alice_user):
    dentist = task(alice_user)
    clock.now = NINE - timedelta(microseconds=1)

    worker.poll()
    dentist.refresh_from_db()
    assert (dentist.reminded_at, reminders(dentist)) == (None, 0)

    clock.now = NINE
    worker.poll()
    dentist.refresh_from_db()
    assert (dentist.reminded_at, reminders(dentist)) == (NINE, 1)


def test_it_does_not_fire_a_reminder_still_in_the_future(worker, clock, alice_user):
    later = task(alice_user, remind_at=NINE + timedelta(hours=1))
    clock.now = NINE + timedelta(minutes=59)

    worker.poll()

    later.refresh_from_db()
    assert (later.reminded_at, reminders(later)) == (None, 0)


def test_it_does_not_fire_for_a_completed_task(worker, clock, alice_user):
    done = task(alice_user, completed=True)
    clock.now = NINE + timedelta(seconds=1)

    worker.poll()

    done.refresh_from_db()
    assert (done.reminded_at, reminders(done)) == (None, 0)


def test_it_does_not_fire_for_a_deleted_task(worker, clock, alice_user):
    gone = task(alice_user)
    services.task_delete(gone)
    clock.now = NINE + timedelta(seconds=1)

    worker.poll()

    assert not Change.objects.filter(action=Change.Action.REMINDED).exists()
    assert worker.fired == 0


def test_a_task_completed_after_the_query_is_not_reminded(worker, clock, alice_user, monkeypatch):
    dentist = task(alice_user)
    clock.now = NINE + timedelta(seconds=1)
    # Completed between the worker's query and its claim: the claim's condition sees it.
    found = due_reminders(clock())
    services.task_toggle(dentist)
    monkeypatch.setattr("tasks.worker.due_reminders", lambda now, limit: found)

    worker.poll()

    dentist.refresh_from_db()
    assert (dentist.reminded_at, reminders(dentist)) == (None, 0)


def test_it_fires_a_reminder_once_however_often_it_polls(worker, clock, alice_user):
    dentist = task(alice_user)
    clock.now = NINE + timedelta(seconds=1)

    worker.poll()
    clock.advance(timedelta(seconds=1))
    worker.poll()
    ReminderWorker(poll_seconds=1, clock=clock).poll()  # a second worker

    dentist.refresh_from_db()
    assert (dentist.reminded_at, reminders(dentist)) == (NINE + timedelta(seconds=1), 1)


def test_a_claim_for_an_older_remind_at_does_not_fire_the_new_one(clock, alice_user):
    dentist = task(alice_user)
    Task.objects.filter(pk=dentist.pk).update(remind_at=NINE + timedelta(hours=1))

    # What a worker that read the row before it moved would claim.
    assert services.task_remind(dentist.pk, NINE, NINE + timedelta(seconds=1)) is False

    dentist.refresh_from_db()
    assert (dentist.reminded_at, reminders(dentist)) == (None, 0)


def test_moving_remind_at_re_arms_the_reminder(worker, clock, alice_user):
    dentist = task(alice_user)
    clock.now = NINE + timedelta(seconds=1)
    worker.poll()
    # What the API does when remind_at changes (tasks/services.py): a new instant, reminded_at cleared.
    Task.objects.filter(pk=dentist.pk).update(remind_at=NINE + timedelta(hours=1), reminded_at=None)

    worker.poll()
    dentist.refresh_from_db()
    assert (dentist.reminded_at, reminders(dentist)) == (None, 1)

    clock.now = NINE + timedelta(hours=1, seconds=3)
    worker.poll()
    dentist.refresh_from_db()
    assert (dentist.reminded_at, reminders(dentist)) == (NINE + timedelta(hours=1, seconds=3), 2)


def test_it_fires_the_oldest_first_and_a_batch_at_a_time(clock, alice_user):
    worker = ReminderWorker(poll_seconds=1, batch_size=3, clock=clock)
    tasks = [task(alice_user, remind_at=NINE - timedelta(minutes=n)) for n in range(5)]
    clock.now = NINE

    assert worker.poll() == 3  # a full batch: the loop queries again without waiting
    fired = {t.pk for t in Task.objects.filter(reminded_at__isnull=False)}
    assert fired == {t.pk for t in tasks[2:]}
    assert worker.poll() == 2
    assert worker.poll() == 0
    assert worker.fired == 5


def test_after_downtime_every_missed_reminder_fires_at_the_first_poll(worker, clock, alice_user):
    missed = [task(alice_user, remind_at=NINE - timedelta(days=n)) for n in range(1, 4)]
    clock.now = NINE

    worker.poll()

    assert all(reminders(t) == 1 for t in missed)


def test_an_idle_poll_is_one_query(worker, clock, alice_user):
    task(alice_user, remind_at=NINE + timedelta(hours=1))  # armed, not due
    task(alice_user, completed=True)
    clock.now = NINE + timedelta(minutes=1)

    with CaptureQueriesContext(connection) as queries:
        assert worker.poll() == 0

    (query,) = queries.captured_queries
    assert "ORDER BY" in query["sql"] and "LIMIT 100" in query["sql"]


def test_the_query_uses_the_partial_index_of_armed_reminders():
    queryset = due_reminders_query(NINE)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # A tiny table is scanned whole whatever the indexes; the plan is what a large one gets.
            cursor.execute("SET LOCAL enable_seqscan = off")
            plan = queryset.explain()
    else:
        plan = queryset.explain()
    assert "task_reminder_armed_idx" in plan


def test_it_logs_each_reminder_with_the_task_and_how_late_it_fired(worker, clock, alice_user, caplog):
    dentist = task(alice_user)
    clock.now = NINE + timedelta(milliseconds=1250)

    with caplog.at_level(logging.INFO, logger="tasks.worker"):
        worker.poll()

    (record,) = caplog.records
    line = json.loads(JsonFormatter().format(record))
    assert line["logger"] == "tasks.worker"
    assert (line["task_id"], line["late_ms"]) == (dentist.pk, 1250)
    assert line["remind_at"] == NINE.isoformat()


def test_run_logs_its_start_and_stop_and_returns_once_stopped(clock, caplog):
    stop = threading.Event()
    worker = ReminderWorker(poll_seconds=30, clock=clock, stop=stop)

    def run():
        try:
            worker.run()
        finally:
            connection.close()  # the thread's own

    thread = threading.Thread(target=run)

    with caplog.at_level(logging.INFO, logger="tasks.worker"):
        thread.start()
        stop.set()  # wakes the 30-second wait at once
        thread.join(5)

    assert not thread.is_alive()
    started, stopped = caplog.records
    assert (started.poll_seconds, started.database) == (30, connection.vendor)
    assert (stopped.message, stopped.fired) == ("worker stopped", 0)


def test_it_stops_between_claims_when_told(clock, alice_user, monkeypatch):
    stop = threading.Event()
    worker = ReminderWorker(poll_seconds=1, clock=clock, stop=stop)
    tasks = [task(alice_user, remind_at=NINE - timedelta(minutes=n)) for n in range(3)]
    clock.now = NINE
    original = services.task_remind

    def remind_then_stop(*args):
        fired = original(*args)
        stop.set()  # SIGTERM arrives during the first claim
        return fired

    monkeypatch.setattr(services, "task_remind", remind_then_stop)
    worker.poll()

    assert sum(reminders(t) for t in tasks) == 1


def test_a_failed_poll_is_logged_and_retried_on_a_new_connection(clock, monkeypatch, caplog):
    stop = threading.Event()
    worker = ReminderWorker(poll_seconds=0.01, clock=clock, stop=stop)
    polls = []

    def database_down(now, limit):
        polls.append(now)
        if len(polls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        stop.set()
        return []

    monkeypatch.setattr("tasks.worker.due_reminders", database_down)
    closed = []
    monkeypatch.setattr(connection, "close", lambda: closed.append(True))

    with caplog.at_level(logging.INFO, logger="tasks.worker"):
        worker.run()

    assert len(polls) == 2 and closed == [True]
    (failed,) = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert failed.getMessage() == "poll failed; retrying in 0.01 s"
    assert failed.exc_info is not None and failed.exc_info[0] is OperationalError


def test_a_fired_reminder_is_counted_with_how_late_it_fired(worker, clock, alice_user):
    task(alice_user)
    fired = REGISTRY.get_sample_value("todo_api_reminders_fired_total") or 0
    late = REGISTRY.get_sample_value("todo_api_reminder_delay_seconds_sum") or 0
    clock.advance(timedelta(minutes=1, seconds=3))

    worker.poll()

    assert REGISTRY.get_sample_value("todo_api_reminders_fired_total") == fired + 1
    assert REGISTRY.get_sample_value("todo_api_reminder_delay_seconds_sum") == pytest.approx(late + 3)
