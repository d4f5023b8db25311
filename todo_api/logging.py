"""Structured logs: one JSON line per request, and the request id on every line written for it.

Nothing secret is logged: never a header, a body or a query string, only the path and the token's `sub`.
"""

import contextvars
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept only when it cannot forge log lines or carry much data.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# The request's W3C trace context, when it came with a valid one: the events its writes publish carry it.
traceparent_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)
TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}", re.ASCII)
# With OpenTelemetry on, todo_api/tracing.py sets this: the current span's (trace id, traceparent). The
# request's span then continues an incoming traceparent, and its events carry the span's own.
current_trace: Callable[[], tuple[str, str] | None] | None = None
trace_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)

request_logger = logging.getLogger("todo_api.request")

# No line written here shows where a call came from, its thread or its process: the switches of the
# logging HOWTO's "Optimization" section spare every record (one per request at least) collecting them.
logging._srcfile = None
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False

# The attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
_STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being handled in this thread, if any, and its
    trace id when tracing is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None and getattr(record, "request_id", None) is None:
            record.request_id = request_id
        trace_id = trace_id_var.get()
        if trace_id is not None and getattr(record, "trace_id", None) is None:
            record.trace_id = trace_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, the `extra=` fields, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_") and value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RepeatedErrorLog:
    """One ERROR line per interval for an error anyone can repeat at will, with how often it happened.

    The first occurrence is logged at once; later ones are counted, and the first after the interval
    logs the count since the previous line. A request whose error is reported here sets
    `request.reported_in_summary`, so that its own request line is a WARNING and Django's is skipped.
    """

    def __init__(self, logger: logging.Logger, message: str, interval: float) -> None:
        self.logger = logger
        self.message = message
        self.interval = interval
        self.clock = time.monotonic  # tests pass their own
        self._lock = threading.Lock()
        self._count = 0
        self._next_at: float | None = None

    def record(self, request: HttpRequest) -> None:
        request.reported_in_summary = True  # type: ignore[attr-defined]
        with self._lock:
            self._count += 1
            now = self.clock()
            if self._next_at is not None and now < self._next_at:
                return
            count, self._count, self._next_at = self._count, 0, now + self.interval
        self.logger.error(
            "%s: %d in the last %d s at most", self.message, count, self.interval, extra={"count": count}
        )


class RequestLogMiddleware:
    """Gives each request an id (the client's `X-Request-ID` when sane) and logs it once, when answered."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if SANE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        offered_trace = request.headers.get("traceparent", "")
        traceparent, trace_id = (offered_trace if TRACEPARENT.fullmatch(offered_trace) else None), None
        if current_trace is not None and (span := current_trace()) is not None:
            trace_id, traceparent = span
        trace_token = traceparent_var.set(traceparent)
        trace_id_token = trace_id_var.set(trace_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            summarised = getattr(request, "reported_in_summary", False)
            if summarised:
                response._has_been_logged = True  # type: ignore[attr-defined]  # Django's ERROR line
            self.log(request, response.status_code, started, summarised)
            return response
        finally:
            trace_id_var.reset(trace_id_token)
            traceparent_var.reset(trace_token)
            request_id_var.reset(token)

    @staticmethod
    def log(request: HttpRequest, status: int, started: float, summarised: bool = False) -> None:
        # DRF copies the verified claims onto the Django request; session users (admin) have none.
        claims = getattr(request, "auth", None)
        sub = claims.get("sub") if isinstance(claims, dict) else None
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        # A 5xx counted by a RepeatedErrorLog is a WARNING here: one ERROR per interval, not per request.
        level = logging.INFO if status < 500 else logging.WARNING if summarised else logging.ERROR
        request_logger.log(
            level,
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": duration_ms,
                "user": sub,
                "trace_id": trace_id_var.get(),
            },
        )
