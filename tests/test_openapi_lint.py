"""Redocly CLI's recommended ruleset, nothing turned off, finds nothing in the served schema."""

import json

import pytest
from rest_framework.test import APIClient

from tests.api_reference import install_client_tools, run_node_tool

pytestmark = [pytest.mark.django_db, pytest.mark.live]


def test_redocly_recommended_rules_find_no_error_and_no_warning(tmp_path):
    install_client_tools()
    schema = tmp_path / "openapi.json"
    schema.write_bytes(APIClient().get("/api/schema/?format=json").content)

    lint = run_node_tool("redocly", "lint", "--extends", "recommended", "--format", "json", str(schema))

    report = json.loads(lint.stdout)
    assert report["problems"] == []
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}
    assert lint.returncode == 0, lint.stderr
