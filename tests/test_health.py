"""Liveness (/healthz) touches nothing; readiness (/readyz) queries the tasks table. Neither needs a token."""

from http import HTTPStatus

from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tasks.models import Task
from tests.support.api import both_slash_forms


@both_slash_forms
def test_healthz_answers_ok_without_touching_the_database(db, django_assert_num_queries, slash):
    with django_assert_num_queries(0):
        response = APIClient().get(f"/healthz{slash}")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ok"}
    assert response["Content-Type"] == "application/json"


def test_healthz_ignores_an_authorization_header(db, django_assert_num_queries):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")

    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert (response.status_code, response.json()) == (HTTPStatus.OK, {"status": "ok"})


@both_slash_forms
def test_readyz_answers_ready_after_querying_the_tasks_table(db, slash):
    with CaptureQueriesContext(connection) as queries:
        response = APIClient().get(f"/readyz{slash}")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ready"}
    assert [query["sql"] for query in queries if Task._meta.db_table in query["sql"]]


@both_slash_forms
def test_readyz_is_503_with_retry_after_when_the_database_fails(db, monkeypatch, slash):
    def fail():
        raise OperationalError("connection refused")

    monkeypatch.setattr(Task.objects, "exists", fail)

    response = APIClient().get(f"/readyz{slash}")

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "status": 503,
        "code": "database_unavailable",
        "message": "The database is unavailable. Retry shortly.",
    }
