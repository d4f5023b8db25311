"""GET /api/v1/changes: a sync from the start, then every committed change after a cursor."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.test import Client
from django.utils import timezone

from authbridge.models import User
from tasks import services
from tasks.changes import Cursor, purge_before
from tasks.models import Change, Tag, Task

FEED = "/api/v1/changes"


def poll(client, cursor=None, **params):
    if cursor is not None:
        params["cursor"] = cursor
    response = client.get(FEED, params)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def sync(client, cursor=None, limit=100, local=None):
    """Every page from `cursor` on, applied to a local copy: (tasks by id, the last cursor, pages)."""
    local, pages = {} if local is None else local, 0
    while True:
        page = poll(client, cursor, limit=limit)
        pages += 1
        apply(local, page["changes"])
        cursor = page["cursor"]
        if not page["has_more"]:
            return local, cursor, pages


def apply(local, changes):
    for change in changes:
        if change["kind"] == "upsert":
            local[change["id"]] = change["task"]
        elif change["kind"] == "delete":
            local.pop(change["id"], None)


def all_tasks(client):
    return {task["id"]: task for task in client.get(f"/api/{client.sub}/tasks").json()}


def create(client, title="Task", **fields):
    response = client.post("/api/v1/tasks", {"title": title, **fields}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()


def test_without_a_cursor_the_feed_lists_every_task_in_pages(alice):
    created = [create(alice, f"Task {n}", tags=["Home"]) for n in range(5)]

    first = poll(alice, limit=2)
    second = poll(alice, first["cursor"], limit=2)
    third = poll(alice, second["cursor"], limit=2)

    assert [first["has_more"], second["has_more"], third["has_more"]] == [True, True, False]
    changes = first["changes"] + second["changes"] + third["changes"]
    assert changes == [{"kind": "upsert", "id": task["id"], "task": task} for task in created]


def test_a_user_without_tasks_starts_with_an_empty_last_page(alice):
    assert poll(alice) == {"changes": [], "cursor": poll(alice)["cursor"], "has_more": False}


def test_applying_the_feed_gives_exactly_the_tasks_the_list_returns(alice):
    kept = create(alice, "Kept", tags=["Work"])
    gone = create(alice, "Gone")
    local, cursor, _ = sync(alice)

    alice.patch(f"/api/v1/tasks/{kept['id']}", {"title": "Renamed", "tags": ["Home"]}, format="json")
    alice.delete(f"/api/v1/tasks/{gone['id']}")
    create(alice, "New", priority="high")
    alice.patch(f"/api/{alice.sub}/tasks/{kept['id']}/complete")
    sync(alice, cursor, limit=1, local=local)

    assert local == all_tasks(alice)
    assert local[kept["id"]]["completed"] is True
    assert gone["id"] not in local


def test_changes_after_a_cursor_come_oldest_first_each_task_once_with_its_latest_state(alice):
    first, second = create(alice, "First"), create(alice, "Second")
    _, cursor, _ = sync(alice)

    alice.patch(f"/api/v1/tasks/{first['id']}", {"title": "First, edited"}, format="json")
    alice.patch(f"/api/v1/tasks/{second['id']}", {"title": "Second, edited"}, format="json")
    alice.patch(f"/api/v1/tasks/{first['id']}", {"title": "First, edited twice"}, format="json")
    page = poll(alice, cursor)

    assert [(change["kind"], change["id"]) for change in page["changes"]] == [
        ("upsert", second["id"]),
        ("upsert", first["id"]),
    ]
    assert page["changes"][1]["task"] == alice.get(f"/api/v1/tasks/{first['id']}").json()
    assert page["has_more"] is False


def test_a_deleted_task_is_a_delete_change(alice):
    task = create(alice)
    _, cursor, _ = sync(alice)

    alice.delete(f"/api/v1/tasks/{task['id']}")

    assert poll(alice, cursor)["changes"] == [{"kind": "delete", "id": task["id"]}]


def test_a_task_created_and_deleted_between_polls_is_a_delete(alice):
    _, cursor, _ = sync(alice)
    task = create(alice)
    alice.delete(f"/api/v1/tasks/{task['id']}")

    assert poll(alice, cursor)["changes"] == [{"kind": "delete", "id": task["id"]}]


def test_changes_page_by_limit_and_the_cursor_continues(alice):
    _, cursor, _ = sync(alice)
    created = [create(alice, f"Task {n}") for n in range(5)]

    first = poll(alice, cursor, limit=3)
    second = poll(alice, first["cursor"], limit=3)

    assert (first["has_more"], second["has_more"]) == (True, False)
    assert [change["id"] for change in first["changes"] + second["changes"]] == [
        task["id"] for task in created
    ]


def test_nothing_new_is_an_empty_page_whose_cursor_is_usable_again(alice):
    create(alice)
    _, cursor, _ = sync(alice)

    page = poll(alice, cursor)

    assert page == {"changes": [], "cursor": cursor, "has_more": False}
    assert poll(alice, page["cursor"]) == page


def test_if_none_match_answers_304_while_nothing_changed(alice):
    task = create(alice)
    _, cursor, _ = sync(alice)
    first = alice.get(FEED, {"cursor": cursor})
    etag = first["ETag"]

    unchanged = alice.get(FEED, {"cursor": cursor}, HTTP_IF_NONE_MATCH=etag)
    alice.patch(f"/api/v1/tasks/{task['id']}", {"title": "Changed"}, format="json")
    changed = alice.get(FEED, {"cursor": cursor}, HTTP_IF_NONE_MATCH=etag)

    assert etag
    assert (unchanged.status_code, unchanged.content, unchanged["ETag"]) == (
        HTTPStatus.NOT_MODIFIED,
        b"",
        etag,
    )
    assert changed.status_code == HTTPStatus.OK
    assert changed["ETag"] != etag
    assert changed.json()["changes"][0]["task"]["title"] == "Changed"


def test_another_users_changes_never_appear(alice, bob):
    _, cursor, _ = sync(alice)
    create(bob, "Bob's")
    bobs = create(bob, "Bob's too")
    bob.delete(f"/api/v1/tasks/{bobs['id']}")

    assert poll(alice, cursor)["changes"] == []
    assert sync(alice)[0] == {}


def test_every_route_family_write_and_the_toggle_appear(alice):
    _, cursor, _ = sync(alice)
    compat = f"/api/{alice.sub}/tasks"
    v1 = create(alice, "v1")
    old = create(alice, "old")
    made = alice.post(compat, {"title": "compat"}, format="json").json()
    alice.put(f"/api/v1/tasks/{v1['id']}", {"title": "v1 replaced"}, format="json")
    alice.put(f"{compat}/{made['id']}", {"title": "compat replaced"}, format="json")
    alice.patch(f"{compat}/{made['id']}", {"description": "patched"}, format="json")
    alice.patch(f"{compat}/{made['id']}/complete")
    alice.delete(f"{compat}/{old['id']}")

    local = {}
    apply(local, poll(alice, cursor)["changes"])

    assert local == all_tasks(alice)
    assert local[made["id"]]["completed"] is True
    recorded = list(Change.objects.filter(owner__sub=alice.sub).values_list("action", flat=True))
    assert recorded == [
        "created",
        "created",
        "created",
        "updated",
        "updated",
        "updated",
        "completed",
        "deleted",
    ]


def test_a_refused_write_records_no_change(alice):
    task = create(alice)
    etag = alice.get(f"/api/v1/tasks/{task['id']}")["ETag"]
    alice.patch(f"/api/v1/tasks/{task['id']}", {"title": "Moved on"}, format="json")
    before = Change.objects.count()

    stale = alice.patch(f"/api/v1/tasks/{task['id']}", {"title": "x"}, format="json", HTTP_IF_MATCH=etag)
    invalid = alice.patch(f"/api/v1/tasks/{task['id']}", {"title": ""}, format="json")

    assert (stale.status_code, invalid.status_code) == (
        HTTPStatus.PRECONDITION_FAILED,
        HTTPStatus.BAD_REQUEST,
    )
    assert Change.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_a_write_that_rolls_back_records_no_change(alice, monkeypatch):
    task = create(alice, tags=["Home"])
    before = Change.objects.count()

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away mid-write")

    monkeypatch.setattr(services, "write_tags", fail)
    with pytest.raises(RuntimeError):
        services.task_update(Task.objects.get(pk=task["id"]), title="Lost", tags=["Work"])

    assert Change.objects.count() == before
    assert Task.objects.get(pk=task["id"]).title == "Task"


def test_a_tag_renamed_or_deleted_changes_every_task_carrying_it(alice):
    tagged = [create(alice, f"Tagged {n}", tags=["Errands"]) for n in range(2)]
    create(alice, "Untagged")
    _, cursor, _ = sync(alice)
    tag = Tag.objects.get(name="Errands")

    tag.name = "Chores"
    services.tag_rename(tag)
    renamed = poll(alice, cursor)
    services.tag_delete(tag)
    deleted = poll(alice, renamed["cursor"])

    assert [(change["id"], change["task"]["tags"]) for change in renamed["changes"]] == [
        (task["id"], ["Chores"]) for task in tagged
    ]
    assert [(change["id"], change["task"]["tags"]) for change in deleted["changes"]] == [
        (task["id"], []) for task in tagged
    ]


@pytest.mark.parametrize("cursor", ["", "nonsense", "e30.abc", "x" * 1000, "WzEsMiwzXQ.forged"])
def test_a_malformed_or_forged_cursor_is_a_400(alice, cursor):
    response = alice.get(FEED, {"cursor": cursor})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {
        "status": 400,
        "code": "invalid_cursor",
        "message": "This cursor is not one this feed gave you. Start again without one.",
    }


def test_another_users_cursor_is_the_same_400(alice, bob):
    create(bob)
    bobs_cursor = poll(bob)["cursor"]
    alice.get("/api/v1/me")
    alices_forgery = Cursor(owner=User.objects.get(sub=alice.sub).pk + 10**6, position=0).encode()

    for cursor in (bobs_cursor, alices_forgery):
        response = alice.get(FEED, {"cursor": cursor})
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert response.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten", "", "1.5"])
def test_a_limit_out_of_range_is_a_400_naming_it(alice, limit):
    response = alice.get(FEED, {"limit": limit})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["fields"] == {"limit": ["Must be an integer from 1 to 500."]}


def test_the_feed_needs_a_token(anonymous):
    assert anonymous.get(FEED).status_code == HTTPStatus.UNAUTHORIZED


def age_changes(days):
    Change.objects.update(recorded_at=timezone.now() - timedelta(days=days))


def test_a_cursor_before_purged_changes_is_410_and_a_new_sync_works(alice, settings):
    settings.CHANGES_RETENTION_DAYS = 30
    task = create(alice)
    _, old_cursor, _ = sync(alice)
    alice.patch(f"/api/v1/tasks/{task['id']}", {"title": "Seen by nobody"}, format="json")
    alice.patch(f"/api/v1/tasks/{task['id']}", {"title": "Latest"}, format="json")
    age_changes(days=31)

    purged = purge_before(timezone.now() - timedelta(days=30))
    expired = alice.get(FEED, {"cursor": old_cursor})

    assert purged >= 2
    assert expired.status_code == HTTPStatus.GONE
    assert expired.json()["code"] == "cursor_expired"
    assert sync(alice)[0] == all_tasks(alice)


def test_a_cursor_after_the_purged_changes_still_works(alice):
    task = create(alice)
    alice.patch(f"/api/v1/tasks/{task['id']}", {"title": "Old news"}, format="json")
    _, cursor, _ = sync(alice)
    age_changes(days=31)
    purge_before(timezone.now() - timedelta(days=30))

    alice.patch(f"/api/v1/tasks/{task['id']}", {"title": "New"}, format="json")

    assert [change["task"]["title"] for change in poll(alice, cursor)["changes"]] == ["New"]


def test_purging_keeps_recent_changes_and_one_marker_per_user(alice, bob):
    for client in (alice, bob):
        create(client, "Old")
        create(client, "Old too")
    age_changes(days=31)
    create(alice, "Recent")

    purge_before(timezone.now() - timedelta(days=30))
    purge_before(timezone.now() - timedelta(days=30))  # a second run removes nothing more it needs

    assert sorted(Change.objects.values_list("owner__sub", "action")) == sorted(
        [(alice.sub, "purged"), (alice.sub, "created"), (bob.sub, "purged")]
    )


def test_purge_changes_command_uses_the_retention(alice, settings, capsys):
    from django.core.management import call_command

    settings.CHANGES_RETENTION_DAYS = 7
    create(alice)
    create(alice)
    age_changes(days=8)

    call_command("purge_changes")

    assert "Deleted 1 changes" in capsys.readouterr().out


def test_deleting_a_user_deletes_their_feed(alice, bob):
    create(alice)
    create(bob)

    User.objects.get(sub=alice.sub).delete()

    assert set(Change.objects.values_list("owner__sub", flat=True)) == {bob.sub}


@pytest.fixture
def staff(db):
    client = Client()
    client.force_login(User.objects.create(username="admin", is_staff=True, is_superuser=True))
    return client


def test_the_admins_edits_appear(alice, staff):
    task = create(alice, "Before", tags=["Home"])
    _, cursor, _ = sync(alice)
    owner = User.objects.get(sub=alice.sub)
    form = {
        "owner": owner.pk,
        "title": "Edited by staff",
        "description": "",
        "priority": 2,
        "tag_names": "Work",
    }

    edited = staff.post(f"/admin/tasks/task/{task['id']}/change/", form)
    added = staff.post("/admin/tasks/task/add/", {**form, "title": "Added by staff"})
    page = poll(alice, cursor)

    assert (edited.status_code, added.status_code) == (HTTPStatus.FOUND, HTTPStatus.FOUND)
    assert [(change["task"]["title"], change["task"]["tags"]) for change in page["changes"]] == [
        ("Edited by staff", ["Work"]),
        ("Added by staff", ["Work"]),
    ]
    staff.post(f"/admin/tasks/task/{task['id']}/delete/", {"post": "yes"})
    assert poll(alice, page["cursor"])["changes"] == [{"kind": "delete", "id": task["id"]}]


def test_a_reminder_that_fired_follows_the_tasks_state(alice):
    task = create(alice, due_at="2026-12-01T17:00:00Z", remind_at="2026-12-01T16:30:00Z")
    _, cursor, _ = sync(alice)
    remind_at = Task.objects.get(pk=task["id"]).remind_at

    assert services.task_remind(task["id"], remind_at, now=timezone.now())
    page = poll(alice, cursor)

    current = alice.get(f"/api/v1/tasks/{task['id']}").json()
    assert current["reminded_at"] is not None
    assert page["changes"] == [
        {"kind": "upsert", "id": task["id"], "task": current},
        {"kind": "reminder", "id": task["id"], "task": current},
    ]


def test_a_reminder_of_a_task_deleted_since_is_left_out(alice):
    task = create(alice, due_at="2026-12-01T17:00:00Z", remind_at="2026-12-01T16:30:00Z")
    _, cursor, _ = sync(alice)
    services.task_remind(task["id"], Task.objects.get(pk=task["id"]).remind_at, now=timezone.now())
    alice.delete(f"/api/v1/tasks/{task['id']}")

    assert poll(alice, cursor)["changes"] == [{"kind": "delete", "id": task["id"]}]


def test_purging_keeps_events_not_yet_published(alice, settings):
    settings.EVENTS_ENABLED = True
    create(alice, "Published")
    create(alice, "Waiting")
    Change.objects.filter(event__task__title="Published").update(published_at=timezone.now())
    age_changes(days=31)

    purge_before(timezone.now() - timedelta(days=30))

    assert list(Change.objects.order_by("id").values_list("action", "event__task__title")) == [
        ("purged", "Published"),
        ("created", "Waiting"),
    ]
