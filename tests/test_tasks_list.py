"""GET /api/v1/tasks: limit/offset pages, the `completed` filter, literal `search` and strict `ordering`."""

from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest

from authbridge.models import User
from tasks.models import Task
from tests.support.api import both_slash_forms

START = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def alice_user(alice):
    return User.objects.create(username=alice.sub, sub=alice.sub)


def add_tasks(owner, *titles, **fields):
    """Tasks created one minute apart, in the order given, so the newest is the last."""
    tasks = []
    for minute, title in enumerate(titles):
        task = Task.objects.create(owner=owner, title=title, **fields)
        moment = START + timedelta(minutes=minute)
        Task.objects.filter(pk=task.pk).update(created_at=moment, updated_at=moment)
        tasks.append(task)
    return tasks


def titles(response):
    return [task["title"] for task in response.json()["results"]]


def listed(client, query=""):
    response = client.get(f"/api/v1/tasks?{query}")
    assert response.status_code == HTTPStatus.OK, response.content
    return response


def invalid(field, message):
    return {
        "status": 400,
        "code": "invalid",
        "message": "The request has invalid fields.",
        "fields": {field: [message]},
    }


@both_slash_forms
def test_it_lists_the_callers_tasks_newest_first_in_a_page(alice, alice_user, slash):
    first, second = add_tasks(alice_user, "first", "second")

    response = alice.get(f"/api/v1/tasks{slash}")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": task.pk,
                "title": task.title,
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
                "created_at": iso,
                "updated_at": iso,
            }
            for task, iso in ((second, "2020-01-01T00:01:00Z"), (first, "2020-01-01T00:00:00Z"))
        ],
    }


def test_an_empty_list_is_an_empty_page(alice):
    assert listed(alice).json() == {"count": 0, "next": None, "previous": None, "results": []}


@both_slash_forms
def test_limit_and_offset_page_through_the_list_with_next_and_previous_links(alice, alice_user, slash):
    add_tasks(alice_user, "t1", "t2", "t3", "t4", "t5")
    path = f"/api/v1/tasks{slash}"

    page = alice.get(f"{path}?limit=2&offset=2").json()

    assert page["count"] == 5
    assert [task["title"] for task in page["results"]] == ["t3", "t2"]
    assert page["next"] == f"http://testserver{path}?limit=2&offset=4"
    assert page["previous"] == f"http://testserver{path}?limit=2"
    last = alice.get(page["next"].removeprefix("http://testserver")).json()
    assert ([task["title"] for task in last["results"]], last["next"]) == (["t1"], None)


def test_the_default_page_size_is_20(alice, alice_user):
    add_tasks(alice_user, *[f"t{n}" for n in range(25)])

    page = listed(alice).json()

    assert (page["count"], len(page["results"])) == (25, 20)
    assert page["next"] == "http://testserver/api/v1/tasks?limit=20&offset=20"


def test_a_limit_of_100_is_the_largest_page(alice, alice_user):
    add_tasks(alice_user, *[f"t{n}" for n in range(105)])

    page = listed(alice, "limit=100").json()

    assert (page["count"], len(page["results"])) == (105, 100)
    assert page["next"] == "http://testserver/api/v1/tasks?limit=100&offset=100"


@pytest.mark.parametrize(
    "limit", ["0", "101", "10000", "-1", "abc", "", "1.5", "+5", " 5", "\u0665", "1" * 4400]
)
def test_a_limit_that_is_not_an_integer_from_1_to_100_is_400(alice, limit):
    response = alice.get("/api/v1/tasks", {"limit": limit})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["fields"] == {"limit": ["Must be an integer from 1 to 100."]}


@pytest.mark.parametrize("offset", ["-5", "abc", "", "2147483648", str(10**30), "1e3", "1" * 4400])
def test_an_offset_that_is_not_an_integer_in_range_is_400(alice, offset):
    response = alice.get("/api/v1/tasks", {"limit": 2, "offset": offset})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["fields"] == {"offset": ["Must be an integer from 0 to 2147483647."]}


@pytest.mark.parametrize("offset", ["3", "1000", "2147483647"])
def test_an_offset_past_the_end_is_an_empty_page(alice, alice_user, offset):
    add_tasks(alice_user, "t1", "t2", "t3")

    page = listed(alice, f"limit=2&offset={offset}").json()

    assert (page["count"], page["results"], page["next"]) == (3, [], None)
    assert page["previous"] == f"http://testserver/api/v1/tasks?limit=2&offset={int(offset) - 2}"


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "1"])
def test_completed_true_lists_only_completed_tasks(alice, alice_user, value):
    add_tasks(alice_user, "open")
    add_tasks(alice_user, "done", completed=True)

    assert titles(listed(alice, f"completed={value}")) == ["done"]


@pytest.mark.parametrize("value", ["false", "False", "0"])
def test_completed_false_lists_only_open_tasks(alice, alice_user, value):
    add_tasks(alice_user, "open")
    add_tasks(alice_user, "done", completed=True)

    assert titles(listed(alice, f"completed={value}")) == ["open"]


@pytest.mark.parametrize("value", ["yes", "no", "2", "", "null", "truee"])
def test_completed_refuses_anything_but_true_false_1_or_0(alice, value):
    response = alice.get(f"/api/v1/tasks?completed={value}")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == invalid("completed", "Must be true or false.")


def test_search_matches_title_or_description_case_insensitively(alice, alice_user):
    add_tasks(alice_user, "Buy MILK", "Call mum", "Pay rent")
    Task.objects.filter(title="Call mum").update(description="about the milk money")

    assert titles(listed(alice, "search=milk")) == ["Call mum", "Buy MILK"]
    assert titles(listed(alice, "search=MiLk")) == ["Call mum", "Buy MILK"]


def test_search_matches_the_whole_phrase_not_each_word(alice, alice_user):
    add_tasks(alice_user, "buy milk", "milk to buy")

    assert titles(listed(alice, "search=buy+milk")) == ["buy milk"]


@pytest.mark.parametrize(
    "term, expected",
    [
        ("%25", ["100% done"]),
        ("_", ["snake_case"]),
        ("%5C", ["back\\slash"]),
        (".*", ["regex .* literal"]),
        ("a.c", ["a.c"]),
        ("%5B", ["[bracket"]),
        ("%5E", []),
    ],
)
def test_search_treats_wildcard_and_regex_characters_literally(alice, alice_user, term, expected):
    add_tasks(
        alice_user,
        "100% done",
        "snake_case",
        "back\\slash",
        "regex .* literal",
        "a.c",
        "abc",
        "[bracket",
        "plain",
    )

    assert titles(listed(alice, f"search={term}")) == expected


def test_a_blank_search_lists_everything(alice, alice_user):
    add_tasks(alice_user, "one", "two")

    assert titles(listed(alice, "search=+++")) == ["two", "one"]


def test_a_search_of_100_characters_is_answered(alice):
    assert listed(alice, f"search={'a' * 100}").json()["count"] == 0


def test_a_search_of_over_100_characters_is_refused(alice):
    response = alice.get(f"/api/v1/tasks?search={'a' * 101}")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == invalid("search", "At most 100 characters.")


@pytest.mark.parametrize(
    "ordering, expected",
    [
        ("title", ["apple", "banana", "cherry"]),
        ("-title", ["cherry", "banana", "apple"]),
        ("created_at", ["banana", "cherry", "apple"]),
        ("-created_at", ["apple", "cherry", "banana"]),
        ("updated_at", ["banana", "cherry", "apple"]),
        ("-updated_at", ["apple", "cherry", "banana"]),
        ("completed", ["apple", "banana", "cherry"]),
        ("-completed", ["cherry", "apple", "banana"]),
        ("completed,-title", ["banana", "apple", "cherry"]),
        ("-completed,title", ["cherry", "apple", "banana"]),
    ],
)
def test_ordering_sorts_by_the_allowed_fields(alice, alice_user, ordering, expected):
    # banana is oldest, apple newest; only cherry is completed.
    add_tasks(alice_user, "banana")
    add_tasks(alice_user, "cherry", completed=True)
    Task.objects.filter(title="cherry").update(
        created_at=START + timedelta(minutes=1), updated_at=START + timedelta(minutes=1)
    )
    Task.objects.create(owner=alice_user, title="apple")

    assert titles(listed(alice, f"ordering={ordering}")) == expected


def test_ties_in_ordering_break_on_the_newest_id_first(alice, alice_user):
    same = add_tasks(alice_user, "same", "same", "same")
    Task.objects.update(created_at=START)

    assert [task["id"] for task in listed(alice, "ordering=title").json()["results"]] == [
        task.pk for task in reversed(same)
    ]


@pytest.mark.parametrize(
    "ordering", ["owner", "-owner", "owner__email", "id,password", "title,", "description", "?"]
)
def test_ordering_by_anything_else_is_refused(alice, ordering):
    response = alice.get("/api/v1/tasks", {"ordering": ordering})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    body = response.json()
    assert (body["status"], body["code"], body["message"], list(body["fields"])) == (
        400,
        "invalid",
        "The request has invalid fields.",
        ["ordering"],
    )
    assert body["fields"]["ordering"][0].startswith("Unknown field: ")
    assert body["fields"]["ordering"][0].endswith(
        "Allowed: completed, completed_at, created_at, due_at, priority, title, updated_at."
    )


def test_an_empty_ordering_is_refused(alice):
    response = alice.get("/api/v1/tasks?ordering=")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["fields"] == {"ordering": ["Name at least one field, or leave ordering out."]}


def test_filter_search_ordering_and_paging_combine(alice, alice_user):
    add_tasks(alice_user, "milk a", "milk b", "bread")
    add_tasks(alice_user, "milk c", "milk d", completed=True)

    page = listed(alice, "completed=false&search=MILK&ordering=-title&limit=1").json()

    assert (page["count"], [task["title"] for task in page["results"]]) == (2, ["milk b"])
