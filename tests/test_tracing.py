"""Traces on demand: with tracing started, every request is a span that continues the caller's
traceparent, its queries and JWKS fetch are child spans, and its log line names the trace; without
OTEL_EXPORTER_OTLP_ENDPOINT nothing of OpenTelemetry is even imported."""

import logging
import subprocess
import sys

import pytest
from django.db import connection
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import client_with
from tests.support.environment import clean_env
from tests.support.servers import REPO
from todo_api import logging as request_logging
from todo_api import tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.start_tracing(exporter)
    yield exporter
    tracing.stop_tracing()


def server_span(exporter):
    (span,) = [span for span in exporter.get_finished_spans() if span.kind == SpanKind.SERVER]
    return span


def test_a_request_continues_the_callers_trace_and_its_log_line_names_it(alice, spans, caplog):
    with caplog.at_level(logging.INFO, logger="todo_api.request"):
        response = alice.get("/api/v1/me", HTTP_TRACEPARENT=TRACEPARENT)

    assert response.status_code == 200
    span = server_span(spans)
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    (line,) = [record for record in caplog.records if record.name == "todo_api.request"]
    assert line.trace_id == TRACE_ID


def test_a_request_without_a_traceparent_starts_a_trace_its_events_would_carry(alice, spans, monkeypatch):
    seen = []
    original = request_logging.RequestLogMiddleware.log

    def log(*args, **kwargs):
        seen.append((request_logging.trace_id_var.get(), request_logging.traceparent_var.get()))
        original(*args, **kwargs)

    monkeypatch.setattr(request_logging.RequestLogMiddleware, "log", staticmethod(log))
    alice.get("/api/v1/tasks")

    span = server_span(spans)
    trace_id, traceparent = seen[0]
    assert trace_id == f"{span.context.trace_id:032x}"
    # The traceparent events are published with is the request's own span, in the same trace.
    assert traceparent.startswith(f"00-{trace_id}-{span.context.span_id:016x}-")
    assert request_logging.TRACEPARENT.fullmatch(traceparent)


def test_the_jwks_fetch_is_a_child_span(db, token_for, spans):
    assert client_with(token_for()).get("/api/v1/me").status_code == 200

    request = server_span(spans)
    (fetch,) = [span for span in spans.get_finished_spans() if span.kind == SpanKind.CLIENT]
    assert fetch.context.trace_id == request.context.trace_id
    assert fetch.parent.span_id == request.context.span_id


@pytest.mark.django_db(transaction=True)
def test_postgresql_queries_are_child_spans(alice, spans):
    if connection.vendor != "postgresql":
        pytest.skip("psycopg's spans: PostgreSQL only")
    connection.close()  # the next connection is made by the instrumented psycopg

    alice.get("/api/v1/tasks")

    request = server_span(spans)
    queries = [
        span for span in spans.get_finished_spans() if span.attributes.get("db.system") == "postgresql"
    ]
    assert queries
    assert all(query.context.trace_id == request.context.trace_id for query in queries)


def test_without_tracing_the_log_line_has_no_trace_id(alice, caplog):
    with caplog.at_level(logging.INFO, logger="todo_api.request"):
        alice.get("/api/v1/me", HTTP_TRACEPARENT=TRACEPARENT)

    (line,) = [record for record in caplog.records if record.name == "todo_api.request"]
    assert getattr(line, "trace_id", None) is None


@pytest.mark.live
def test_without_the_endpoint_nothing_of_opentelemetrys_tracing_is_imported(tmp_path):
    """A fresh process loads the app as gunicorn does, with its config, and answers a request.

    Not "no opentelemetry module at all": redis-py 8 probes for OpenTelemetry's metrics SDK when it
    is imported (its own optional metrics, off unless an application starts them), which brings the
    API packages in. No tracer provider, instrumentation, exporter or middleware of ours is loaded.
    """
    script = """
import runpy, sys
from django.conf import settings
config = runpy.run_path("gunicorn.conf.py")
config["post_fork"](None, None)
from todo_api.wsgi import application
from django.test import Client
assert Client().get("/healthz").status_code == 200
from opentelemetry import trace
print(sorted(name for name in sys.modules if name.startswith((
    "todo_api.tracing", "opentelemetry.sdk.trace", "opentelemetry.instrumentation", "opentelemetry.exporter",
    "opentelemetry.propagate",
))))
print(type(trace.get_tracer_provider()).__name__, [m for m in settings.MIDDLEWARE if "opentelemetry" in m])
"""
    env = clean_env(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x",
        DJANGO_ALLOWED_HOSTS="testserver",
        METRICS_TOKEN="t",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "ProxyTracerProvider []"]
