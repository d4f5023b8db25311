"""Safe retries on this test run's own database (SQLite or PostgreSQL), from threads of this process:
one task per Idempotency-Key, one write per If-Match. tests/test_retries_live.py does it through gunicorn."""

import threading
from http import HTTPStatus

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tasks.models import Task


def in_threads(calls):
    """Runs each call in its own thread (its own database connection), all released at once."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_key_make_one_task_on_this_database(token_for, alice_sub):
    """On SQLite the duplicates wait for the write lock (IMMEDIATE transactions), then replay."""
    token = token_for(alice_sub)
    clients = [APIClient() for _ in range(8)]
    for client in clients:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert clients[0].get("/api/v1/me").status_code == HTTPStatus.OK

    responses = in_threads(
        [
            lambda client=client: client.post(
                "/api/v1/tasks", {"title": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="race"
            )
            for client in clients
        ]
    )

    assert {response.status_code for response in responses} == {HTTPStatus.CREATED}
    assert len({response.json()["id"] for response in responses}) == 1
    assert sum("Idempotent-Replayed" not in response for response in responses) == 1
    assert Task.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writes_with_one_if_match_land_once_on_this_database(token_for, alice_sub):
    token = token_for(alice_sub)
    clients = [APIClient() for _ in range(8)]
    for client in clients:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    created = clients[0].post("/api/v1/tasks", {"title": "t"}, format="json")

    responses = in_threads(
        [
            lambda n=n, client=client: client.patch(
                created["Location"], {"title": f"Edit {n}"}, format="json", HTTP_IF_MATCH=created["ETag"]
            )
            for n, client in enumerate(clients)
        ]
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [HTTPStatus.OK] + [HTTPStatus.PRECONDITION_FAILED] * 7
