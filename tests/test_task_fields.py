"""priority, due_at, completed_at and tags: what a client may send and reads back, on both route families."""

import json
from datetime import datetime
from http import HTTPStatus

import pytest
from django.utils import timezone

from tasks.models import Tag
from tasks.serializers import CompatTaskSerializer, TaskSerializer

FAMILIES = pytest.mark.parametrize("family", ["v1", "compat"])


def collection(client, family):
    return "/api/v1/tasks" if family == "v1" else f"/api/{client.sub}/tasks"


def create(client, family="v1", **fields):
    response = client.post(collection(client, family), {"title": "Buy milk", **fields}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()


def refused(client, family, field, value):
    response = client.post(collection(client, family), {"title": "t", field: value}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert list(response.json()["fields"]) == [field]
    return response.json()["fields"][field][0]


@FAMILIES
def test_a_new_task_is_medium_priority_without_due_date_or_tags(alice, family):
    task = create(alice, family)

    assert (task["priority"], task["due_at"], task["tags"], task["completed_at"]) == (
        "medium",
        None,
        [],
        None,
    )


@FAMILIES
@pytest.mark.parametrize("priority", ["low", "medium", "high"])
def test_it_stores_each_priority(alice, family, priority):
    task = create(alice, family, priority=priority)

    assert task["priority"] == priority
    assert alice.get(f"{collection(alice, family)}/{task['id']}").json()["priority"] == priority


@FAMILIES
@pytest.mark.parametrize("value", ["High", "urgent", "", None, 3, 1.0, True, ["high"]])
def test_it_refuses_any_other_priority(alice, family, value):
    assert refused(alice, family, "priority", value) in (
        "Must be one of: low, medium, high.",
        "This field may not be null.",
    )


@FAMILIES
@pytest.mark.parametrize(
    "sent, stored",
    [
        ("2026-12-01T17:00:00Z", "2026-12-01T17:00:00Z"),
        ("2026-12-01T18:00:00+01:00", "2026-12-01T17:00:00Z"),
        ("2026-12-01T12:30:00-04:30", "2026-12-01T17:00:00Z"),
        ("2026-12-01T17:00:00.250Z", "2026-12-01T17:00:00.250000Z"),
        ("1900-01-01T00:00:00Z", "1900-01-01T00:00:00Z"),
        ("1900-01-01T00:30:00+01:00", "1899-12-31T23:30:00Z"),  # the written year counts
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
        ("9999-12-31T23:59:59+01:00", "9999-12-31T22:59:59Z"),
        (None, None),
    ],
)
def test_due_at_is_returned_in_utc(alice, family, sent, stored):
    assert create(alice, family, due_at=sent)["due_at"] == stored


@FAMILIES
@pytest.mark.parametrize(
    "value",
    [
        "2026-12-01T17:00:00",  # no offset
        "2026-12-01",  # a bare date
        "2026-12-01 17:00:00Z",  # not RFC 3339's T
        "2026-13-01T17:00:00Z",
        "2026-12-01T24:00:00Z",
        "tomorrow",
        "1899-12-31T23:59:59Z",
        "9999-12-31T23:00:00-05:00",  # year 10000 in UTC
        "9999-12-31T00:00:00-01:00",  # on the last day, no offset west of UTC
        "2027-02-29T00:00:00Z",  # not a leap year
        "2026-12-01T17:00:00+0100",
        1764608400,
        "",
    ],
)
def test_due_at_without_an_offset_or_out_of_range_is_refused_with_what_to_send(alice, family, value):
    assert refused(alice, family, "due_at", value).startswith("Send an RFC 3339 date-time with an offset")


@FAMILIES
def test_completing_a_task_stamps_completed_at_and_reopening_clears_it(alice, family):
    before = timezone.now()
    task = create(alice, family, completed=True)
    stamped = datetime.fromisoformat(task["completed_at"])
    assert before <= stamped <= timezone.now()
    detail = f"{collection(alice, family)}/{task['id']}"

    assert (
        alice.patch(detail, {"title": "Renamed"}, format="json").json()["completed_at"]
        == task["completed_at"]
    )
    assert (
        alice.patch(detail, {"completed": True}, format="json").json()["completed_at"] == task["completed_at"]
    )
    assert (
        alice.put(detail, {"title": "Again", "completed": False}, format="json").json()["completed_at"]
        is None
    )
    reopened = alice.put(detail, {"title": "Again", "completed": True}, format="json").json()
    assert datetime.fromisoformat(reopened["completed_at"]) >= stamped


def test_the_toggle_sets_and_clears_completed_at(alice):
    task = create(alice, "compat")
    toggle = f"/api/{alice.sub}/tasks/{task['id']}/complete"

    done = alice.patch(toggle).json()
    assert done["completed"] is True and done["completed_at"] is not None
    undone = alice.patch(toggle).json()
    assert undone["completed"] is False and undone["completed_at"] is None


@FAMILIES
def test_completed_at_cannot_be_written(alice, family):
    task = create(alice, family, completed_at="2000-01-01T00:00:00Z")

    assert task["completed_at"] is None


@FAMILIES
def test_tags_are_trimmed_deduplicated_ignoring_case_and_sorted(alice, family):
    task = create(alice, family, tags=["  work ", "Home", "WORK", "errands", "home"])

    assert task["tags"] == ["errands", "Home", "work"]


def test_a_tag_keeps_the_spelling_first_used(alice):
    create(alice, tags=["Work"])

    later = create(alice, tags=["WORK", "work"])

    assert later["tags"] == ["Work"]
    assert list(Tag.objects.values_list("name", flat=True)) == ["Work"]


def test_the_same_tag_name_is_a_different_tag_for_another_user(alice, bob):
    create(alice, tags=["Work"])

    assert create(bob, tags=["WORK"])["tags"] == ["WORK"]
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["WORK", "Work"]


@FAMILIES
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_tags_sent_on_update_replace_the_list(alice, family, method):
    task = create(alice, family, tags=["a", "b"])
    detail = f"{collection(alice, family)}/{task['id']}"

    body = {"title": "t", "tags": ["b", "c"]}
    response = alice.generic(method, detail, data=json.dumps(body), content_type="application/json")

    assert response.json()["tags"] == ["b", "c"]
    assert alice.get(detail).json()["tags"] == ["b", "c"]


def test_an_update_without_tags_keeps_them(alice):
    task = create(alice, tags=["a"])

    response = alice.patch(f"/api/v1/tasks/{task['id']}", {"priority": "high"}, format="json")

    assert response.json()["tags"] == ["a"]


def test_twenty_tags_are_allowed_and_twenty_one_refused(alice):
    assert len(create(alice, tags=[f"t{n}" for n in range(20)])["tags"]) == 20

    assert refused(alice, "v1", "tags", [f"t{n}" for n in range(21)]) == "At most 20 tags per task."


def test_twenty_one_names_that_collapse_to_twenty_are_allowed(alice):
    assert len(create(alice, tags=[*(f"t{n}" for n in range(20)), "T0"])["tags"]) == 20


@FAMILIES
@pytest.mark.parametrize(
    "tags, message",
    [
        ("work", "Must be an array of strings."),
        (None, "This field may not be null."),
        ([1], "Each tag must be a string."),
        ([None], "Each tag must be a string."),
        ([""], "Each tag must be 1 to 50 characters long, once trimmed."),
        (["   "], "Each tag must be 1 to 50 characters long, once trimmed."),
        (["x" * 51], "Each tag must be 1 to 50 characters long, once trimmed."),
        (["a\x00b"], "Tags cannot contain control characters."),
        (["a\nb"], "Tags cannot contain control characters."),
        (["a\x85b"], "Tags cannot contain control characters."),
    ],
)
def test_bad_tags_are_refused(alice, family, tags, message):
    assert refused(alice, family, "tags", tags) == message


def test_fifty_characters_is_the_longest_tag(alice):
    assert create(alice, tags=["  " + "x" * 50 + "  "])["tags"] == ["x" * 50]


def test_a_refused_write_creates_no_tag(alice):
    response = alice.post("/api/v1/tasks", {"title": "", "tags": ["new"]}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Tag.objects.exists()


def test_each_serializer_binds_fields_of_its_own():
    first, second = TaskSerializer(), CompatTaskSerializer()
    third = TaskSerializer(data={"title": 3})

    assert not third.is_valid()
    for name, field in first.fields.items():
        assert field.parent is first and field.field_name == name
        assert field is not third.fields[name] and third.fields[name].parent is third
    assert all(field.parent is second for field in second.fields.values())
    assert TaskSerializer(data={"title": "fine"}).is_valid()
