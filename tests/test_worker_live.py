"""`manage.py run_worker` as real processes on the test's own database: reminders fire within 5 s of
remind_at, SIGTERM stops a worker within 10 s losing and doubling nothing, its lines are JSON, and
three workers on PostgreSQL fire each of hundreds of reminders exactly once."""

import json
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db import connection
from django.db.models import Count, F
from django.utils import timezone

from authbridge.models import User
from tasks.models import Change, Task
from tests.support.environment import clean_env
from tests.support.servers import REPO, ServerProcess

pytestmark = pytest.mark.live

FIRES_WITHIN = timedelta(seconds=5)
STOPS_WITHIN = 10.0
BACKLOG_DRAINS_WITHIN = timedelta(seconds=30)


def database_url():
    """The test database as a URL the worker processes can open."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"  # a file (tests/conftest.py), never in memory
    credentials = quote(settings["USER"] or "")
    if settings["PASSWORD"]:
        credentials += ":" + quote(settings["PASSWORD"])
    return f"postgres://{credentials}@{settings['HOST']}:{settings['PORT'] or 5432}/{settings['NAME']}"


def worker_env(**variables):
    return clean_env(
        **{
            "DATABASE_URL": database_url(),
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "localhost",
            "WORKER_POLL_SECONDS": "1",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **variables,
        }
    )


class Worker(ServerProcess):
    def __init__(self, name, log_dir):
        argv = [sys.executable, "manage.py", "run_worker"]
        super().__init__(name, argv, cwd=REPO, env=worker_env(), log_dir=log_dir)
        self.wait_for_log("worker started")

    def lines(self):
        return [json.loads(line) for line in self.log().splitlines()]

    def reminder_lines(self):
        """The reminders' own lines (tasks.worker), without those of anything running beside them."""
        return [line for line in self.lines() if line["logger"] == "tasks.worker"]

    def terminate(self):
        """SIGTERM, as `docker stop` and Kubernetes send it: (exit status, seconds it took)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=STOPS_WITHIN + 5)
        return status, time.monotonic() - started


@pytest.fixture
def workers(transactional_db, tmp_path):
    """Starts workers; stops whichever still run before the database is flushed."""
    started = []

    def start(count=1):
        new = [Worker(f"worker-{len(started) + n}", tmp_path) for n in range(count)]
        started.extend(new)
        return new

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def alice_user(transactional_db):
    return User.objects.create(username="alice-sub", sub="alice-sub")


def armed(owner, remind_at, count=1):
    return Task.objects.bulk_create(
        [Task(owner=owner, title=f"Reminder {n}", remind_at=remind_at) for n in range(count)]
    )


def wait_until_fired(task_ids, deadline):
    """Polls the database until every task has fired or `deadline` (a datetime) passes."""
    while True:
        pending = Task.objects.filter(pk__in=task_ids, reminded_at__isnull=True).count()
        if pending == 0 or timezone.now() > deadline:
            return pending
        time.sleep(0.05)


def lateness(task_ids):
    """How late each reminder fired, by its reminded_at."""
    rows = Task.objects.filter(pk__in=task_ids).values_list("remind_at", "reminded_at")
    return [reminded_at - remind_at for remind_at, reminded_at in rows]


def test_a_reminder_fires_within_5_s_of_remind_at_and_the_worker_logs_it(workers, alice_user):
    (worker,) = workers()
    remind_at = timezone.now() + timedelta(seconds=1)
    (task,) = armed(alice_user, remind_at)

    assert wait_until_fired([task.pk], remind_at + FIRES_WITHIN) == 0

    task.refresh_from_db()
    late = task.reminded_at - remind_at
    print(f"fired {late.total_seconds() * 1000:.0f} ms after remind_at")
    assert timedelta(0) <= late < FIRES_WITHIN
    assert Change.objects.filter(task_id=task.pk, action=Change.Action.REMINDED).count() == 1
    fired = worker.wait_until(
        lambda: [line for line in worker.reminder_lines() if line.get("task_id") == task.pk], "log it"
    )
    assert fired[0]["late_ms"] == round(late.total_seconds() * 1000)


def test_sigterm_stops_it_with_status_0_within_10_s_and_every_line_is_json(workers):
    (worker,) = workers()

    status, seconds = worker.terminate()

    print(f"stopped {seconds * 1000:.0f} ms after SIGTERM")
    assert (status, seconds < STOPS_WITHIN) == (0, True)
    assert worker.lines()  # json.loads of every line
    started, *_, stopped = worker.reminder_lines()
    assert started["message"].startswith("worker started")
    assert (started["poll_seconds"], started["database"]) == (1.0, connection.vendor)
    assert (stopped["message"], stopped["fired"]) == ("worker stopped", 0)


def test_reminders_missed_while_no_worker_ran_fire_as_soon_as_one_starts(workers, alice_user):
    missed = armed(alice_user, timezone.now() - timedelta(hours=1), count=3)

    started = timezone.now()
    workers()

    assert wait_until_fired([task.pk for task in missed], started + FIRES_WITHIN) == 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_worker_stopped_mid_backlog_loses_and_doubles_nothing(workers, alice_user, stop_signal):
    backlog = [task.pk for task in armed(alice_user, timezone.now() - timedelta(minutes=1), count=300)]
    (first,) = workers()
    first.wait_for_log('"task_id"')

    if stop_signal == signal.SIGTERM:
        status, seconds = first.terminate()
        assert (status, seconds < STOPS_WITHIN) == (0, True)
    else:
        first.process.kill()  # mid-claim, likely: a transaction that never commits
        first.process.wait(timeout=STOPS_WITHIN)

    # Whatever it fired before it stopped, each with its change; what it had not is still armed.
    fired = Task.objects.filter(pk__in=backlog, reminded_at__isnull=False).count()
    assert Change.objects.filter(task_id__in=backlog, action=Change.Action.REMINDED).count() == fired
    if stop_signal == signal.SIGTERM:
        assert first.reminder_lines()[-1]["fired"] == fired
    workers()
    restarted = timezone.now()
    # A claim is a commit: on SQLite, each one's fsyncs pace the backlog on a busy machine.
    assert wait_until_fired(backlog, restarted + BACKLOG_DRAINS_WITHIN) == 0
    print(f"{fired} fired before it stopped, {len(backlog) - fired} after, in {timezone.now() - restarted}")
    per_task = Counter(
        Change.objects.filter(task_id__in=backlog, action=Change.Action.REMINDED).values_list(
            "task_id", flat=True
        )
    )
    assert set(per_task) == set(backlog) and set(per_task.values()) == {1}


def test_a_bad_poll_interval_stops_start_up_naming_the_variable(transactional_db):
    result = subprocess.run(
        [sys.executable, "manage.py", "run_worker"],
        cwd=REPO,
        env=worker_env(WORKER_POLL_SECONDS="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "WORKER_POLL_SECONDS must be at least 0.1" in result.stderr


@pytest.mark.skipif(connection.vendor != "postgresql", reason="one worker is enough on SQLite (one writer)")
def test_three_workers_fire_each_of_hundreds_of_reminders_exactly_once(workers, alice_user):
    three = workers(3)
    due_together = timezone.now() + timedelta(seconds=2)
    tasks = armed(alice_user, due_together, count=200)
    # More arrive while the workers run, each due a moment after it is written.
    for n in range(30):
        tasks += armed(alice_user, timezone.now() + timedelta(milliseconds=100 * (n % 7)), count=2)
        time.sleep(0.05)
    ids = [task.pk for task in tasks]
    last_due = max(task.remind_at for task in tasks)

    assert wait_until_fired(ids, last_due + FIRES_WITHIN) == 0

    reminded = Change.objects.filter(task_id__in=ids, action=Change.Action.REMINDED)
    per_task = dict(reminded.values_list("task_id").annotate(n=Count("id")))
    assert len(per_task) == len(ids) == 260
    assert set(per_task.values()) == {1}
    assert not Task.objects.filter(pk__in=ids, reminded_at__lt=F("remind_at")).exists()  # none early
    late = lateness(ids)
    print(
        f"{len(ids)} reminders by 3 workers: lateness max {max(late).total_seconds() * 1000:.0f} ms, "
        f"median {sorted(late)[len(late) // 2].total_seconds() * 1000:.0f} ms"
    )
    assert max(late) < FIRES_WITHIN
    for worker in three:
        status, seconds = worker.terminate()
        assert (status, seconds < STOPS_WITHIN) == (0, True)
    by_worker = [worker.reminder_lines()[-1]["fired"] for worker in three]
    print(f"fired per worker: {by_worker}")
    assert sum(by_worker) == len(ids)
