"""With events on, each change records its event in the write's transaction: the task as the write
left it, and the request's trace context; with events off, nothing to publish is recorded."""

from http import HTTPStatus

import pytest

from tasks.models import Change

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def events_on(settings):
    settings.EVENTS_ENABLED = True


def events(client):
    return list(Change.objects.filter(owner__sub=client.sub).order_by("id").values_list("action", "event"))


def test_each_write_records_the_task_as_it_left_it(alice, events_on):
    created = alice.post("/api/v1/tasks", {"title": "Plan", "tags": ["Work"]}, format="json").json()
    path = f"/api/v1/tasks/{created['id']}"
    completed = alice.patch(path, {"completed": True}, format="json").json()
    alice.delete(path)

    assert events(alice) == [
        ("created", {"task": created}),
        ("completed", {"task": completed}),
        ("deleted", {"task": None}),
    ]


def test_the_event_carries_the_requests_trace_context(alice, events_on):
    response = alice.post("/api/v1/tasks", {"title": "Traced"}, format="json", HTTP_TRACEPARENT=TRACEPARENT)
    alice.post("/api/v1/tasks", {"title": "Not traced"}, format="json", HTTP_TRACEPARENT="00-bogus")

    assert response.status_code == HTTPStatus.CREATED
    assert [event.get("traceparent") for _, event in events(alice)] == [TRACEPARENT, None]


def test_with_events_off_no_event_is_recorded(alice):
    alice.post("/api/v1/tasks", {"title": "Quiet"}, format="json")

    assert events(alice) == [("created", None)]
