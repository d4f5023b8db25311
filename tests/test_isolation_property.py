"""Isolation as a property: random sequences of task operations by three users on both route families.

No user reads, changes or learns of another's task (a foreign id answers exactly like an id that never
existed), and each user's list is always what that user created, changed and deleted. The same holds for
tags: the users share tag names in every case, and each one's tag list, tag filter and counts show only
their own.
"""

import json
import os
from http import HTTPStatus

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tasks.models import Tag, Task
from tests.conftest import client_with

NEVER_EXISTED = 987654321987
USERS = ("alice", "bob", "carol")
FAMILIES = ("v1", "compat")

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=20)
titles = text.filter(str.strip)
# Names every user may pick, in several spellings of the same tag.
TAG_NAMES = ["Work", "WORK", "work", "Home", "home", "Secret"]
tag_lists = st.lists(st.sampled_from(TAG_NAMES), max_size=3)
# A PATCH body: any subset of the writable fields.
patches = st.fixed_dictionaries(
    {}, optional={"title": titles, "description": text, "completed": st.booleans(), "tags": tag_lists}
)
users = st.sampled_from(USERS)
families = st.sampled_from(FAMILIES)


def send(client, method, path, body=None):
    if body is None:
        return client.generic(method, path)
    return client.generic(method, path, data=json.dumps(body), content_type="application/json")


def as_model(body):
    return {
        "title": body["title"],
        "description": body["description"],
        "completed": body["completed"],
        "tags": body["tags"],
    }


def sorted_tags(names):
    return sorted(set(names), key=lambda name: (name.lower(), name))


class IsolationMachine(RuleBasedStateMachine):
    """The model: for each user, their tasks' writable fields by id."""

    def __init__(self, clients, subs):
        super().__init__()
        self.clients = clients
        self.subs = subs
        self.model = {user: {} for user in USERS}
        # Each user's tags keep the spelling that user first wrote, whatever the others wrote.
        self.spelling = {user: {} for user in USERS}
        self.ever_created = []

    def collection(self, user, family):
        return "/api/v1/tasks" if family == "v1" else f"/api/{self.subs[user]}/tasks"

    def detail(self, user, family, task_id, suffix=""):
        return f"{self.collection(user, family)}/{task_id}{suffix}"

    def tags_as_stored(self, user, names):
        return sorted_tags(self.spelling[user].setdefault(name.lower(), name) for name in names)

    def owner_of(self, task_id):
        return next((user for user in USERS if task_id in self.model[user]), None)

    def expect_like_never_existing(self, user, method, path_for, body=None):
        """Asks about a task `user` does not own and about one that never existed: same answer."""
        foreign = send(self.clients[user], method, path_for(self.target), body)
        missing = send(self.clients[user], method, path_for(NEVER_EXISTED), body)
        assert foreign.status_code == missing.status_code == HTTPStatus.NOT_FOUND
        assert (
            foreign.json() == missing.json() == {"status": 404, "code": "not_found", "message": "Not found."}
        )

    # What a rule acts on: one of the caller's tasks, someone else's, a deleted one or a made-up id.
    @rule(data=st.data())
    def pick_target(self, data):
        self.target = data.draw(st.sampled_from([*self.ever_created, NEVER_EXISTED]))

    target = NEVER_EXISTED

    @rule(
        user=users, family=families, title=titles, description=text, completed=st.booleans(), tags=tag_lists
    )
    def create(self, user, family, title, description, completed, tags):
        body = {"title": title, "description": description, "completed": completed, "tags": tags}
        response = send(self.clients[user], "POST", self.collection(user, family), body)
        assert response.status_code == HTTPStatus.CREATED, response.content
        created = response.json()
        assert as_model(created) == {**body, "title": title.strip(), "tags": self.tags_as_stored(user, tags)}
        self.model[user][created["id"]] = as_model(created)
        self.ever_created.append(created["id"])

    @rule(user=users, family=families)
    def get(self, user, family):
        if self.target in self.model[user]:
            response = self.clients[user].get(self.detail(user, family, self.target))
            assert response.status_code == HTTPStatus.OK
            assert as_model(response.json()) == self.model[user][self.target]
        else:
            self.expect_like_never_existing(user, "GET", lambda task_id: self.detail(user, family, task_id))

    @rule(
        user=users, family=families, title=titles, description=text, completed=st.booleans(), tags=tag_lists
    )
    def put(self, user, family, title, description, completed, tags):
        body = {"title": title, "description": description, "completed": completed, "tags": tags}
        if self.target in self.model[user]:
            response = send(self.clients[user], "PUT", self.detail(user, family, self.target), body)
            assert response.status_code == HTTPStatus.OK, response.content
            self.model[user][self.target] = {
                **body,
                "title": title.strip(),
                "tags": self.tags_as_stored(user, tags),
            }
            assert as_model(response.json()) == self.model[user][self.target]
        else:
            self.expect_like_never_existing(
                user, "PUT", lambda task_id: self.detail(user, family, task_id), body
            )

    @rule(user=users, family=families, body=patches)
    def patch(self, user, family, body):
        if self.target in self.model[user]:
            response = send(self.clients[user], "PATCH", self.detail(user, family, self.target), body)
            assert response.status_code == HTTPStatus.OK, response.content
            changes = dict(body)
            if "title" in body:
                changes["title"] = body["title"].strip()
            if "tags" in body:
                changes["tags"] = self.tags_as_stored(user, body["tags"])
            self.model[user][self.target] = {**self.model[user][self.target], **changes}
            assert as_model(response.json()) == self.model[user][self.target]
        else:
            self.expect_like_never_existing(
                user, "PATCH", lambda task_id: self.detail(user, family, task_id), body
            )

    @rule(user=users)
    def toggle(self, user):
        def path_for(task_id):
            return self.detail(user, "compat", task_id, "/complete")

        if self.target in self.model[user]:
            response = self.clients[user].patch(path_for(self.target))
            assert response.status_code == HTTPStatus.OK
            task = self.model[user][self.target]
            task["completed"] = not task["completed"]
            assert as_model(response.json()) == task
        else:
            self.expect_like_never_existing(user, "PATCH", path_for)

    @rule(user=users, family=families)
    def delete(self, user, family):
        if self.target in self.model[user]:
            response = self.clients[user].delete(self.detail(user, family, self.target))
            assert response.status_code == HTTPStatus.NO_CONTENT
            del self.model[user][self.target]
        else:
            self.expect_like_never_existing(
                user, "DELETE", lambda task_id: self.detail(user, family, task_id)
            )

    @precondition(lambda self: self.ever_created)
    @rule(
        user=users,
        other=users,
        method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
        data=st.data(),
    )
    def use_another_users_path(self, user, other, method, data):
        """/api/{someone else's id}/...: a 403 that says nothing of whose id it is or of their tasks."""
        if user == other:
            return
        suffix = data.draw(st.sampled_from(["", f"/{self.target}", f"/{self.target}/complete"]))
        body = (
            {"title": "Taken over", "description": "", "completed": True, "tags": ["Secret"]}
            if method in ("POST", "PUT", "PATCH")
            else None
        )
        if suffix.endswith("/complete"):
            method, body = "PATCH", None
        foreign = send(self.clients[user], method, f"/api/{self.subs[other]}/tasks{suffix}", body)
        nobody = send(self.clients[user], method, f"/api/nobody-{self.subs[other]}/tasks{suffix}", body)
        assert foreign.status_code == nobody.status_code == HTTPStatus.FORBIDDEN
        assert (
            foreign.json()
            == nobody.json()
            == {
                "status": 403,
                "code": "permission_denied",
                "message": "The user id in the path is not yours.",
            }
        )

    @rule(user=users, family=families)
    def list_is_the_model(self, user, family):
        self.check_list(user, family)

    def check_list(self, user, family):
        response = self.clients[user].get(
            self.collection(user, family), {"limit": 100} if family == "v1" else {}
        )
        assert response.status_code == HTTPStatus.OK
        listed = response.json()
        if family == "v1":
            assert listed["count"] == len(self.model[user])
            listed = listed["results"]
        assert {task["id"]: as_model(task) for task in listed} == self.model[user]

    @rule(user=users)
    def tags_are_the_users_own(self, user):
        counts = {}
        for task in self.model[user].values():
            for name in task["tags"]:
                counts[name] = counts.get(name, 0) + 1
        response = self.clients[user].get("/api/v1/tags")
        assert response.status_code == HTTPStatus.OK
        assert response.json() == [{"name": name, "count": counts[name]} for name in sorted_tags(counts)]

    @rule(user=users, family=families, name=st.sampled_from(TAG_NAMES))
    def tag_filter_finds_only_the_users_own(self, user, family, name):
        response = self.clients[user].get(
            self.collection(user, family), {"tag": name, **({"limit": 100} if family == "v1" else {})}
        )
        assert response.status_code == HTTPStatus.OK
        listed = response.json()["results"] if family == "v1" else response.json()
        expected = {
            task_id
            for task_id, task in self.model[user].items()
            if name.lower() in {tag.lower() for tag in task["tags"]}
        }
        assert {task["id"] for task in listed} == expected

    @rule(user=users)
    def stats_count_only_the_users_own(self, user):
        tasks = self.model[user].values()
        completed = sum(task["completed"] for task in tasks)
        stats = self.clients[user].get("/api/v1/stats").json()
        assert (stats["total"], stats["completed"], stats["open"]) == (
            len(tasks),
            completed,
            len(tasks) - completed,
        )
        compat = self.clients[user].get(f"/api/{self.subs[user]}/stats").json()
        assert compat == {"total": len(tasks), "pending": len(tasks) - completed, "completed": completed}

    @invariant()
    def every_task_belongs_to_exactly_one_user(self):
        owned = [task_id for user in USERS for task_id in self.model[user]]
        assert len(owned) == len(set(owned))

    def teardown(self):
        for user in USERS:
            for family in FAMILIES:
                self.check_list(user, family)
            self.tags_are_the_users_own(user)


@pytest.fixture
def people(db, token_for):
    subs = {user: f"{user}-{os.urandom(6).hex()}" for user in USERS}
    clients = {user: client_with(token_for(subs[user], name=user.title())) for user in USERS}
    return clients, subs


def test_no_sequence_of_operations_lets_a_user_see_or_touch_anothers_tasks(people):
    clients, subs = people

    def fresh_machine():
        Task.objects.all().delete()  # each run starts from no tasks and no tags; the users stay
        Tag.objects.all().delete()
        return IsolationMachine(clients, subs)

    run_state_machine_as_test(
        fresh_machine,
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            database=None,
            derandomize=bool(os.environ.get("CI")),
            suppress_health_check=list(HealthCheck),
        ),
    )
