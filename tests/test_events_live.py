"""`manage.py run_worker` as real processes publishing to the Dapr sidecar double (tests/support/dapr.py)
on the test's own database: SIGKILLed mid-batch and restarted, two at once, the sidecar away for a
few seconds — every event goes out, each user's in order, a duplicate only ever with the same id."""

import json
import os
import signal
import sys
import time
from collections import defaultdict

import pytest
from django.db import connection

from authbridge.models import User
from tasks import services
from tasks.events import CLAIM_SIZE, backlog
from tasks.models import Change
from tests.support.dapr import Answer, DaprSidecar
from tests.support.servers import REPO, ServerProcess
from tests.test_worker_live import worker_env

pytestmark = pytest.mark.live

DRAINS_WITHIN = 60.0


class Worker(ServerProcess):
    def __init__(self, name, log_dir, **env):
        argv = [sys.executable, "manage.py", "run_worker"]
        super().__init__(name, argv, cwd=REPO, env=worker_env(**env), log_dir=log_dir)
        self.wait_for_log("worker started")

    def lines(self):
        return [json.loads(line) for line in self.log().splitlines()]

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def sidecar():
    double = DaprSidecar(components={"pubsub": {"task-events", "reminders"}})
    yield double
    double.stop()


@pytest.fixture
def workers(transactional_db, tmp_path, sidecar):
    """Starts workers publishing to the double; stops whichever still run before the database is flushed."""
    started = []

    def start(count=1, **env):
        new = [
            Worker(f"worker-{len(started) + n}", tmp_path, DAPR_HTTP_ENDPOINT=sidecar.url, **env)
            for n in range(count)
        ]
        started.extend(new)
        return new

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def users(transactional_db, settings):
    settings.EVENTS_ENABLED = True  # the writes below record their events, as the API's would
    return [User.objects.create(username=name, sub=f"{name}-sub") for name in ("alice", "bob", "carol")]


def write_events(users, per_user):
    """Tasks created round-robin, so users' events interleave: per_user events for each."""
    for n in range(per_user):
        for user in users:
            services.task_create(owner=user, title=f"{user.username} {n}")


def wait_until_drained(timeout=DRAINS_WITHIN):
    deadline = time.monotonic() + timeout
    while (waiting := backlog()[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return waiting


def assert_every_event_out_in_order_per_user(sidecar):
    """Each user's events taken in the order of their changes (first copies), none missing, and any
    duplicate the same envelope as the first copy, id and all."""
    first_copy = {}
    per_user = defaultdict(list)
    for received in sidecar.delivered():
        envelope = received.envelope
        if envelope["id"] in first_copy:
            assert envelope == first_copy[envelope["id"]]
            continue
        first_copy[envelope["id"]] = envelope
        per_user[received.partition_key].append(envelope["id"])
    expected = defaultdict(list)
    for change_id, sub in Change.objects.order_by("id").values_list("id", "owner__sub"):
        expected[sub].append(str(change_id))
    assert dict(per_user) == dict(expected)
    assert sidecar.invalid() == []
    return len(sidecar.delivered()) - len(first_copy)


def test_a_worker_sigkilled_mid_batch_and_restarted_loses_nothing(workers, users, sidecar):
    write_events(users, per_user=100)
    # Slow to answer: the kill lands while requests are in flight and most events still wait.
    sidecar.answer_with(lambda received: Answer(delay=0.05))
    (first,) = workers()
    # Past two claims of 20 (on PostgreSQL a claim's marks commit together).
    first.wait_until(lambda: len(sidecar.requests()) >= 50, "publish 50 events")

    first.kill()

    published = Change.objects.filter(published_at__isnull=False).count()
    assert 0 < published < 300
    sidecar.answer_with(None)
    workers()
    assert wait_until_drained() == 0
    duplicates = assert_every_event_out_in_order_per_user(sidecar)
    print(f"{published} published before SIGKILL, 300 in all, {duplicates} sent twice (same id)")
    # SQLite marks each event as it goes: at most the one in flight. PostgreSQL: the claim in hand.
    assert duplicates <= (CLAIM_SIZE if connection.vendor == "postgresql" else 1)


def test_two_workers_publish_every_event(workers, users, sidecar):
    two = workers(2)
    write_events(users, per_user=100)

    assert wait_until_drained() == 0

    duplicates = assert_every_event_out_in_order_per_user(sidecar)
    for worker in two:
        assert worker.stop() == 0
    by_worker = [worker.lines()[-1]["published"] for worker in two if "published" in worker.lines()[-1]]
    print(f"300 events by 2 workers: {by_worker} published each, {duplicates} sent twice (same id)")
    if connection.vendor == "postgresql":
        # A user's stream is one publisher's at a time (tasks/events.py, claimed()).
        assert duplicates == 0
    # Each marked what it sent and Dapr took; a mark lost to a busy database (SQLite) means a resend.
    assert 300 <= sum(by_worker) <= len(sidecar.delivered())


def test_with_the_sidecar_away_the_events_wait_and_go_out_in_order_afterwards(workers, users, sidecar):
    sidecar.stop()
    (worker,) = workers()
    write_events(users, per_user=20)
    worker.wait_for_log("ConnectionRefusedError")
    time.sleep(3)

    assert backlog()[0] == 60
    assert sidecar.requests() == []
    sidecar.start()  # on the same port: daprd back
    came_back = time.monotonic()
    assert wait_until_drained() == 0
    print(f"60 events out {time.monotonic() - came_back:.1f} s after the sidecar came back")
    assert assert_every_event_out_in_order_per_user(sidecar) == 0
    refused = [line for line in worker.lines() if "ConnectionRefusedError" in line.get("message", "")]
    assert refused and {line["logger"] for line in refused} == {"tasks.events"}


def test_with_events_off_the_worker_says_so_once_and_runs_only_reminders(transactional_db, tmp_path):
    worker = Worker("worker-off", tmp_path)
    try:
        worker.wait_for_log("events are off")
        status = worker.stop()
    finally:
        worker.stop()

    lines = worker.lines()
    assert status == 0
    assert [line["message"] for line in lines if line["logger"] == "tasks.events"] == [
        "events are off (neither DAPR_HTTP_ENDPOINT nor DAPR_HTTP_PORT is set): only reminders run"
    ]
