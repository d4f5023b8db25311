"""The OpenAPI 3 schema documents every endpoint, its bearer security and its errors; the docs are served locally."""

import json
import re
from http import HTTPStatus

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

ENDPOINTS = {
    "/api/v1/tasks": {"get", "post"},
    "/api/v1/tasks/{id}": {"get", "put", "patch", "delete"},
    "/api/v1/me": {"get"},
    "/api/v1/tags": {"get"},
    "/api/v1/stats": {"get"},
    "/api/{user_id}/stats": {"get"},
    "/api/{user_id}/tasks": {"get", "post"},
    "/api/{user_id}/tasks/{id}": {"get", "put", "patch", "delete"},
    "/api/{user_id}/tasks/{id}/complete": {"patch"},
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


@pytest.mark.parametrize("path", TASK_ENDPOINTS)
def test_every_task_operation_documents_its_errors_with_the_error_shape(schema, path):
    error_schema = schema["components"]["schemas"]["Error"]
    assert set(error_schema["required"]) == {"status", "code", "message"}
    assert set(error_schema["properties"]) == {"status", "code", "message", "fields"}

    for method, operation in operations(schema)[path].items():
        expected = {"400", "401"}
        if "{id}" in path:
            expected.add("404")
        if "{user_id}" in path:
            expected.add("403")
        if method in ("post", "put", "patch") and not path.endswith("complete"):
            expected |= {"413", "415"}
        assert expected <= set(operation["responses"]), (method, path)
        for status in expected:
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path, status)


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
