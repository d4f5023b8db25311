"""/api/schema/ is generated once per process and rendered once per format (todo_api/schema_view.py)."""

import json
from http import HTTPStatus

import pytest
import yaml
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from todo_api import schema_view

pytestmark = pytest.mark.django_db


@pytest.fixture
def generations(monkeypatch):
    """A fresh process's view of the schema, and a count of the generator's runs from then on."""
    schema_view.forget()
    runs = []
    original = SchemaGenerator.get_schema

    def counted(self, *args, **kwargs):
        runs.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counted)
    yield runs
    schema_view.forget()


def test_a_second_fetch_does_not_run_the_generator(generations):
    client = APIClient()
    first = client.get("/api/schema/")
    second = client.get("/api/schema/")

    assert first.status_code == second.status_code == HTTPStatus.OK
    assert len(generations) == 1
    assert first.content == second.content
    assert second["Content-Type"] == first["Content-Type"] == "application/vnd.oai.openapi; charset=utf-8"


def test_every_format_is_rendered_from_the_one_generated_document(generations):
    client = APIClient()
    as_yaml = client.get("/api/schema/")
    as_json = client.get("/api/schema/?format=json")
    as_json_again = client.get("/api/schema?format=json")
    by_accept = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    indented = client.get("/api/schema/", HTTP_ACCEPT="application/json; indent=1")

    assert len(generations) == 1
    assert as_json["Content-Type"] == "application/vnd.oai.openapi+json"
    assert as_json.content == as_json_again.content
    assert by_accept["Content-Type"] == "application/json"
    assert json.loads(as_json.content) == json.loads(by_accept.content) == yaml.safe_load(as_yaml.content)
    assert json.loads(indented.content) == json.loads(as_json.content)
    assert indented.content.startswith(b'{\n "openapi"')


def test_the_kept_document_is_the_one_drf_spectacular_generates(generations):
    served = json.loads(APIClient().get("/api/schema/?format=json").content)

    assert served == json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))


def test_version_and_lang_parameters_do_not_make_new_documents(generations):
    client = APIClient()
    plain = client.get("/api/schema/?format=json").content

    variants = [client.get(f"/api/schema/?format=json&version=v{n}&lang=de").content for n in range(3)]

    assert len(generations) == 1
    assert variants == [plain] * 3


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_still_point_at_the_schema(path):
    response = APIClient().get(path)

    assert response.status_code == HTTPStatus.OK
    assert response.data["schema_url"] == "/api/schema"
