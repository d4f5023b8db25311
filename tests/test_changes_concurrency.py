"""The feed never skips a committed change when a user's writes commit out of order: two real
transactions on PostgreSQL, interleaved step by step, with a poll between their commits."""

import threading
from http import HTTPStatus

import pytest
from django.db import connection, transaction

from tasks import services
from tasks.models import Change, Task

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite lets one writer in at a time"),
]

FEED = "/api/v1/changes"


class Transaction(threading.Thread):
    """Runs `steps` in one transaction on its own connection, pausing after each until told to go on."""

    def __init__(self, *steps):
        super().__init__(daemon=True)
        self.steps = steps
        self.paused = [threading.Event() for _ in steps]
        self.resume = [threading.Event() for _ in steps]
        self.error = None

    def run(self):
        try:
            with transaction.atomic():
                for step, paused, resume in zip(self.steps, self.paused, self.resume, strict=True):
                    step()
                    paused.set()
                    assert resume.wait(10), "the test never let this transaction go on"
        except BaseException as error:  # reported by finish()
            self.error = error
            for event in self.paused:
                event.set()
        finally:
            connection.close()

    def after_step(self, index):
        assert self.paused[index].wait(10), "the step did not finish"

    def go_on(self, index):
        self.resume[index].set()

    def finish(self):
        for event in self.resume:
            event.set()
        self.join(10)
        assert not self.is_alive() and self.error is None, self.error


def poll(client, cursor):
    response = client.get(FEED, {"cursor": cursor})
    assert response.status_code == HTTPStatus.OK
    return response.json()


def titles(page):
    return [change["task"]["title"] for change in page["changes"]]


@pytest.fixture
def two_tasks(alice):
    ids = [alice.post("/api/v1/tasks", {"title": name}, format="json").json()["id"] for name in ("A", "B")]
    cursor = alice.get(FEED).json()["cursor"]
    return ids, cursor


def test_the_later_started_write_commits_first_and_the_earlier_ones_change_still_comes(alice, two_tasks):
    (first_id, second_id), cursor = two_tasks
    # The first transaction writes its task, then waits before the rest of its write.
    first = Transaction(
        lambda: Task.objects.filter(pk=first_id).update(title="A, written first"),
        lambda: services.record_changes(
            [(Task.objects.get(pk=first_id).owner_id, first_id, Change.Action.UPDATED)]
        ),
    )
    first.start()
    first.after_step(0)

    services.task_update(Task.objects.get(pk=second_id), title="B, committed first")
    between = poll(alice, cursor)
    first.go_on(0)
    first.finish()
    after = poll(alice, between["cursor"])

    assert titles(between) == ["B, committed first"]
    assert titles(after) == ["A, written first"]


def test_a_write_numbered_but_not_committed_holds_back_the_next_one_and_the_poll(alice, two_tasks):
    (first_id, second_id), cursor = two_tasks
    first = Transaction(
        lambda: services.task_update(Task.objects.get(pk=first_id), title="A, numbered first")
    )
    second = Transaction(
        lambda: services.task_update(Task.objects.get(pk=second_id), title="B, numbered next")
    )
    first.start()
    first.after_step(0)  # its change has its id and the owner's lock; not committed
    second.start()
    second.go_on(0)  # the second commits as soon as its write is done

    second.join(0.5)
    blocked = second.is_alive()  # waiting for the lock: it cannot take an id below A's and commit
    between = poll(alice, cursor)
    first.finish()
    second.finish()
    after = poll(alice, between["cursor"])

    assert titles(between) + titles(after) == ["A, numbered first", "B, numbered next"]
    assert between == {"changes": [], "cursor": cursor, "has_more": False}
    assert blocked
