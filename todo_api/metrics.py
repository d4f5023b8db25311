"""Prometheus metrics: every series the API and the worker expose, and how they are served.

The API answers `GET /metrics` from MetricsMiddleware; the worker serves the same text on
WORKER_METRICS_PORT (serve_worker_metrics). Both only with `Authorization: Bearer <METRICS_TOKEN>`.
Under gunicorn the figures of all workers are summed through PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py).
"""

import functools
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

logger = logging.getLogger(__name__)

# gunicorn.conf.py prepares the directory for the server; other commands run with the same
# environment (migrate, the worker) write their figures there too, and must not fail on its absence.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# Resolve 5 ms to 5 s; 250 ms is an edge, as the p95 alert's threshold (deploy/prometheus/alerts.yml).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
# How late a reminder fires after remind_at: the worker polls every second; a minute late pages.
REMINDER_DELAY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

# Methods outside this set are one label value: the client chooses the method, and a label's values
# must stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# The catch-all of todo_api/urls.py answers unknown /api/ paths: a 404, not a route.
CATCH_ALL_URL_NAMES = frozenset({"api-not-found"})

# Why a request's token was refused (authbridge/authentication.py, authbridge/verifier.py).
AUTH_FAILURE_REASONS = (
    "missing",  # no bearer token: DRF answers 401
    "malformed",  # not a JWT, bad base64 or JSON, a header without alg, crit, too long
    "algorithm",  # an algorithm refused, or one nothing is configured to verify
    "unknown_key",  # the JWKS has no key for the token's kid and alg
    "bad_signature",
    "expired",
    "claims",  # sub, nbf, iat, iss or aud refused
    "keys_unavailable",  # its key is unknown and the JWKS cannot be fetched: the 503
)
JWKS_OUTCOMES = ("success", "failure")

HTTP_REQUESTS = Counter(
    "todo_api_http_requests_total",
    "HTTP requests answered, by route template.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "todo_api_http_request_duration_seconds",
    "Seconds from the request reaching Django to its response.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
AUTH_FAILURES = Counter("todo_api_auth_failures_total", "Requests refused for their token.", ["reason"])
JWKS_FETCHES = Counter("todo_api_jwks_fetches_total", "Fetches of Better Auth's JWKS.", ["outcome"])
TOKEN_CACHE_HITS = Counter("todo_api_token_cache_hits_total", "Tokens found verified in the token cache.")
TOKEN_CACHE_MISSES = Counter("todo_api_token_cache_misses_total", "Tokens that had to be verified.")
DB_UNAVAILABLE = Counter("todo_api_db_unavailable_total", "503s answered because the database was lost.")
THROTTLED = Counter("todo_api_throttled_total", "Requests refused by the per-user rate limit (429).")
IDEMPOTENT_REPLAYS = Counter("todo_api_idempotent_replays_total", "Creates replayed for an Idempotency-Key.")
PRECONDITION_FAILED = Counter("todo_api_precondition_failed_total", "Writes refused by If-Match (412).")
# One per process; "max" so that summing over gunicorn's workers still gives 1.
BUILD_INFO = Gauge(
    "todo_api_build_info", "The running version; always 1.", ["version", "revision"], multiprocess_mode="max"
)

# The worker's (manage.py run_worker).
EVENTS_PENDING = Gauge(
    "todo_api_events_pending", "Events recorded and not yet published.", multiprocess_mode="mostrecent"
)
EVENTS_OLDEST_PENDING_SECONDS = Gauge(
    "todo_api_events_oldest_pending_seconds",
    "Age of the oldest unpublished event; 0 when none waits.",
    multiprocess_mode="mostrecent",
)
EVENTS_PUBLISHED = Counter("todo_api_events_published_total", "Events published to Dapr.")
EVENT_PUBLISH_FAILURES = Counter("todo_api_event_publish_failures_total", "Event publishes that failed.")
REMINDERS_FIRED = Counter("todo_api_reminders_fired_total", "Reminders fired.")
REMINDER_DELAY = Histogram(
    "todo_api_reminder_delay_seconds",
    "Seconds between a reminder's remind_at and its firing.",
    buckets=REMINDER_DELAY_BUCKETS,
)

for _reason in AUTH_FAILURE_REASONS:
    AUTH_FAILURES.labels(_reason)
for _outcome in JWKS_OUTCOMES:
    JWKS_FETCHES.labels(_outcome)


def record_build_info() -> None:
    BUILD_INFO.labels(settings.APP_VERSION, settings.GIT_REVISION).set(1)


def exposition() -> bytes:
    """The text format of this process's figures, or of every process sharing PROMETHEUS_MULTIPROC_DIR."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def authorization_error(header: str, token: str) -> tuple[int, str, str, str] | None:
    """None when `header` carries the bearer token; else the 401's (status, code, message, challenge)."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return 401, "not_authenticated", "Authentication credentials were not provided.", "Bearer"
    if not hmac.compare_digest(credentials.strip().encode("utf-8", "replace"), token.encode()):
        return 401, "invalid_token", "The metrics token is not valid.", 'Bearer error="invalid_token"'
    return None


@functools.cache
def route_template(route: str) -> str:
    """`api/v1/tasks/(?P<pk>[0-9]{1,18})/?$` -> `/api/v1/tasks/{id}`, as the OpenAPI paths read."""
    # Here, not above: DRF's views import the authentication classes, which import this module.
    from rest_framework.schemas.generators import EndpointEnumerator

    path = EndpointEnumerator().get_path_from_regex(route).replace("{pk}", "{id}")
    return path.rstrip("/") or "/"


def route_of(request: HttpRequest) -> str:
    """The request's route template; `unmatched` for a path no route has: labels stay few."""
    match = request.resolver_match
    if match is None:  # answered before URL resolution (413, a CORS preflight): resolved here
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return UNMATCHED
    if match.url_name in CATCH_ALL_URL_NAMES:
        return UNMATCHED
    return route_template(match.route)


class MetricsMiddleware:
    """Counts and times every request by route, and answers GET /metrics; not used without METRICS_TOKEN.

    /metrics is answered here, before CommonMiddleware's ALLOWED_HOSTS check and the HTTPS redirect:
    Prometheus addresses each pod by its IP over plain HTTP, and cannot set a Host header. The
    token is its guard.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not settings.METRICS_TOKEN:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.token = settings.METRICS_TOKEN
        record_build_info()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info in ("/metrics", "/metrics/"):
            return self.metrics(request)
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "other"
        route = route_of(request)
        HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
        HTTP_REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - started)
        return response

    def metrics(self, request: HttpRequest) -> HttpResponse:
        from todo_api.errors import error_response  # imports DRF, whose settings import this module

        if request.method not in ("GET", "HEAD"):
            return error_response(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        refusal = authorization_error(request.META.get("HTTP_AUTHORIZATION", ""), self.token)
        if refusal is not None:
            status, code, message, challenge = refusal
            return error_response(status, code, message, **{"WWW-Authenticate": challenge})
        return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


class _WorkerMetricsHandler(BaseHTTPRequestHandler):
    token = ""

    def do_GET(self) -> None:
        from todo_api.errors import error_body

        refusal = authorization_error(self.headers.get("Authorization", ""), self.token)
        if self.path.split("?")[0].rstrip("/") != "/metrics":
            refusal = (404, "not_found", "Not Found.", "")
        if refusal is not None:
            status, code, message, challenge = refusal
            body = json.dumps(error_body(status, code, message)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if challenge:
                self.send_header("WWW-Authenticate", challenge)
        else:
            body = exposition()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a scrape every few seconds is not worth a log line


def serve_worker_metrics(port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer | None:  # noqa: S104 (scraped from other pods)
    """Serves GET /metrics on `port` in a daemon thread, with the API's token check; None (and a
    warning) without METRICS_TOKEN. Call it once at the worker's start with settings.WORKER_METRICS_PORT."""
    if not settings.METRICS_TOKEN:
        logger.warning("WORKER_METRICS_PORT is set without METRICS_TOKEN: the worker's metrics are off.")
        return None
    record_build_info()
    handler = type("WorkerMetricsHandler", (_WorkerMetricsHandler,), {"token": settings.METRICS_TOKEN})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
