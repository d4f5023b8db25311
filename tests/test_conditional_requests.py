"""ETags on task responses, If-None-Match → 304 on reads, If-Match → 412 on writes, on both route families."""

from http import HTTPStatus

import pytest

from tasks import services
from tasks.models import Tag, Task

PRECONDITION_FAILED = {
    "status": 412,
    "code": "precondition_failed",
    "message": "The task has changed since you read it (If-Match). Fetch it again.",
}
NOT_FOUND = {"status": 404, "code": "not_found", "message": "Not found."}


def v1_detail(client, task_id):
    return f"/api/v1/tasks/{task_id}"


def compat_detail(client, task_id):
    return f"/api/{client.sub}/tasks/{task_id}"


both_families = pytest.mark.parametrize("detail", [v1_detail, compat_detail], ids=["v1", "compat"])


def create(client, title="Buy milk"):
    response = client.post("/api/v1/tasks", {"title": title}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response


def etag_of(client, path):
    response = client.get(path)
    assert response.status_code == HTTPStatus.OK
    return response["ETag"]


def snapshot(task_id):
    return Task.objects.filter(pk=task_id).values().first()


def writes(client, path):
    """Each write a client can make to one task, by name, as a function of extra request headers."""
    toggle = f"/api/{client.sub}/tasks/{path.rsplit('/', 1)[1]}/complete"
    return {
        "put": lambda **headers: client.put(path, {"title": "Put"}, format="json", **headers),
        "patch": lambda **headers: client.patch(path, {"title": "Patched"}, format="json", **headers),
        "toggle": lambda **headers: client.patch(toggle, **headers),
        "delete": lambda **headers: client.delete(path, **headers),
    }


WRITES = ["put", "patch", "toggle", "delete"]


@pytest.mark.parametrize("route", ["/api/v1/tasks", "compat"])
def test_a_created_task_comes_with_a_strong_etag_that_its_read_repeats(alice, route):
    path = f"/api/{alice.sub}/tasks" if route == "compat" else route

    created = alice.post(path, {"title": "Buy milk"}, format="json")

    etag = created["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert alice.get(created["Location"])["ETag"] == etag


@both_families
def test_every_write_changes_the_etag_and_its_response_carries_the_new_one(alice, detail):
    path = detail(alice, create(alice).json()["id"])
    seen = {etag_of(alice, path)}

    for name in ["put", "patch", "toggle"]:
        response = writes(alice, path)[name]()
        assert response.status_code == HTTPStatus.OK
        assert response["ETag"] not in seen, name
        assert etag_of(alice, path) == response["ETag"]
        seen.add(response["ETag"])


def test_reads_do_not_change_the_etag(alice):
    path = create(alice)["Location"]

    assert etag_of(alice, path) == etag_of(alice, path) == etag_of(alice, path)


def test_an_edit_in_the_admin_changes_the_etag(alice):
    path = create(alice)["Location"]
    before = etag_of(alice, path)
    task = Task.objects.get()

    task.title = "Renamed by staff"
    task.save()

    assert etag_of(alice, path) not in (before, "")


def test_a_bulk_update_changes_the_etag(alice):
    path = create(alice)["Location"]
    before = etag_of(alice, path)

    Task.objects.filter(owner__sub=alice.sub).update(completed=True)

    assert etag_of(alice, path) != before


@both_families
@pytest.mark.parametrize("method", ["get", "head"])
def test_a_read_with_the_current_etag_in_if_none_match_is_304_without_a_body(alice, detail, method):
    path = detail(alice, create(alice).json()["id"])
    etag = etag_of(alice, path)

    response = getattr(alice, method)(path, HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == HTTPStatus.NOT_MODIFIED
    assert response.content == b""
    assert response["ETag"] == etag


@pytest.mark.parametrize("header", ["*", "W/{etag}", '"nope", {etag}'])
def test_if_none_match_matches_a_star_a_weak_form_or_a_list_entry(alice, header):
    path = create(alice)["Location"]
    etag = etag_of(alice, path)

    response = alice.get(path, HTTP_IF_NONE_MATCH=header.format(etag=etag))

    assert response.status_code == HTTPStatus.NOT_MODIFIED


@pytest.mark.parametrize("header", ['"nope"', "garbage", '"0.1"'])
def test_a_read_whose_if_none_match_does_not_match_gets_the_task(alice, header):
    created = create(alice)

    response = alice.get(created["Location"], HTTP_IF_NONE_MATCH=header)

    assert response.status_code == HTTPStatus.OK
    assert response.json() == created.json()


def test_a_read_with_an_outdated_etag_gets_the_new_task(alice):
    path = create(alice)["Location"]
    old = etag_of(alice, path)
    alice.patch(path, {"title": "New"}, format="json")

    response = alice.get(path, HTTP_IF_NONE_MATCH=old)

    assert response.status_code == HTTPStatus.OK
    assert response.json()["title"] == "New"
    assert response["ETag"] != old


@both_families
@pytest.mark.parametrize("write", WRITES)
def test_a_write_with_an_outdated_if_match_is_412_and_changes_nothing(alice, detail, write):
    task_id = create(alice).json()["id"]
    path = detail(alice, task_id)
    old = etag_of(alice, path)
    alice.patch(path, {"description": "changed in another tab"}, format="json")
    before = snapshot(task_id)

    response = writes(alice, path)[write](HTTP_IF_MATCH=old)

    assert response.status_code == HTTPStatus.PRECONDITION_FAILED
    assert response.json() == PRECONDITION_FAILED
    assert snapshot(task_id) == before


@both_families
@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("header", ["{etag}", '"0.0", {etag}', "*"])
def test_a_write_whose_if_match_matches_succeeds(alice, detail, write, header):
    task_id = create(alice).json()["id"]
    path = detail(alice, task_id)
    etag = etag_of(alice, path)

    response = writes(alice, path)[write](HTTP_IF_MATCH=header.format(etag=etag))

    assert response.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT)
    if write == "delete":
        assert snapshot(task_id) is None
    else:
        assert response["ETag"] != etag


@pytest.mark.parametrize("write", WRITES)
def test_a_weak_if_match_never_matches(alice, write):
    path = create(alice)["Location"]
    etag = etag_of(alice, path)

    response = writes(alice, path)[write](HTTP_IF_MATCH=f"W/{etag}")

    assert response.status_code == HTTPStatus.PRECONDITION_FAILED


def test_the_etag_of_another_task_does_not_match(alice):
    first = create(alice, "first")["Location"]
    second = create(alice, "second")["Location"]

    response = alice.patch(second, {"title": "x"}, format="json", HTTP_IF_MATCH=etag_of(alice, first))

    assert response.status_code == HTTPStatus.PRECONDITION_FAILED


@pytest.mark.parametrize("write", WRITES)
def test_writes_without_if_match_work_as_before(alice, write):
    path = create(alice)["Location"]

    response = writes(alice, path)[write]()

    assert response.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT)


def test_a_stale_if_match_is_412_even_when_the_body_is_invalid(alice):
    path = create(alice)["Location"]
    old = etag_of(alice, path)
    alice.patch(path, {"title": "New"}, format="json")

    response = alice.patch(path, {"title": ""}, format="json", HTTP_IF_MATCH=old)

    assert response.status_code == HTTPStatus.PRECONDITION_FAILED


@pytest.mark.parametrize("write", WRITES)
def test_another_users_task_is_404_whatever_if_match_says(alice, bob, write):
    path = create(alice)["Location"]
    etag = etag_of(alice, path)
    bob_path = path.replace(f"/api/{alice.sub}/", f"/api/{bob.sub}/")

    for header in (etag, "*", '"nope"'):
        response = writes(bob, bob_path)[write](HTTP_IF_MATCH=header)
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert response.json() == NOT_FOUND


def test_the_toggle_with_if_match_flips_completed_once(alice):
    task_id = create(alice).json()["id"]
    toggle = f"/api/{alice.sub}/tasks/{task_id}/complete"
    etag = etag_of(alice, f"/api/v1/tasks/{task_id}")

    first = alice.patch(toggle, HTTP_IF_MATCH=etag)
    second = alice.patch(toggle, HTTP_IF_MATCH=etag)

    assert (first.status_code, first.json()["completed"]) == (HTTPStatus.OK, True)
    assert second.status_code == HTTPStatus.PRECONDITION_FAILED
    assert Task.objects.get().completed is True


def test_a_write_that_lost_a_race_writes_the_row_as_it_now_is(alice):
    """services.write's second path: the row changed between the read and the write."""
    task_id = create(alice).json()["id"]
    stale = Task.objects.get(pk=task_id)
    Task.objects.filter(pk=task_id).update(description="written meanwhile")

    services.task_update(stale, title="Mine")

    row = Task.objects.get(pk=task_id)
    assert (row.title, row.description, row.version) == ("Mine", "written meanwhile", 3)
    assert (stale.title, stale.description, stale.version) == ("Mine", "written meanwhile", 3)


def test_a_toggle_that_lost_a_race_toggles_the_row_as_it_now_is(alice):
    task_id = create(alice).json()["id"]
    stale = Task.objects.get(pk=task_id)
    services.task_toggle(Task.objects.get(pk=task_id))

    services.task_toggle(stale)

    assert Task.objects.get(pk=task_id).completed is False


def test_updated_at_of_a_toggle_comes_from_the_same_clock_as_created_at(alice):
    task_id = create(alice).json()["id"]

    toggled = alice.patch(f"/api/{alice.sub}/tasks/{task_id}/complete").json()

    assert toggled["updated_at"] >= toggled["created_at"]


@pytest.mark.parametrize("route", ["/api/v1/tasks?limit=5", "compat"])
def test_a_list_has_a_weak_etag_and_a_matching_if_none_match_is_304(alice, route):
    path = f"/api/{alice.sub}/tasks" if route == "compat" else route
    create(alice)
    etag = etag_of(alice, path)

    response = alice.get(path, HTTP_IF_NONE_MATCH=etag)

    assert etag.startswith('W/"')
    assert response.status_code == HTTPStatus.NOT_MODIFIED
    assert response.content == b""


@pytest.mark.parametrize("change", ["create", "edit", "delete"])
def test_the_list_etag_changes_when_the_page_does(alice, change):
    location = create(alice)["Location"]
    before = etag_of(alice, "/api/v1/tasks")
    {
        "create": lambda: create(alice, "another"),
        "edit": lambda: alice.patch(location, {"completed": True}, format="json"),
        "delete": lambda: alice.delete(location),
    }[change]()

    response = alice.get("/api/v1/tasks", HTTP_IF_NONE_MATCH=before)

    assert response.status_code == HTTPStatus.OK
    assert response["ETag"] != before


def test_pages_of_one_list_have_different_etags(alice):
    for n in range(3):
        create(alice, f"task {n}")

    first, second = (etag_of(alice, f"/api/v1/tasks?limit=1&offset={n}") for n in (0, 1))

    assert first != second


def test_the_list_etag_costs_no_query(alice, django_assert_num_queries):
    create(alice)
    alice.get("/api/v1/tasks")  # the user's token and row are cached from here on

    # The page with its total and its tasks' tags: the ETag adds none.
    with django_assert_num_queries(1):
        response = alice.get("/api/v1/tasks")

    assert response["ETag"]


@both_families
def test_changing_only_the_tags_changes_the_etag_and_outdates_if_match(alice, detail):
    path = detail(alice, create(alice).json()["id"])
    before = etag_of(alice, path)

    tagged = alice.patch(path, {"tags": ["Errands"]}, format="json", HTTP_IF_MATCH=before)

    assert tagged.status_code == HTTPStatus.OK
    assert tagged.json()["tags"] == ["Errands"]
    assert tagged["ETag"] not in (before, None)
    assert etag_of(alice, path) == tagged["ETag"]
    stale = alice.patch(path, {"tags": ["Home"]}, format="json", HTTP_IF_MATCH=before)
    assert stale.status_code == HTTPStatus.PRECONDITION_FAILED
    assert alice.get(path).json()["tags"] == ["Errands"]


@both_families
def test_a_tag_renamed_by_an_admin_changes_the_etag_of_its_tasks(alice, detail):
    task_id = alice.post("/api/v1/tasks", {"title": "Tagged", "tags": ["Errands"]}, format="json").json()[
        "id"
    ]
    path = detail(alice, task_id)
    before = etag_of(alice, path)

    tag = Tag.objects.get(name="Errands")
    tag.name = "Chores"
    services.tag_rename(tag)  # as the admin does

    assert alice.get(path).json()["tags"] == ["Chores"]
    assert etag_of(alice, path) != before


@both_families
def test_a_tag_deleted_by_an_admin_changes_the_etag_of_its_tasks(alice, detail):
    task_id = alice.post("/api/v1/tasks", {"title": "Tagged", "tags": ["Errands"]}, format="json").json()[
        "id"
    ]
    path = detail(alice, task_id)
    before = etag_of(alice, path)

    services.tags_delete(Tag.objects.filter(name="Errands"))  # as the admin's bulk action does

    assert alice.get(path).json()["tags"] == []
    assert etag_of(alice, path) != before


@pytest.mark.parametrize("version", ["²", "٣", "1" * 4400])
def test_an_if_match_version_that_is_not_a_plain_number_matches_nothing(alice, version):
    task_id = create(alice).json()["id"]

    response = alice.patch(
        f"/api/v1/tasks/{task_id}", {"title": "x"}, format="json", HTTP_IF_MATCH=f'"{task_id}.{version}"'
    )

    assert response.status_code == HTTPStatus.PRECONDITION_FAILED


def test_an_if_match_on_a_create_is_ignored_whatever_it_says(alice):
    response = alice.post(
        "/api/v1/tasks", {"title": "x"}, format="json", HTTP_IF_MATCH=f'"None.{"9" * 4400}"'
    )

    assert response.status_code == HTTPStatus.CREATED


def test_an_id_written_with_leading_zeros_is_the_same_task_for_if_match(alice):
    response = create(alice)
    task_id = response.json()["id"]

    updated = alice.patch(
        f"/api/v1/tasks/00{task_id}", {"title": "x"}, format="json", HTTP_IF_MATCH=response["ETag"]
    )

    assert updated.status_code == HTTPStatus.OK
