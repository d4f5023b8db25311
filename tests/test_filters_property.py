"""Model-based: any combination of list filters and orderings returns exactly what a plain-Python
filter and sort over the caller's own tasks returns, on both route families (run on SQLite and PostgreSQL).

Titles are lowercase ASCII and tags ASCII, where every database's collation and lower() agree with Python's.
"""

import functools
import os
from datetime import UTC, datetime
from http import HTTPStatus
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.models import Tag, Task

PRIORITIES = ["low", "medium", "high"]
RANK = {name: rank for rank, name in enumerate(PRIORITIES)}
# Far from today, so `overdue` does not depend on when the test runs; one given with an offset.
MOMENTS = [
    "2001-01-01T00:00:00Z",
    "2020-06-15T12:00:00+02:00",
    "2020-06-15T10:00:00Z",
    "2099-01-01T00:00:00Z",
]
TAG_SPELLINGS = ["Work", "WORK", "work", "home", "Home", "x", "a,b"]
ORDERING_FIELDS = ["created_at", "updated_at", "title", "completed", "priority", "due_at", "completed_at"]
NULLS_LAST = {"due_at", "completed_at"}

tasks = st.lists(
    st.fixed_dictionaries(
        {
            "title": st.text("abc", min_size=1, max_size=3),
            "description": st.text("aBc ", max_size=3),
            "completed": st.booleans(),
            "priority": st.sampled_from(PRIORITIES),
            "due_at": st.none() | st.sampled_from(MOMENTS),
            "tags": st.lists(st.sampled_from(TAG_SPELLINGS), max_size=3),
        }
    ),
    max_size=10,
)


def sometimes(strategy):
    """The parameter in about a third of the queries: with every filter at once, most lists are empty."""
    return st.sampled_from([False, False, True]).flatmap(lambda used: strategy if used else st.none())


orderings = st.lists(
    st.sampled_from([*ORDERING_FIELDS, *(f"-{name}" for name in ORDERING_FIELDS)]), min_size=1, max_size=3
)
queries = st.fixed_dictionaries(
    {
        "completed": sometimes(st.sampled_from(["true", "false"])),
        "priority": sometimes(st.lists(st.sampled_from(PRIORITIES), min_size=1, max_size=3)),
        "priority_form": st.sampled_from(["comma", "repeated"]),
        # "Bob" is a tag only the other user has.
        "tag": sometimes(st.lists(st.sampled_from([*TAG_SPELLINGS, "Bob", "none"]), min_size=1, max_size=2)),
        "due_after": sometimes(st.sampled_from(MOMENTS)),
        "due_before": sometimes(st.sampled_from(MOMENTS)),
        "overdue": sometimes(st.sampled_from(["true", "false"])),
        "has_due": sometimes(st.sampled_from(["true", "false"])),
        "search": sometimes(st.sampled_from(["a", "B", "c"])),
        "ordering": st.none() | orderings,
        "ordering_form": st.sampled_from(["comma", "repeated"]),
    }
).map(lambda query: {name: value for name, value in query.items() if value is not None})


def moment(text):
    return datetime.fromisoformat(text).astimezone(UTC)


def query_string(query):
    params = []
    for name in ("completed", "due_after", "due_before", "overdue", "has_due", "search"):
        if name in query:
            params.append((name, query[name]))
    for name in ("priority", "ordering"):
        if name in query:
            if query.get(f"{name}_form") == "repeated":
                params += [(name, value) for value in query[name]]
            else:
                params.append((name, ",".join(query[name])))
    params += [("tag", name) for name in query.get("tag", [])]
    return urlencode(params)


def matches(task, query, now):
    due = task["due_at"]
    checks = [
        "completed" not in query or task["completed"] == (query["completed"] == "true"),
        "priority" not in query or task["priority"] in query["priority"],
        all(name.lower() in {tag.lower() for tag in task["tags"]} for name in query.get("tag", [])),
        "due_after" not in query or (due is not None and due >= moment(query["due_after"])),
        "due_before" not in query or (due is not None and due < moment(query["due_before"])),
        "has_due" not in query or (due is not None) == (query["has_due"] == "true"),
        "search" not in query
        or query["search"].lower() in task["title"].lower()
        or query["search"].lower() in task["description"].lower(),
    ]
    if "overdue" in query:
        overdue = due is not None and due < now and not task["completed"]
        checks.append(overdue == (query["overdue"] == "true"))
    return all(checks)


def sort_key(name, task):
    if name in ("created_at", "updated_at"):
        return task["id"]  # created one after another: the later, the larger the id
    if name == "priority":
        return RANK[task["priority"]]
    if name == "completed_at":
        return task["completed_order"]
    return task[name]


def compare(fields, left, right):
    for field in [*fields, "-id"]:
        name = field.removeprefix("-")
        a, b = sort_key(name, left), sort_key(name, right)
        if a == b:
            continue
        if name in NULLS_LAST and (a is None or b is None):
            return 1 if a is None else -1
        smaller = a < b
        return (1 if smaller else -1) if field.startswith("-") else (-1 if smaller else 1)
    return 0


def expected_ids(model, query, now):
    found = [task for task in model if matches(task, query, now)]
    ordering = query.get("ordering", ["-created_at"])
    return [
        task["id"] for task in sorted(found, key=functools.cmp_to_key(functools.partial(compare, ordering)))
    ]


@pytest.fixture
def bobs_tags(bob):
    response = bob.post("/api/v1/tasks", {"title": "abc", "tags": ["Bob", "work"]}, format="json")
    assert response.status_code == HTTPStatus.CREATED


@settings(
    max_examples=int(os.environ.get("FILTER_PROPERTY_EXAMPLES", 100)),
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(created=tasks, query=queries, family=st.sampled_from(["v1", "compat"]))
def test_the_list_is_the_python_filter_and_sort_of_the_callers_tasks(
    alice, bob, bobs_tags, created, query, family
):
    Task.objects.filter(owner__sub=alice.sub).delete()
    Tag.objects.filter(owner__sub=alice.sub).delete()
    model, first_spelling = [], {}
    for order, fields in enumerate(created):
        response = alice.post("/api/v1/tasks", fields, format="json")
        assert response.status_code == HTTPStatus.CREATED, response.content
        body = response.json()
        tags = [first_spelling.setdefault(name.lower(), name) for name in fields["tags"]]
        model.append(
            {
                **fields,
                "id": body["id"],
                "tags": tags,
                "due_at": None if fields["due_at"] is None else moment(fields["due_at"]),
                # Completed at creation, in creation order; null (sorted last) when not completed.
                "completed_order": order if fields["completed"] else None,
            }
        )
        assert sorted(body["tags"], key=str.lower) == sorted(set(tags), key=str.lower)
    path = "/api/v1/tasks" if family == "v1" else f"/api/{alice.sub}/tasks"
    now = datetime.now(UTC)

    response = alice.get(f"{path}?{query_string(query)}&limit=100")

    assert response.status_code == HTTPStatus.OK, response.content
    listed = response.json()["results"] if family == "v1" else response.json()
    assert [task["id"] for task in listed] == expected_ids(model, query, now)
