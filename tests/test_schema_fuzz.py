"""Schemathesis against our own /api/schema/, sent to gunicorn started with gunicorn.conf.py on PostgreSQL:
every operation as the owner, anonymously and as another user, then stateful workflows (create a
task, then read, change, toggle and delete it through the links the schema implies), all checks on."""

import os
import unicodedata
import uuid
import zlib
from http import HTTPStatus

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.core.parameters import ParameterLocation

from tests.live_server import LiveServer, hs256_token
from todo_api.wsgi import application

pytestmark = pytest.mark.live

ALICE, BOB = "alice-fuzz", "bob-fuzz"
TOKEN_LIFETIME = 3600  # outlives the module


def fuzz(max_examples, **extra):
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=bool(os.environ.get("CI")),
        suppress_health_check=list(HealthCheck),
        **extra,
    )


def load_schema(*phases):
    # The document the app serves, generated in process: the tests are collected before the server
    # starts. With no app attached, Schemathesis sends every request over HTTP to `base_url`.
    served = schemathesis.openapi.from_wsgi("/api/schema/", application).raw_schema
    loaded = schemathesis.openapi.from_dict(served)
    # The tests send the Authorization header themselves; unknown query parameters are ignored by design.
    loaded.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    # An invalid value may also make the query string too long: the server's 414 (or 431) rejects it.
    rejection = loaded.config.checks.get_by_name(name="negative_data_rejection")
    rejection.expected_statuses = [*rejection.expected_statuses, "414", "431"]
    if phases:
        loaded.config.phases.update(phases=list(phases))
    loaded.hook(filter_body)
    loaded.hook(filter_query)
    return loaded


def before_1900(value):
    """Date-times are accepted from the year 1900 on, as their descriptions say."""
    return isinstance(value, str) and value[:4].isdigit() and int(value[:4]) < 1900


def filter_query(ctx, query):
    """The due date filters' year range, which the schema states in words."""
    return not isinstance(query, dict) or not any(
        before_1900(query.get(name)) for name in ("due_after", "due_before")
    )


def filter_body(ctx, body):
    """Rules the schema states in words (a regex pattern would show in Swagger UI): text has no NUL
    character, a title is not blank once trimmed, a tag neither blank nor with control characters, a
    due date from 1900 on."""
    if not isinstance(body, dict):
        return True
    texts = [value for value in body.values() if isinstance(value, str)]
    title = body.get("title")
    tags = body.get("tags") if isinstance(body.get("tags"), list) else []
    tags_in_words = all(
        not isinstance(tag, str) or (tag.strip() and not any(unicodedata.category(c) == "Cc" for c in tag))
        for tag in tags
    )
    return (
        not any("\x00" in text for text in texts)
        and not (isinstance(title, str) and not title.strip())
        and tags_in_words
        and not before_1900(body.get("due_at"))
        and not before_1900(body.get("remind_at"))
    )


# The owner gets every phase, boundary values included; refusals need fewer, random, examples.
schema = load_schema()
refusal_schema = load_schema("examples", "fuzzing")

# Refusals that reveal nothing about alice's tasks: no such route or method, or a request too large.
REFUSED = {
    HTTPStatus.NOT_FOUND,
    HTTPStatus.METHOD_NOT_ALLOWED,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    HTTPStatus.REQUEST_URI_TOO_LONG,
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("schema-fuzz"), workers=1, threads=4)
    yield live
    live.stop()


def provisioned_token(server, sub):
    token = hs256_token(sub, lifetime=TOKEN_LIFETIME)
    assert server.request("GET", "/api/v1/me", token=token)[0] == HTTPStatus.OK
    return token


@pytest.fixture(scope="module")
def alice_token(server):
    return provisioned_token(server, ALICE)


@pytest.fixture(scope="module")
def bob_token(server):
    return provisioned_token(server, BOB)


def call(case, server, token=None):
    """Sends the case to gunicorn and validates the answer against the schema, with every check."""
    return case.call_and_validate(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token}"} if token else None,
        excluded_checks=lenient_checks(case),
    )


def lenient_checks(case):
    """Checks that do not apply: a title's length counts after trimming (as its description says),
    and `priority` and `ordering` also read the comma form, trimmed (`high, low` is two valid
    values), so such cases are not expected to be rejected. A recurrence rule's grammar and its
    ties to `due_at` and `repeat_from` are in words only: a rule may be refused."""
    body = case.body if isinstance(case.body, dict) else {}
    title = body.get("title")
    if isinstance(title, str) and title != title.strip():
        return [negative_data_rejection]
    if body.get("recurrence") is not None:
        return [positive_data_acceptance]
    query = case.query or {}
    for name in ("priority", "ordering"):
        values = query.get(name, [])
        for value in map(str, values if isinstance(values, list) else [values]):
            if "," in value or value != value.strip():
                return [negative_data_rejection]
    return []


def send_headers_as_a_client(case):
    """A new Idempotency-Key per create (a reused one with another body is a 422) and an If-Match
    that holds (any other is a 412; tests/test_conditional_requests.py)."""
    header_part = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    negative = header_part is not None and header_part.mode == GenerationMode.NEGATIVE
    if negative or not case.headers:
        return
    if "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    if "If-Match" in case.headers:
        case.headers["If-Match"] = "*"


def has_valid_path(case):
    path = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
    return path is not None and path.mode == GenerationMode.POSITIVE


def aim_at_alice(case, server, alice_token):
    """Paths name alice, and every other example names a task of hers that exists right now.

    Only where the path is schema-valid: an invalid path stays as generated, to be refused.
    """
    send_headers_as_a_client(case)
    if not has_valid_path(case):
        return
    if "user_id" in case.path_parameters:
        case.path_parameters["user_id"] = ALICE
    if "id" in case.path_parameters and zlib.crc32(str(case.path_parameters["id"]).encode()) % 2 == 0:
        status, task, _ = server.request(
            "POST", "/api/v1/tasks", token=alice_token, body={"title": "Alice's task", "description": "hers"}
        )
        assert status == HTTPStatus.CREATED
        case.path_parameters["id"] = task["id"]


def alices_tasks(server, alice_token):
    status, tasks, _ = server.request("GET", f"/api/{ALICE}/tasks", token=alice_token)
    assert status == HTTPStatus.OK
    return sorted((task["id"], task["title"], task["description"], task["completed"]) for task in tasks)


@schema.parametrize()
@fuzz(max_examples=25)
def test_every_operation_answers_the_owner_as_its_schema_declares(case, server, alice_token):
    aim_at_alice(case, server, alice_token)

    response = call(case, server, alice_token)

    assert response.status_code < 500


@refusal_schema.parametrize()
@fuzz(max_examples=12)
def test_every_operation_answers_an_anonymous_caller_as_its_schema_declares(case, server, alice_token):
    aim_at_alice(case, server, alice_token)
    before = alices_tasks(server, alice_token)

    response = call(case, server)

    assert response.status_code < 500
    if case.operation.path.startswith("/api/") and not case.operation.path.startswith("/api/schema"):
        assert response.status_code in REFUSED | {HTTPStatus.UNAUTHORIZED}
    assert alices_tasks(server, alice_token) == before


@refusal_schema.parametrize()
@fuzz(max_examples=12)
def test_every_operation_refuses_another_user_alices_tasks_as_its_schema_declares(
    case, server, alice_token, bob_token
):
    aim_at_alice(case, server, alice_token)
    before = alices_tasks(server, alice_token)
    # Bob's own creates (the POST cases) may have made the task an example id names: his to change.
    bobs = {task["id"] for task in server.request("GET", f"/api/{BOB}/tasks", token=bob_token)[1]}

    response = call(case, server, bob_token)

    assert response.status_code < 500
    if "user_id" in case.path_parameters:
        assert response.status_code in REFUSED | {HTTPStatus.FORBIDDEN}
    elif "id" in case.path_parameters and case.path_parameters["id"] not in bobs:
        assert response.status_code in REFUSED
    assert alices_tasks(server, alice_token) == before


def test_alices_workflows_answer_as_the_schema_declares(server, alice_token):
    class AliceWorkflow(schema.as_state_machine()):
        def before_call(self, case):
            send_headers_as_a_client(case)
            if "user_id" in (case.path_parameters or {}) and has_valid_path(case):
                case.path_parameters["user_id"] = ALICE

        def get_call_kwargs(self, case):
            return {"base_url": server.url, "headers": {"Authorization": f"Bearer {alice_token}"}}

    AliceWorkflow.run(settings=fuzz(max_examples=25, stateful_step_count=6))


def test_me_conforms_to_the_schema_for_a_token_without_email_or_name(server):
    case = schema["/api/v1/me"]["GET"].Case()

    response = call(case, server, hs256_token("carol"))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"id": "carol", "email": "", "name": ""}
