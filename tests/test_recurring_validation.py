"""Every bad recurrence, time zone, repeat_from and reminder is a 400 naming the field, with nothing
written, on both route families; and the recurring / has_reminder filters.

The last class sends a few of them to gunicorn started as in production: JSON 400s there too.
"""

from http import HTTPStatus

import pytest

from tasks.models import Change, Task
from tests.live_server import LiveServer, hs256_token
from tests.support.api import as_json

DUE = "2026-12-07T08:00:00Z"
FAMILIES = ["v1", "compat"]


def tasks_of(client, family):
    return "/api/v1/tasks" if family == "v1" else f"/api/{client.sub}/tasks"


def create(client, **fields):
    response = client.post("/api/v1/tasks", {"title": "Water the plants", **fields}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    return Task.objects.get(pk=response.json()["id"])


def assert_invalid(response, field, *named):
    """A 400 in the one error shape on `field` alone, its message naming each of `named`."""
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["status"], body["code"], body["message"]) == (
        400,
        "invalid",
        "The request has invalid fields.",
    )
    assert list(body["fields"]) == [field], body
    [message] = body["fields"][field]
    for name in named:
        assert name in message, message


def assert_nothing_created(client):
    assert not Task.objects.filter(owner__sub=client.sub).exists()
    assert not Change.objects.exists()


@pytest.fixture
def unchanged():
    """Checks after a refused write that the task reads exactly as before it, with no change recorded."""
    snapshots = {}

    def take(task):
        snapshots[task.pk] = (as_json(task), task.version, Change.objects.count())
        return task

    yield take
    for pk, (body, version, changes) in snapshots.items():
        task = Task.objects.get(pk=pk)
        assert (as_json(task), task.version, Change.objects.count()) == (body, version, changes)


BAD_RULES = [
    ("FREQ=SECONDLY", ["FREQ", "SECONDLY"]),
    ("FREQ=MINUTELY", ["FREQ", "MINUTELY"]),
    ("FREQ=HOURLY", ["FREQ", "HOURLY"]),
    ("FREQ=DAILY;BYSETPOS=1", ["BYSETPOS"]),
    ("FREQ=DAILY;BYHOUR=9", ["BYHOUR"]),
    ("FREQ=WEEKLY;WKST=MO", ["WKST"]),
    ("FREQ=DAILY;INTERVAL=0", ["INTERVAL"]),
    ("FREQ=DAILY;INTERVAL=1001", ["INTERVAL"]),
    ("FREQ=DAILY;INTERVAL=-1", ["INTERVAL"]),
    ("FREQ=DAILY;INTERVAL=٣", ["INTERVAL"]),
    ("FREQ=DAILY;COUNT=0", ["COUNT"]),
    ("FREQ=DAILY;COUNT=1001", ["COUNT"]),
    ("FREQ=DAILY;COUNT=5;UNTIL=20271231T000000Z", ["COUNT", "UNTIL"]),
    ("FREQ=DAILY;UNTIL=2027-12-31", ["UNTIL"]),
    ("FREQ=DAILY;UNTIL=20271331T000000Z", ["UNTIL"]),
    ("FREQ=WEEKLY;BYDAY=XX", ["BYDAY"]),
    ("FREQ=WEEKLY;BYDAY=2TU", ["BYDAY", "MONTHLY"]),
    ("FREQ=MONTHLY;BYDAY=6TU", ["BYDAY"]),
    ("FREQ=MONTHLY;BYDAY=0MO", ["BYDAY"]),
    ("FREQ=MONTHLY;BYMONTHDAY=0", ["BYMONTHDAY"]),
    ("FREQ=MONTHLY;BYMONTHDAY=32", ["BYMONTHDAY"]),
    ("FREQ=YEARLY;BYMONTH=13", ["BYMONTH"]),
    ("FREQ=DAILY;FREQ=WEEKLY", ["FREQ", "twice"]),
    ("FREQ=DAILY;INTERVAL=2;INTERVAL=3", ["INTERVAL", "twice"]),
    ("INTERVAL=2", ["FREQ"]),
    ("", ["Unsupported part"]),
    (";", ["Unsupported part"]),
    ("FREQ=DAILY;" + "BYMONTH=1;" * 499, ["500 characters"]),
    (5, ["RRULE string"]),
    (["FREQ=DAILY"], ["RRULE string"]),
    ({"FREQ": "DAILY"}, ["RRULE string"]),
]
BAD_RULE_IDS = [rule[:40] if isinstance(rule, str) and rule else repr(rule)[:40] for rule, _ in BAD_RULES]


class TestRules:
    @pytest.mark.parametrize("family", FAMILIES)
    @pytest.mark.parametrize("rule,named", BAD_RULES, ids=BAD_RULE_IDS)
    def test_creating_a_task_with_a_rule_it_does_not_take_is_400_naming_the_part(
        self, alice, family, rule, named
    ):
        response = alice.post(
            tasks_of(alice, family), {"title": "x", "due_at": DUE, "recurrence": rule}, format="json"
        )

        assert_invalid(response, "recurrence", *named)
        assert_nothing_created(alice)

    @pytest.mark.parametrize("family", FAMILIES)
    @pytest.mark.parametrize("rule,named", BAD_RULES, ids=BAD_RULE_IDS)
    def test_patching_in_a_rule_it_does_not_take_is_400_and_leaves_the_task(
        self, alice, unchanged, family, rule, named
    ):
        task = unchanged(create(alice, due_at=DUE, recurrence="FREQ=WEEKLY"))

        response = alice.patch(f"{tasks_of(alice, family)}/{task.pk}", {"recurrence": rule}, format="json")

        assert_invalid(response, "recurrence", *named)

    def test_a_rule_of_5000_characters_is_400_not_500(self, alice):
        response = alice.post(
            "/api/v1/tasks",
            {"title": "x", "due_at": DUE, "recurrence": "FREQ=DAILY;" + "X" * 4989},
            format="json",
        )

        assert_invalid(response, "recurrence", "at most 500 characters")
        assert_nothing_created(alice)

    @pytest.mark.parametrize("family", FAMILIES)
    def test_the_rrule_prefix_is_accepted_and_returned_without_it(self, alice, family):
        response = alice.post(
            tasks_of(alice, family),
            {"title": "x", "due_at": DUE, "recurrence": "RRULE:FREQ=WEEKLY;BYDAY=MO"},
            format="json",
        )

        assert response.status_code == HTTPStatus.CREATED, response.content
        assert response.json()["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"

    @pytest.mark.parametrize("family", FAMILIES)
    def test_a_rule_is_stored_upper_case_without_the_prefix(self, alice, family):
        response = alice.post(
            tasks_of(alice, family),
            {"title": "x", "due_at": DUE, "recurrence": "RRULE:freq=monthly;byday=-1fr"},
            format="json",
        )

        assert response.status_code == HTTPStatus.CREATED, response.content
        assert response.json()["recurrence"] == "FREQ=MONTHLY;BYDAY=-1FR"
        assert Task.objects.get(pk=response.json()["id"]).recurrence == "FREQ=MONTHLY;BYDAY=-1FR"

    @pytest.mark.parametrize("family", FAMILIES)
    def test_a_null_rule_ends_the_series_and_the_task_stays(self, alice, family):
        task = create(alice, due_at=DUE, recurrence="FREQ=DAILY")

        response = alice.patch(f"{tasks_of(alice, family)}/{task.pk}", {"recurrence": None}, format="json")

        assert response.status_code == HTTPStatus.OK, response.content
        assert response.json() == as_json(task)
        assert (task.recurrence, task.due_at.isoformat()) == (None, "2026-12-07T08:00:00+00:00")


class TestTheSeries:
    @pytest.mark.parametrize("family", FAMILIES)
    def test_a_rule_without_a_due_date_is_400_on_recurrence(self, alice, family):
        response = alice.post(
            tasks_of(alice, family), {"title": "x", "recurrence": "FREQ=DAILY"}, format="json"
        )

        assert_invalid(response, "recurrence", "due_at")
        assert_nothing_created(alice)

    @pytest.mark.parametrize("family", FAMILIES)
    def test_adding_a_rule_to_a_task_without_a_due_date_is_400_on_recurrence(self, alice, unchanged, family):
        task = unchanged(create(alice))

        response = alice.patch(
            f"{tasks_of(alice, family)}/{task.pk}", {"recurrence": "FREQ=DAILY"}, format="json"
        )

        assert_invalid(response, "recurrence", "due_at")

    @pytest.mark.parametrize("family", FAMILIES)
    def test_clearing_the_due_date_of_a_recurring_task_is_400_on_due_at(self, alice, unchanged, family):
        task = unchanged(create(alice, due_at=DUE, recurrence="FREQ=DAILY"))

        response = alice.patch(f"{tasks_of(alice, family)}/{task.pk}", {"due_at": None}, format="json")

        assert_invalid(response, "due_at", "recurrence: null")

    @pytest.mark.parametrize("family", FAMILIES)
    def test_until_before_the_due_date_is_400(self, alice, family):
        response = alice.post(
            tasks_of(alice, family),
            {"title": "x", "due_at": DUE, "recurrence": "FREQ=DAILY;UNTIL=20261207T075959Z"},
            format="json",
        )

        assert_invalid(response, "recurrence", "UNTIL", "due_at")
        assert_nothing_created(alice)

    @pytest.mark.parametrize("family", FAMILIES)
    def test_moving_the_due_date_past_until_is_400(self, alice, unchanged, family):
        task = unchanged(create(alice, due_at=DUE, recurrence="FREQ=DAILY;UNTIL=20261231T000000Z"))

        response = alice.patch(
            f"{tasks_of(alice, family)}/{task.pk}", {"due_at": "2027-01-01T00:00:00Z"}, format="json"
        )

        assert_invalid(response, "recurrence", "UNTIL")

    def test_until_at_the_due_date_is_accepted(self, alice):
        response = alice.post(
            "/api/v1/tasks",
            {"title": "x", "due_at": DUE, "recurrence": "FREQ=DAILY;UNTIL=20261207T080000Z"},
            format="json",
        )

        assert response.status_code == HTTPStatus.CREATED, response.content

    @pytest.mark.parametrize("family", FAMILIES)
    def test_repeating_from_the_completion_with_byday_is_400_naming_byday(self, alice, family):
        response = alice.post(
            tasks_of(alice, family),
            {"title": "x", "due_at": DUE, "recurrence": "FREQ=WEEKLY;BYDAY=MO", "repeat_from": "completion"},
            format="json",
        )

        assert_invalid(response, "recurrence", "BYDAY")
        assert_nothing_created(alice)

    @pytest.mark.parametrize("family", FAMILIES)
    def test_switching_a_byday_series_to_repeat_from_the_completion_is_400(self, alice, unchanged, family):
        task = unchanged(create(alice, due_at=DUE, recurrence="FREQ=MONTHLY;BYMONTHDAY=-1"))

        response = alice.patch(
            f"{tasks_of(alice, family)}/{task.pk}", {"repeat_from": "completion"}, format="json"
        )

        assert_invalid(response, "recurrence", "BYMONTHDAY")

    def test_repeating_from_the_completion_takes_freq_interval_count_and_until(self, alice):
        response = alice.post(
            "/api/v1/tasks",
            {
                "title": "x",
                "due_at": DUE,
                "recurrence": "FREQ=WEEKLY;INTERVAL=2;COUNT=3",
                "repeat_from": "completion",
            },
            format="json",
        )

        assert response.status_code == HTTPStatus.CREATED, response.content
        assert response.json()["repeat_from"] == "completion"


class TestTimeZones:
    @pytest.mark.parametrize("family", FAMILIES)
    @pytest.mark.parametrize(
        "zone", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "Europe/Berlin ", 5, None]
    )
    def test_an_unknown_time_zone_is_400(self, alice, family, zone):
        response = alice.post(
            tasks_of(alice, family),
            {"title": "x", "due_at": DUE, "recurrence": "FREQ=DAILY", "time_zone": zone},
            format="json",
        )

        assert_invalid(response, "time_zone")
        assert_nothing_created(alice)

    @pytest.mark.parametrize("family", FAMILIES)
    def test_patching_in_an_unknown_time_zone_leaves_the_task(self, alice, unchanged, family):
        task = unchanged(create(alice, due_at=DUE, recurrence="FREQ=DAILY", time_zone="Europe/Berlin"))

        response = alice.patch(
            f"{tasks_of(alice, family)}/{task.pk}", {"time_zone": "Mars/Olympus"}, format="json"
        )

        assert_invalid(response, "time_zone", "IANA")

    def test_a_known_zone_is_stored_and_utc_is_the_default(self, alice):
        berlin = alice.post(
            "/api/v1/tasks", {"title": "x", "time_zone": "Australia/Lord_Howe"}, format="json"
        )
        default = alice.post("/api/v1/tasks", {"title": "y"}, format="json")

        assert berlin.json()["time_zone"] == "Australia/Lord_Howe"
        assert default.json()["time_zone"] == "UTC"


class TestRepeatFrom:
    @pytest.mark.parametrize("family", FAMILIES)
    @pytest.mark.parametrize("value", ["later", "Due", "", None, 1, True])
    def test_anything_but_due_or_completion_is_400(self, alice, family, value):
        response = alice.post(
            tasks_of(alice, family),
            {"title": "x", "due_at": DUE, "recurrence": "FREQ=DAILY", "repeat_from": value},
            format="json",
        )

        assert_invalid(response, "repeat_from")
        assert_nothing_created(alice)


class TestReminders:
    @pytest.mark.parametrize("family", FAMILIES)
    @pytest.mark.parametrize(
        "remind_at",
        [
            "2026-12-07T07:30:00",  # naive: in which zone?
            "2026-12-07 07:30:00Z",
            "2026-12-07",
            "1899-12-31T23:59:59Z",
            "10000-01-01T00:00:00Z",
            "9999-12-31T23:30:00-01:00",  # 10000 in UTC
            "2026-02-30T07:30:00Z",
            1765092600,
        ],
    )
    def test_a_reminder_without_an_offset_or_out_of_range_is_400(self, alice, family, remind_at):
        response = alice.post(
            tasks_of(alice, family), {"title": "x", "due_at": DUE, "remind_at": remind_at}, format="json"
        )

        assert_invalid(response, "remind_at", "RFC 3339")
        assert_nothing_created(alice)

    @pytest.mark.parametrize("family", FAMILIES)
    def test_patching_in_a_naive_reminder_leaves_the_task(self, alice, unchanged, family):
        task = unchanged(create(alice, due_at=DUE, remind_at="2026-12-07T07:30:00Z"))

        response = alice.patch(
            f"{tasks_of(alice, family)}/{task.pk}", {"remind_at": "2026-12-07T07:00:00"}, format="json"
        )

        assert_invalid(response, "remind_at")

    def test_a_reminder_with_an_offset_is_returned_in_utc(self, alice):
        response = alice.post(
            "/api/v1/tasks", {"title": "x", "remind_at": "1900-01-01T01:00:00+01:00"}, format="json"
        )

        assert response.status_code == HTTPStatus.CREATED, response.content
        assert response.json()["remind_at"] == "1900-01-01T00:00:00Z"


class TestFilters:
    @pytest.fixture
    def tasks(self, alice, bob):
        """Alice's four kinds of task, and a recurring one with a reminder of Bob's."""
        create(bob, due_at=DUE, recurrence="FREQ=DAILY", remind_at=DUE)
        return {
            "both": create(alice, due_at=DUE, recurrence="FREQ=DAILY", remind_at=DUE).pk,
            "recurring": create(alice, due_at=DUE, recurrence="FREQ=WEEKLY").pk,
            "reminder": create(alice, remind_at=DUE).pk,
            "neither": create(alice, due_at=DUE).pk,
        }

    @pytest.mark.parametrize("family", FAMILIES)
    @pytest.mark.parametrize(
        "query,expected",
        [
            ("recurring=true", {"both", "recurring"}),
            ("recurring=false", {"reminder", "neither"}),
            ("has_reminder=true", {"both", "reminder"}),
            ("has_reminder=false", {"recurring", "neither"}),
            ("recurring=true&has_reminder=false", {"recurring"}),
            ("recurring=false&has_reminder=true", {"reminder"}),
        ],
    )
    def test_recurring_and_has_reminder_filter_the_callers_tasks(self, alice, tasks, family, query, expected):
        response = alice.get(f"{tasks_of(alice, family)}?{query}")

        assert response.status_code == HTTPStatus.OK, response.content
        listed = response.json()["results"] if family == "v1" else response.json()
        assert {task["id"] for task in listed} == {tasks[name] for name in expected}

    @pytest.mark.parametrize("family", FAMILIES)
    @pytest.mark.parametrize(
        "query,parameter",
        [("recurring=maybe", "recurring"), ("has_reminder=2", "has_reminder"), ("recurring=", "recurring")],
    )
    def test_a_filter_value_that_is_not_a_boolean_is_400_naming_the_parameter(
        self, alice, family, query, parameter
    ):
        response = alice.get(f"{tasks_of(alice, family)}?{query}")

        assert_invalid(response, parameter)
        assert response.json()["fields"] == {parameter: ["Must be true or false."]}


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("recurring-validation"), workers=1, threads=2)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def gunicorn_token(gunicorn_server):
    token = hs256_token("recurring-validation-user")
    assert gunicorn_server.request("GET", "/api/v1/me", token=token)[0] == HTTPStatus.OK
    return token


@pytest.mark.live
class TestUnderGunicorn:
    """As production starts the server: the refusals are JSON 400s, not HTML or 500s."""

    @pytest.mark.parametrize(
        "fields,field",
        [
            ({"recurrence": "FREQ=DAILY;" + "X" * 4989}, "recurrence"),
            ({"recurrence": "FREQ=SECONDLY"}, "recurrence"),
            ({"recurrence": "FREQ=DAILY", "time_zone": "Mars/Olympus"}, "time_zone"),
        ],
        ids=["5000-characters", "secondly", "mars"],
    )
    def test_a_bad_series_is_a_json_400(self, gunicorn_server, gunicorn_token, fields, field):
        status, body, headers = gunicorn_server.request(
            "POST", "/api/v1/tasks", token=gunicorn_token, body={"title": "x", "due_at": DUE, **fields}
        )

        assert status == HTTPStatus.BAD_REQUEST
        assert headers["Content-Type"] == "application/json"
        assert (body["code"], list(body["fields"])) == ("invalid", [field])
        assert gunicorn_server.request("GET", "/api/v1/tasks", token=gunicorn_token)[1]["results"] == []
