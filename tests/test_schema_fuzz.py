"""Schemathesis against our own /api/schema/: every operation, as the owner, anonymously and as another user."""

import os
import zlib
from http import HTTPStatus

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection
from schemathesis.core.parameters import ParameterLocation

from authbridge.models import User
from tasks.models import Task
from tests.conftest import client_with
from todo_api.wsgi import application


def fuzz(max_examples):
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=bool(os.environ.get("CI")),
        suppress_health_check=list(HealthCheck),
    )


def load_schema(*phases):
    # Loaded from the app itself, in process: the generated schema is what is under test.
    # (schemathesis.pytest.from_fixture would defer this, but breaks on pytest 9's node ids.)
    loaded = schemathesis.openapi.from_wsgi("/api/schema/", application)
    # The tests send the Authorization header themselves; unknown query parameters are ignored by design.
    loaded.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    if phases:
        loaded.config.phases.update(phases=list(phases))
    return loaded


# The owner gets every phase, boundary values included; refusals need fewer, random, examples.
schema = load_schema()
refusal_schema = load_schema("examples", "fuzzing")


# Refusals that reveal nothing about alice's tasks: no such route or method, or a body too large to read.
REFUSED = {HTTPStatus.NOT_FOUND, HTTPStatus.METHOD_NOT_ALLOWED, HTTPStatus.REQUEST_ENTITY_TOO_LARGE}


@pytest.fixture(autouse=True)
def _better_auth(db, better_auth):
    return better_auth


def call(case, token=None):
    """Sends the case through the real WSGI handler and validates the answer against the schema.

    The handler closes the database connection around each request, and with it the test's
    transaction on PostgreSQL; Django's own test client stops it just so.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        return case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"} if token else None,
            excluded_checks=lenient_checks(case),
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def alice_token(token_for, alice_sub):
    token = token_for(alice_sub, email="alice@example.com", name="Alice")
    assert client_with(token).get("/api/v1/me").status_code == HTTPStatus.OK  # provisions alice
    return token


@pytest.fixture
def bob_token(token_for, bob_sub):
    token = token_for(bob_sub, email="bob@example.com", name="Bob")
    assert client_with(token).get("/api/v1/me").status_code == HTTPStatus.OK
    return token


def aim_at_alice(case, alice_sub):
    """Paths name alice, and every other example names a task of hers that exists right now.

    Only where the path is schema-valid: an invalid path stays as generated, to be refused.
    """
    path = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
    if path is None or path.mode != GenerationMode.POSITIVE:
        return
    if "user_id" in case.path_parameters:
        case.path_parameters["user_id"] = alice_sub
    if "id" in case.path_parameters and zlib.crc32(str(case.path_parameters["id"]).encode()) % 2 == 0:
        task = Task.objects.create(
            owner=User.objects.get(sub=alice_sub), title="Alice's task", description="hers"
        )
        case.path_parameters["id"] = task.pk


def lenient_checks(case):
    """Checks that do not apply: `limit` and `offset` fall back to their defaults rather than
    refuse a value that is not a natural number (tests/test_tasks_list.py), and `priority` and
    `ordering` also read the comma form, trimmed (`high, low` is two valid values), so such a
    case is not expected to be rejected."""
    query = case.query or {}
    paging = [str(query[name]) for name in ("limit", "offset") if name in query]
    if any(not value.isdigit() or not value.isascii() for value in paging):
        return [negative_data_rejection]
    for name in ("priority", "ordering"):
        values = query.get(name, [])
        for value in map(str, values if isinstance(values, list) else [values]):
            if "," in value or value != value.strip():
                return [negative_data_rejection]
    return []


def alices_tasks(alice_sub):
    return sorted(
        Task.objects.filter(owner__sub=alice_sub).values_list("id", "title", "description", "completed")
    )


@schema.parametrize()
@fuzz(max_examples=25)
def test_every_operation_answers_the_owner_as_its_schema_declares(case, alice_token, alice_sub):
    aim_at_alice(case, alice_sub)

    response = call(case, alice_token)

    assert response.status_code < 500


@refusal_schema.parametrize()
@fuzz(max_examples=12)
def test_every_operation_answers_an_anonymous_caller_as_its_schema_declares(case, alice_token, alice_sub):
    aim_at_alice(case, alice_sub)
    before = alices_tasks(alice_sub)

    response = call(case)

    assert response.status_code < 500
    if case.operation.path.startswith("/api/") and not case.operation.path.startswith("/api/schema"):
        assert response.status_code in REFUSED | {HTTPStatus.UNAUTHORIZED}
    assert alices_tasks(alice_sub) == before


@refusal_schema.parametrize()
@fuzz(max_examples=12)
def test_every_operation_refuses_another_user_alices_tasks_as_its_schema_declares(
    case, alice_token, bob_token, alice_sub
):
    aim_at_alice(case, alice_sub)
    before = alices_tasks(alice_sub)

    response = call(case, bob_token)

    assert response.status_code < 500
    if "user_id" in case.path_parameters:
        assert response.status_code in REFUSED | {HTTPStatus.FORBIDDEN}
    elif "id" in case.path_parameters:
        assert response.status_code in REFUSED
    assert alices_tasks(alice_sub) == before


def test_me_conforms_to_the_schema_for_a_token_without_email_or_name(token_for):
    case = schema["/api/v1/me/"]["GET"].Case()

    response = call(case, token_for("carol", email=..., name=...))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"id": "carol", "email": "", "name": ""}
