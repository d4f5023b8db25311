"""Middleware that keeps failures inside the JSON error contract."""

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from todo_api.edge import MAX_QUERY_STRING_BYTES
from todo_api.errors import DATABASE_ERRORS, database_unavailable, error_response
from todo_api.metrics import DB_UNAVAILABLE

logger = logging.getLogger(__name__)


class BodySizeLimitMiddleware:
    """Answers 413 from the declared Content-Length, before any of the body is read; a body
    without one (Transfer-Encoding: chunked) is a 411.

    DRF's parsers read the stream directly, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE alone does
    not protect API views.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.META.get("HTTP_TRANSFER_ENCODING"):
            # A chunked body has no Content-Length, so Django reads it as empty: a PATCH would
            # "succeed" without its changes. Refused before any of it is read, whatever its size.
            return error_response(411, "length_required", "The request body must come with a Content-Length.")
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            length = -1
        if length < 0:
            return error_response(400, "bad_request", "The Content-Length header is not a number.")
        if length > self.limit:
            return error_response(413, "payload_too_large", f"The request body is over {self.limit} bytes.")
        return self.get_response(request)


class QueryStringLimitMiddleware:
    """A query string over MAX_QUERY_STRING_BYTES is a 414 under any server, in process too.

    The bound is below gunicorn's request-line limit (todo_api/edge.py), so the client always
    learns the query string's own limit rather than one that depends on the path's length.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # WSGI passes the raw bytes as Latin-1 characters: the length is the length in bytes.
        if len(request.META.get("QUERY_STRING", "")) > MAX_QUERY_STRING_BYTES:
            return error_response(
                414, "uri_too_long", f"The query string is over {MAX_QUERY_STRING_BYTES} bytes."
            )
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A lost database is a 503 the client can retry, not a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_ERRORS):
            logger.warning("Database unavailable: %s", exception)
            DB_UNAVAILABLE.inc()
            return database_unavailable()
        return None
