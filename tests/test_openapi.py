"""The OpenAPI 3 schema documents every endpoint, its bearer security and its errors.

The docs pages are served locally."""

import json
import re
from http import HTTPStatus

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

from tasks.fields import RFC3339_PATTERN, RULE_PATTERN, TAG_NAME_PATTERN
from todo_api.schema import NO_NUL_PATTERN, NOT_BLANK_PATTERN

ENDPOINTS = {
    "/api/v1/tasks": {"get", "post"},
    "/api/v1/tasks/{id}": {"get", "put", "patch", "delete"},
    "/api/v1/tasks/{id}/skip": {"post"},
    "/api/v1/me": {"get"},
    "/api/v1/tags": {"get"},
    "/api/v1/stats": {"get"},
    "/api/v1/changes": {"get"},
    "/api/{user_id}/stats": {"get"},
    "/api/{user_id}/tasks": {"get", "post"},
    "/api/{user_id}/tasks/{id}": {"get", "put", "patch", "delete"},
    "/api/{user_id}/tasks/{id}/complete": {"patch"},
    "/api/{user_id}/tasks/{id}/skip": {"post"},
    "/healthz": {"get"},
    "/readyz": {"get"},
}
TASK_ENDPOINTS = [path for path in ENDPOINTS if path.startswith("/api/")]

# No query runs, but with CONN_HEALTH_CHECKS each request checks the connection it may reuse.
pytestmark = pytest.mark.django_db


@pytest.fixture
def schema():
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == HTTPStatus.OK
    return json.loads(response.content)


def operations(schema):
    """{path without trailing slash: {method: operation}}."""
    found = {}
    for path, item in schema["paths"].items():
        found.setdefault(path.rstrip("/") or "/", {}).update(
            {method: operation for method, operation in item.items() if method != "parameters"}
        )
    return found


@pytest.mark.parametrize("path", ["/api/schema/", "/api/schema"])
def test_the_schema_is_openapi_3_yaml_by_default(path):
    response = APIClient().get(path)

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Todo API"


@pytest.mark.parametrize(
    "query, accept",
    [("?format=json", None), ("", "application/json"), ("", "application/vnd.oai.openapi+json")],
)
def test_the_schema_is_json_on_request(query, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}

    response = APIClient().get(f"/api/schema/{query}", **headers)

    assert response.status_code == HTTPStatus.OK
    assert "json" in response["Content-Type"]
    assert json.loads(response.content)["openapi"].startswith("3.")


def test_it_lists_every_endpoint_and_method(schema):
    documented = {path: set(ops) for path, ops in operations(schema).items()}

    assert documented == ENDPOINTS


def test_it_declares_the_bearer_scheme(schema):
    schemes = schema["components"]["securitySchemes"]

    assert [(scheme["type"], scheme["scheme"]) for scheme in schemes.values()] == [("http", "bearer")]


@pytest.mark.parametrize("path", TASK_ENDPOINTS)
def test_every_task_operation_requires_the_bearer_token(schema, path):
    (scheme_name,) = schema["components"]["securitySchemes"]

    for method, operation in operations(schema)[path].items():
        assert operation["security"] == [{scheme_name: []}], (method, path)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_probes_need_no_token(schema, path):
    for operation in operations(schema)[path].values():
        assert all(requirement == {} for requirement in operation.get("security", [{}]))


def expected_errors(method, path):
    """The error statuses an operation can answer: what it reads decides."""
    statuses = {"401", "403", "414", "429", "431", "503"}  # any request can be too long for the server
    if method == "get" and (path.endswith("/tasks") or path in ("/api/v1/stats", "/api/v1/changes")):
        statuses.add("400")  # its query parameters
    if path == "/api/v1/changes":
        statuses.add("410")  # a cursor from before changes the retention removed
    takes_no_body = path.endswith(("/complete", "/skip"))
    if method in ("post", "put", "patch") and not takes_no_body:
        statuses |= {"400", "411", "413", "415"}
    if "{id}" in path:
        statuses.add("404")
    if method == "post" and not takes_no_body:
        statuses |= {"409", "422"}  # Idempotency-Key in progress, or reused with another body
    if path.endswith("/skip"):
        statuses |= {"409", "412"}  # not a recurring open task; If-Match names another version
    if method in ("put", "patch", "delete"):
        statuses.add("412")  # If-Match names another version
    return statuses


@pytest.mark.parametrize("path", TASK_ENDPOINTS)
def test_every_task_operation_documents_exactly_the_errors_it_can_give(schema, path):
    error_schema = schema["components"]["schemas"]["Error"]
    assert set(error_schema["required"]) == {"status", "code", "message"}
    assert set(error_schema["properties"]) == {"status", "code", "message", "fields"}

    for method, operation in operations(schema)[path].items():
        errors = {status for status in operation["responses"] if status >= "400"}
        assert errors == expected_errors(method, path), (method, path)
        for status in errors:
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_every_error_example_has_its_own_status_and_a_code(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status < "400":
                    continue
                examples = response["content"]["application/json"]["examples"]
                assert examples, (method, path, status)
                for example in examples.values():
                    body = example["value"]
                    assert body["status"] == int(status), (method, path, status)
                    assert re.fullmatch(r"[a-z_]+", body["code"]), (method, path, status)
                    assert body["message"], (method, path, status)


def error_codes(operation, status):
    return {
        example["value"]["code"]
        for example in operation["responses"][status]["content"]["application/json"]["examples"].values()
    }


def error_messages(operation, status):
    return {
        example["value"]["message"]
        for example in operation["responses"][status]["content"]["application/json"]["examples"].values()
    }


def test_only_the_compatibility_routes_document_a_foreign_user_id(schema):
    for path, item in operations(schema).items():
        for method, operation in item.items():
            if "403" in operation["responses"]:
                refuses_path_user = "The user id in the path is not yours." in error_messages(
                    operation, "403"
                )
                assert refuses_path_user == ("{user_id}" in path), (method, path)


def test_me_documents_no_body_errors(schema):
    operation = operations(schema)["/api/v1/me"]["get"]

    assert not {"400", "411", "413", "415"} & set(operation["responses"])


def test_the_body_errors_show_malformed_json_and_invalid_fields(schema):
    operation = operations(schema)["/api/v1/tasks"]["post"]

    assert error_codes(operation, "400") == {"parse_error", "invalid"}
    assert error_codes(operation, "401") == {"not_authenticated", "invalid_token"}
    assert error_codes(operation, "503") == {"database_unavailable", "keys_unavailable"}


def test_every_operation_has_its_own_summary_description_and_readable_id(schema):
    summaries, operation_ids = [], []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert operation.get("description"), (method, path)
            assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)+", operation["operationId"]), (method, path)
            summaries.append((operation["tags"][0], operation["summary"]))
            operation_ids.append(operation["operationId"])

    assert len(set(summaries)) == len(summaries)
    assert len(set(operation_ids)) == len(operation_ids)


def test_the_compatibility_operations_are_told_apart_by_their_ids(schema):
    for path, item in schema["paths"].items():
        for operation in item.values():
            assert operation["operationId"].startswith("compat") == path.startswith("/api/{user_id}/")


def test_tags_come_in_a_frontend_developers_order_with_descriptions(schema):
    tags = [tag["name"] for tag in schema["tags"]]
    used = [operation["tags"] for item in schema["paths"].values() for operation in item.values()]

    assert tags[0] == "Tasks"
    assert tags[-2:] == ["Compatibility (Next.js todo spec)", "Health"]
    assert all(tag["description"] for tag in schema["tags"])
    assert all(len(operation_tags) == 1 and operation_tags[0] in tags for operation_tags in used)
    first_path = next(iter(schema["paths"]))
    assert first_path.startswith("/api/v1/")


def test_paths_are_canonical_without_a_trailing_slash(schema):
    assert all(not path.endswith("/") for path in schema["paths"])


@pytest.mark.parametrize("path", ["/api/v1/tasks/{id}", "/api/{user_id}/tasks/{id}/complete"])
def test_path_ids_are_described_integers(schema, path):
    for operation in operations(schema)[path].values():
        parameters = {
            parameter["name"]: parameter for parameter in operation["parameters"] if parameter["in"] == "path"
        }
        assert parameters["id"]["schema"]["type"] == "integer"
        assert parameters["id"]["description"]
        if "user_id" in parameters:
            assert parameters["user_id"]["schema"] == {"type": "string"}
            assert "sub" in parameters["user_id"]["description"]


def test_the_patterns_are_the_servers_own_rules(schema):
    task = schema["components"]["schemas"]["TaskRequest"]["properties"]
    list_parameters = {
        parameter["name"]: parameter["schema"]
        for parameter in operations(schema)["/api/v1/tasks"]["get"]["parameters"]
    }
    create_headers = {
        parameter["name"]: parameter["schema"]
        for parameter in operations(schema)["/api/v1/tasks"]["post"]["parameters"]
        if parameter["in"] == "header"
    }

    assert task["due_at"]["pattern"] == task["remind_at"]["pattern"] == RFC3339_PATTERN
    assert list_parameters["due_after"]["pattern"] == RFC3339_PATTERN
    assert list_parameters["due_before"]["pattern"] == RFC3339_PATTERN
    assert task["title"]["pattern"] == NOT_BLANK_PATTERN
    assert task["description"]["pattern"] == NO_NUL_PATTERN
    assert task["tags"]["items"]["pattern"] == TAG_NAME_PATTERN
    assert task["recurrence"]["pattern"] == RULE_PATTERN
    assert create_headers["Idempotency-Key"]["pattern"] == "^[\\x21-\\x7e]{1,255}$"


def test_the_server_and_the_license_are_declared(schema):
    assert schema["servers"] == [{"url": "/", "description": "This server"}]
    assert schema["info"]["license"]["name"]


def test_the_page_example_links_pages_as_the_api_does(schema):
    page = schema["components"]["schemas"]["PaginatedTaskList"]["properties"]

    assert page["next"]["example"].endswith("/api/v1/tasks?limit=20&offset=40")
    assert page["previous"]["example"].endswith("/api/v1/tasks?limit=20&offset=0")


def request_examples(schema):
    """(method, path, example body) of every operation that takes a body."""
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                yield method, path, operation["requestBody"]["content"]["application/json"]["example"]


def test_every_request_body_example_succeeds_as_sent(schema, alice):
    examples = list(request_examples(schema))
    assert len(examples) == 6

    for method, path, example in examples:
        task = alice.post("/api/v1/tasks", {"title": "Before"}, format="json").json()
        url = path.replace("{user_id}", alice.sub).replace("{id}", str(task["id"]))

        response = getattr(alice, method)(url, example, format="json")

        assert response.status_code in (HTTPStatus.OK, HTTPStatus.CREATED), (method, path, response.json())
        assert {name: response.json()[name] for name in example} == example, (method, path)


def test_the_list_documents_its_pagination_and_query_parameters(schema):
    operation = operations(schema)["/api/v1/tasks"]["get"]

    assert {parameter["name"] for parameter in operation["parameters"]} >= {
        "limit",
        "offset",
        "completed",
        "search",
        "ordering",
    }
    response_schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert response_schema["$ref"].startswith("#/components/schemas/Paginated")


def test_the_generated_schema_validates_without_warnings(tmp_path):
    output = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(output))

    assert yaml.safe_load(output.read_text())["openapi"].startswith("3.")


@pytest.mark.parametrize("path", ["/api/docs/", "/api/docs", "/api/redoc/", "/api/redoc"])
def test_the_docs_pages_use_locally_served_assets(path):
    response = APIClient().get(path)

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    sidecar = [asset for asset in assets if asset.startswith("/static/drf_spectacular_sidecar/")]
    assert sidecar
    assert not re.search(r"https?://(?!testserver)", html), re.findall(r"https?://[^\s\"']+", html)
    for asset in sidecar:
        assert finders.find(asset.removeprefix("/static/")), asset


def test_a_task_in_a_response_has_every_field(schema):
    task = schema["components"]["schemas"]["Task"]

    assert set(task["required"]) == set(task["properties"])


def test_array_query_parameters_are_declared_as_generated_clients_send_them(schema):
    """openapi-fetch and axios repeat the name (priority=high&priority=medium): form style, exploded."""
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["schema"].get("type") == "array":
                    assert parameter.get("style", "form") == "form", (method, path, parameter["name"])
                    assert parameter.get("explode", True) is True, (method, path, parameter["name"])


def test_the_headers_that_come_with_a_status_are_documented(schema):
    create = operations(schema)["/api/v1/tasks"]["post"]["responses"]
    readiness = operations(schema)["/readyz"]["get"]["responses"]

    assert set(create["201"]["headers"]) == {"Location", "ETag", "Idempotent-Replayed"}
    assert set(create["401"]["headers"]) == {"WWW-Authenticate"}
    assert set(create["503"]["headers"]) == {"Retry-After"}
    assert set(readiness["503"]["headers"]) == {"Retry-After"}
