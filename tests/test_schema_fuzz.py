"""Schemathesis against our own /api/schema/, sent to gunicorn started with gunicorn.conf.py on PostgreSQL:
every operation as the owner, anonymously and as another user, then stateful workflows (create a
task, then read, change, toggle and delete it through the links the schema implies), all checks on."""

import os
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
    return loaded


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
    """Checks that do not apply, each a rule a schema cannot state: a title's length counts after
    trimming (a pattern states not blank, not the length), and `priority` and `ordering` also read
    the comma form, trimmed (`high, low` is two valid values), so such cases are not expected to be
    rejected. A recurrence rule's grammar is a pattern, but which parts go together, each once, and
    its ties to `due_at` and `repeat_from` are in words only: a rule that matches may be refused, and
    so may a change to `due_at` or `repeat_from` of a task that already repeats. A change feed
    `cursor` is a value the server signed: one it did not issue is refused."""
    body = case.body if isinstance(case.body, dict) else {}
    query = case.query or {}
    excluded = set()
    title = body.get("title")
    if isinstance(title, str) and title != title.strip():
        excluded.add(negative_data_rejection)
    for name in ("priority", "ordering"):
        values = query.get(name, [])
        for value in map(str, values if isinstance(values, list) else [values]):
            if "," in value or value != value.strip():
                excluded.add(negative_data_rejection)
    stored_rule = case.method.upper() in {"PUT", "PATCH"} and ({"due_at", "repeat_from"} & body.keys())
    if body.get("recurrence") is not None or stored_rule or query.get("cursor") is not None:
        excluded.add(positive_data_acceptance)
    return list(excluded)


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

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                additional_checks=additional_checks,
                excluded_checks=lenient_checks(case),
                transport_kwargs=kwargs or None,
                recorder=getattr(self, "recorder", None),
            )

    AliceWorkflow.run(settings=fuzz(max_examples=25, stateful_step_count=6))


def test_me_conforms_to_the_schema_for_a_token_without_email_or_name(server):
    case = schema["/api/v1/me"]["GET"].Case()

    response = call(case, server, hs256_token("carol"))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"id": "carol", "email": "", "name": ""}
