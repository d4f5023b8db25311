"""GET /api/v1/tags, GET /api/v1/stats and GET /api/{user_id}/stats: the caller's own, counted."""

from datetime import UTC, datetime, time, timedelta
from http import HTTPStatus
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tasks.models import Tag, Task
from tasks.summaries import day_bounds


def create(client, title="t", **fields):
    response = client.post("/api/v1/tasks", {"title": title, **fields}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()


def get(client, path):
    response = client.get(path)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


@pytest.mark.parametrize("slash", ["", "/"])
def test_tags_lists_the_callers_tags_with_counts_sorted_ignoring_case(alice, slash):
    create(alice, tags=["work", "Errands"])
    create(alice, tags=["WORK", "b"])
    create(alice, tags=["Work"])

    assert get(alice, f"/api/v1/tags{slash}") == [
        {"name": "b", "count": 1},
        {"name": "Errands", "count": 1},
        {"name": "work", "count": 3},
    ]


def test_tags_leaves_out_tags_no_task_carries(alice):
    task = create(alice, tags=["gone", "kept"])
    alice.patch(f"/api/v1/tasks/{task['id']}", {"tags": ["kept"]}, format="json")
    create(alice, tags=["deleted"])
    Task.objects.filter(tags__name="deleted").delete()

    assert get(alice, "/api/v1/tags") == [{"name": "kept", "count": 1}]
    assert Tag.objects.count() == 3


def test_tags_never_shows_another_users_tags_or_counts(alice, bob):
    create(alice, tags=["Shared"])
    create(bob, tags=["shared", "bob only"])
    create(bob, tags=["shared"])

    assert get(alice, "/api/v1/tags") == [{"name": "Shared", "count": 1}]
    assert get(bob, "/api/v1/tags") == [{"name": "bob only", "count": 1}, {"name": "shared", "count": 2}]


@pytest.mark.parametrize("path", ["/api/v1/tags", "/api/v1/stats"])
def test_tags_and_stats_need_a_token(anonymous, path):
    response = anonymous.get(path)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["WWW-Authenticate"] == "Bearer"


def test_stats_of_no_tasks_are_zeros(alice):
    assert get(alice, "/api/v1/stats") == {
        "total": 0,
        "completed": 0,
        "open": 0,
        "overdue": 0,
        "due_today": 0,
        "by_priority": {"low": 0, "medium": 0, "high": 0},
    }


def test_stats_summarise_the_callers_tasks(alice, bob):
    now = timezone.now()
    create(alice, priority="high", due_at=(now - timedelta(days=2)).isoformat())
    create(alice, priority="high", due_at=(now - timedelta(days=2)).isoformat(), completed=True)
    create(alice, priority="low")
    create(alice, completed=True)
    create(bob, priority="low", due_at=(now - timedelta(days=2)).isoformat())

    assert get(alice, "/api/v1/stats") == {
        "total": 4,
        "completed": 2,
        "open": 2,
        "overdue": 1,
        "due_today": 0,
        "by_priority": {"low": 1, "medium": 1, "high": 2},
    }


@pytest.mark.parametrize("zone_name", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata"])
def test_due_today_is_today_in_the_given_time_zone(alice, zone_name):
    zone = ZoneInfo(zone_name)
    today = timezone.now().astimezone(zone).date()
    midnight = datetime.combine(today, time(), tzinfo=zone)
    next_midnight = datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)
    dues = (midnight, next_midnight - timedelta(microseconds=1), next_midnight)
    for due in dues:
        create(alice, due_at=due.isoformat())
    today_in_utc = sum(due.astimezone(UTC).date() == timezone.now().date() for due in dues)

    assert get(alice, f"/api/v1/stats?tz={zone_name}")["due_today"] == 2
    assert get(alice, "/api/v1/stats")["due_today"] == today_in_utc
    assert get(alice, "/api/v1/stats?tz=UTC")["due_today"] == today_in_utc


def test_a_day_runs_from_local_midnight_to_the_next():
    paris = ZoneInfo("Europe/Paris")

    start, end = day_bounds(paris, datetime(2026, 12, 1, 23, 30, tzinfo=UTC))

    assert (start, end) == (datetime(2026, 12, 2, tzinfo=paris), datetime(2026, 12, 3, tzinfo=paris))
    assert start.astimezone(UTC) == datetime(2026, 12, 1, 23, tzinfo=UTC)


def test_a_day_in_a_zone_changing_clocks_is_23_hours_long():
    paris = ZoneInfo("Europe/Paris")

    start, end = day_bounds(paris, datetime(2026, 3, 29, 12, tzinfo=UTC))

    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)


@pytest.mark.parametrize(
    "tz", ["Mars/Olympus", "utc", "Europe", "../etc/passwd", "/etc/localtime", "zone.tab", ""]
)
def test_an_unknown_time_zone_is_refused(alice, tz):
    response = alice.get("/api/v1/stats", {"tz": tz})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["fields"] == {"tz": ["Unknown time zone. Send an IANA name, e.g. Europe/Paris."]}


@pytest.mark.parametrize("slash", ["", "/"])
def test_user_stats_count_total_pending_and_completed(alice, bob, slash):
    create(alice)
    create(alice, completed=True)
    create(alice, completed=True)
    create(bob)

    assert get(alice, f"/api/{alice.sub}/stats{slash}") == {"total": 3, "pending": 1, "completed": 2}


def test_user_stats_of_another_user_are_forbidden(alice, bob):
    create(bob)

    response = alice.get(f"/api/{bob.sub}/stats")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "The user id in the path is not yours."


def test_user_stats_need_a_token(anonymous, alice):
    assert anonymous.get(f"/api/{alice.sub}/stats").status_code == HTTPStatus.UNAUTHORIZED
