"""One error shape for every error: {"status", "code", "message"} plus "fields" for validation."""

import sys
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, cast

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


def error_body(status: int, code: str, message: str, fields: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return body


def error_response(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    return JsonResponse(error_body(status, code, message), status=status, headers=headers)


DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRY_AFTER_SECONDS = "5"


def database_unavailable() -> JsonResponse:
    return error_response(
        503,
        "database_unavailable",
        "The database is unavailable. Retry shortly.",
        **{"Retry-After": DATABASE_RETRY_AFTER_SECONDS},
    )


def _describe(exc: exceptions.APIException) -> tuple[str, str, Any]:
    """The code, message and per-field details of a DRF exception."""
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(exc.detail, dict):
            return "invalid", "The request has invalid fields.", exc.detail
        return "invalid", " ".join(str(message) for message in exc.detail), None
    return exc.default_code, str(exc.detail), None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        # ObjectDoesNotExist: the row was there when the request read it, and a concurrent
        # request deleted it before this one was done with it.
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: DatabaseUnavailableMiddleware or handler500 answers
    # DRF answers only its own exceptions, which is what Http404 and PermissionDenied became above.
    code, message, fields = _describe(cast(exceptions.APIException, exc))
    response.data = error_body(response.status_code, code, message, fields)
    # Exceptions may name headers their status needs (WWW-Authenticate, Retry-After).
    for name, value in getattr(exc, "response_headers", {}).items():
        response[name] = value
    return response


def _handler(status: int) -> Callable[..., HttpResponse]:
    phrase = HTTPStatus(status).phrase

    def view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        return error_response(status, phrase.lower().replace(" ", "_"), f"{phrase}.")

    return view


# Django's own error pages, as JSON (wired in todo_api/urls.py).
bad_request = _handler(400)
permission_denied = _handler(403)
page_not_found = _handler(404)
_internal_error = _handler(500)


def server_error(request: HttpRequest) -> HttpResponse:
    # A database error raised in a middleware never reaches DatabaseUnavailableMiddleware's
    # process_exception; Django hands it here, while it is still being handled.
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        return database_unavailable()
    return _internal_error(request)
