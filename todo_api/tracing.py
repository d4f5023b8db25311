"""OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set: Django's requests (an incoming
W3C traceparent is continued), psycopg's queries and urllib's calls (the JWKS fetch), sent over OTLP/HTTP.

Nothing else imports OpenTelemetry: without the variable this module is never imported
(gunicorn.conf.py's post_fork decides), and the SDK reads its own OTEL_* variables (docs/deploy.md).
"""

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.urllib import URLLibInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from todo_api import logging as request_logging

SERVICE_NAME = "todo-api"
# Requests that would only add noise to traces: the platform's probes and Prometheus' scrapes.
EXCLUDED_URLS = "healthz,readyz,metrics"


def current_trace() -> tuple[str, str] | None:
    """The current span's (trace id, W3C traceparent), or None outside a span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    trace_id, span_id = f"{context.trace_id:032x}", f"{context.span_id:016x}"
    return trace_id, f"00-{trace_id}-{span_id}-{int(context.trace_flags):02x}"


def start_tracing(exporter: SpanExporter | None = None) -> TracerProvider:
    """Instruments Django, psycopg and urllib, exporting to `exporter` (tests) or OTLP/HTTP.

    Call it before Django builds its middleware chain: the instrumentation adds its own.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "todo_api.settings")
    os.environ.setdefault("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", EXCLUDED_URLS)
    attributes: dict[str, Any] = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)  # for spans of our own (the worker's publishes)
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    DjangoInstrumentor().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider)
    URLLibInstrumentor().instrument(tracer_provider=provider)
    request_logging.current_trace = current_trace
    return provider


def stop_tracing() -> None:
    """Undoes start_tracing (tests)."""
    request_logging.current_trace = None
    DjangoInstrumentor().uninstrument()
    PsycopgInstrumentor().uninstrument()
    URLLibInstrumentor().uninstrument()
