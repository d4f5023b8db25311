"""Idempotency-Key on both create routes: one task per key, replays, reuse, scope, expiry and purge."""

import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.management import call_command
from django.db import IntegrityError
from django.utils import timezone

from tasks.idempotency import PURGE_BATCH, purge_expired, remembered
from tasks.models import IdempotencyKey, Task

REUSED = {
    "status": 422,
    "code": "idempotency_key_reused",
    "message": "This Idempotency-Key was used with another request. Use a new key for a new task.",
}
INVALID_KEY = {
    "status": 400,
    "code": "invalid_idempotency_key",
    "message": "Idempotency-Key must be 1 to 255 visible ASCII characters.",
}


def v1_tasks(client):
    return "/api/v1/tasks"


def compat_tasks(client):
    return f"/api/{client.sub}/tasks"


both_families = pytest.mark.parametrize("tasks_of", [v1_tasks, compat_tasks], ids=["v1", "compat"])


def post(client, path, body, key, **extra):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key, **extra)


@both_families
def test_a_retry_replays_the_first_response_and_creates_nothing(alice, tasks_of):
    key = str(uuid.uuid4())
    first = post(alice, tasks_of(alice), {"title": "Buy milk"}, key)

    retry = post(alice, tasks_of(alice), {"title": "Buy milk"}, key)

    assert first.status_code == retry.status_code == HTTPStatus.CREATED
    assert retry.content == first.content
    assert retry["Location"] == first["Location"]
    assert retry["ETag"] == first["ETag"]
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Task.objects.count() == 1


def test_a_replay_on_the_compatibility_routes_repeats_x_ignored_fields(alice):
    body = {"title": "Buy milk", "category": "errands", "dueDate": "2026-12-01"}
    first = post(alice, compat_tasks(alice), body, "k-ignored")

    retry = post(alice, compat_tasks(alice), body, "k-ignored")

    assert first["X-Ignored-Fields"] == retry["X-Ignored-Fields"] == "category, dueDate"
    assert retry["Idempotent-Replayed"] == "true"
    assert Task.objects.count() == 1


def test_a_concurrent_request_whose_result_cannot_be_read_back_is_a_409_saying_so(alice, monkeypatch):
    def lost_race(*args, **kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr("tasks.idempotency.remember", lost_race)

    response = post(alice, "/api/v1/tasks", {"title": "Buy milk"}, "k-raced")

    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json() == {
        "status": 409,
        "code": "idempotency_key_in_progress",
        "message": "Another request with this Idempotency-Key was being handled at the same moment, and "
        "its result could not be read back. Retry the request with the same key.",
    }
    assert Task.objects.count() == 0


def test_an_equal_json_body_is_the_same_request_whatever_its_key_order_and_spacing(alice):
    key = "order"
    first = alice.generic(
        "POST",
        "/api/v1/tasks",
        b'{"title": "Buy milk", "description": "2 litres"}',
        "application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )

    retry = alice.generic(
        "POST",
        "/api/v1/tasks",
        b'{"description":"2 litres","title":"Buy milk"}',
        "application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )

    assert retry.status_code == HTTPStatus.CREATED
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()


@both_families
def test_the_replay_is_the_first_response_even_after_the_task_changed_or_was_deleted(alice, tasks_of):
    first = post(alice, tasks_of(alice), {"title": "Buy milk"}, "k1")
    alice.patch(first["Location"], {"title": "Changed"}, format="json")
    replay_after_change = post(alice, tasks_of(alice), {"title": "Buy milk"}, "k1")
    alice.delete(first["Location"])

    replay_after_delete = post(alice, tasks_of(alice), {"title": "Buy milk"}, "k1")

    for replay in (replay_after_change, replay_after_delete):
        assert replay.status_code == HTTPStatus.CREATED
        assert replay.json() == first.json()
        assert replay["Idempotent-Replayed"] == "true"
    assert Task.objects.count() == 0


@both_families
def test_the_same_key_with_another_body_is_422_and_creates_nothing(alice, tasks_of):
    post(alice, tasks_of(alice), {"title": "Buy milk"}, "k1")

    response = post(alice, tasks_of(alice), {"title": "Buy bread"}, "k1")

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json() == REUSED
    assert list(Task.objects.values_list("title", flat=True)) == ["Buy milk"]


def test_the_same_key_on_the_other_route_family_is_another_request(alice):
    post(alice, "/api/v1/tasks", {"title": "Buy milk"}, "k1")

    response = post(alice, compat_tasks(alice), {"title": "Buy milk"}, "k1")

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert Task.objects.count() == 1


def test_another_users_identical_key_is_unrelated(alice, bob):
    alice_response = post(alice, "/api/v1/tasks", {"title": "Buy milk"}, "shared-key")

    bob_response = post(bob, "/api/v1/tasks", {"title": "Buy milk"}, "shared-key")

    assert bob_response.status_code == HTTPStatus.CREATED
    assert "Idempotent-Replayed" not in bob_response
    assert bob_response.json()["id"] != alice_response.json()["id"]
    assert sorted(Task.objects.values_list("owner__sub", flat=True)) == sorted([alice.sub, bob.sub])


@both_families
@pytest.mark.parametrize(
    "body", [{"title": ""}, {"title": 1}, {"title": "x", "completed": "yes"}], ids=["blank", "number", "yes"]
)
def test_a_refused_create_is_not_remembered_and_its_fixed_retry_succeeds(alice, tasks_of, body):
    refused = post(alice, tasks_of(alice), body, "k1")

    fixed = post(alice, tasks_of(alice), {"title": "Fixed"}, "k1")

    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert fixed.status_code == HTTPStatus.CREATED
    assert "Idempotent-Replayed" not in fixed
    assert Task.objects.get().title == "Fixed"


def test_a_request_refused_for_its_token_is_not_remembered(alice, anonymous):
    refused = post(anonymous, "/api/v1/tasks", {"title": "Buy milk"}, "k1")

    accepted = post(alice, "/api/v1/tasks", {"title": "Buy milk"}, "k1")

    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert accepted.status_code == HTTPStatus.CREATED
    assert "Idempotent-Replayed" not in accepted
    assert IdempotencyKey.objects.count() == 1


def test_a_malformed_json_body_is_not_remembered(alice):
    refused = alice.generic(
        "POST", "/api/v1/tasks", b'{"title": ', "application/json", HTTP_IDEMPOTENCY_KEY="k1"
    )

    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert IdempotencyKey.objects.count() == 0


@both_families
@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "has space", "tab\there", "caf\u00e9", "new\nline"],
    ids=["empty", "256-chars", "space", "tab", "non-ascii", "newline"],
)
def test_a_malformed_key_is_400_and_creates_nothing(alice, tasks_of, key):
    response = post(alice, tasks_of(alice), {"title": "Buy milk"}, key)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == INVALID_KEY
    assert Task.objects.count() == 0


@pytest.mark.parametrize("key", ["a", "x" * 255, "!~", str(uuid.uuid4())], ids=["1", "255", "edges", "uuid"])
def test_keys_of_1_to_255_visible_ascii_characters_are_accepted(alice, key):
    assert post(alice, "/api/v1/tasks", {"title": "Buy milk"}, key).status_code == HTTPStatus.CREATED


def test_creates_without_a_key_are_never_replayed(alice):
    for _ in range(2):
        response = alice.post("/api/v1/tasks", {"title": "Buy milk"}, format="json")
        assert "Idempotent-Replayed" not in response

    assert Task.objects.count() == 2
    assert IdempotencyKey.objects.count() == 0


def test_a_key_is_remembered_for_the_ttl_and_forgotten_after_it(alice, settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    post(alice, "/api/v1/tasks", {"title": "Buy milk"}, "k1")
    record = IdempotencyKey.objects.get()
    now = timezone.now()

    assert remembered(record.owner, "k1", now=now + timedelta(hours=23, minutes=59)) == record
    assert remembered(record.owner, "k1", now=now + timedelta(hours=24, minutes=1)) is None
    assert IdempotencyKey.objects.count() == 0


def test_after_the_ttl_the_key_creates_a_new_task(alice):
    post(alice, "/api/v1/tasks", {"title": "Buy milk"}, "k1")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))

    response = post(alice, "/api/v1/tasks", {"title": "Buy bread"}, "k1")

    assert response.status_code == HTTPStatus.CREATED
    assert "Idempotent-Replayed" not in response
    assert Task.objects.count() == 2


def expire_keys(client, count):
    for n in range(count):
        post(client, "/api/v1/tasks", {"title": f"old {n}"}, f"old-{n}")
    IdempotencyKey.objects.filter(key__startswith="old-").update(
        created_at=timezone.now() - timedelta(days=2)
    )


def test_the_purge_command_deletes_expired_keys_only(alice, capsys):
    post(alice, "/api/v1/tasks", {"title": "fresh"}, "fresh")
    expire_keys(alice, 3)

    call_command("purge_idempotency_keys")

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]
    assert "Deleted 3 expired idempotency keys." in capsys.readouterr().out


def test_each_new_key_purges_a_batch_of_expired_ones_so_nobody_has_to(alice):
    expire_keys(alice, PURGE_BATCH + 2)

    post(alice, "/api/v1/tasks", {"title": "new"}, "new")

    assert IdempotencyKey.objects.count() == 1 + 2
    post(alice, "/api/v1/tasks", {"title": "newer"}, "newer")
    assert set(IdempotencyKey.objects.values_list("key", flat=True)) == {"new", "newer"}


def test_the_purge_deletes_the_oldest_first(alice):
    expire_keys(alice, 3)
    IdempotencyKey.objects.filter(key="old-1").update(created_at=timezone.now() - timedelta(days=9))

    assert purge_expired(limit=1) == 1

    assert set(IdempotencyKey.objects.values_list("key", flat=True)) == {"old-0", "old-2"}
