"""OpenAPI generation: tags, canonical paths, typed path ids, request examples that work as sent, and
the errors each operation can give, each with a real example."""

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, NamedTuple

from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction
from rest_framework import serializers
from rest_framework.request import Request

from authbridge.verifier import MAX_TOKEN_LENGTH
from todo_api.edge import LIMIT_REQUEST_FIELD_SIZE, LIMIT_REQUEST_FIELDS, MAX_QUERY_STRING_BYTES
from todo_api.errors import error_body

# A piece of the OpenAPI document: JSON, as drf-spectacular builds and hands it around.
Schema = dict[str, Any]
# What drf-spectacular's preprocessing hooks take and return: (path, path_regex, method, view).
Endpoint = tuple[str, str, str, Callable[..., Any]]

# The tag of each operation, by the first path prefix that matches. The tags' order and descriptions
# are in SPECTACULAR_SETTINGS["TAGS"].
PATH_TAGS = [
    ("/api/{user_id}/", "Compatibility (Next.js todo spec)"),
    ("/api/v1/tags", "Tags"),
    ("/api/v1/me", "Account"),
    ("/api/v1/changes", "Sync"),
    ("/api/v1/", "Tasks"),
    ("/healthz", "Health"),
    ("/readyz", "Health"),
]

# What str.strip() trims (Python's whitespace), spelled out for ECMA-262, whose \s is another set.
WHITESPACE = r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL_PATTERN = r"^[^\u0000]*$"
# No NUL, and a character that is not whitespace: text that is not blank once trimmed.
NOT_BLANK_PATTERN = rf"^[^\u0000]*[^\u0000{WHITESPACE}][^\u0000]*$"


PATH_PARAMETERS: dict[str, tuple[Schema, str]] = {
    "id": ({"type": "integer", "format": "int64", "minimum": 1}, "The task's `id`."),
    "user_id": (
        {"type": "string"},
        "The caller's Better Auth user id (the token's `sub`, `id` in `GET /api/v1/me`). "
        "Any other id is refused with 403.",
    ),
}

# A body each operation's "Try it out" can send unedited, by request component. A test sends each.
REQUEST_EXAMPLES: dict[str, Schema] = {
    "TaskRequest": {
        "title": "Buy oat milk",
        "description": "Two cartons, unsweetened.",
        "completed": False,
        "priority": "high",
        "due_at": "2026-12-01T17:00:00Z",
        "tags": ["Errands"],
        "remind_at": "2026-12-01T16:30:00Z",
    },
    "PatchedTaskRequest": {"completed": True},
    "CompatTaskRequest": {"title": "Call the plumber", "priority": "medium", "tags": ["Home"]},
    "PatchedCompatTaskRequest": {"completed": True},
}

# A wait the throttle really answers (under 60 s: within a window of the recommended 600/min), the
# same in the 429 example's Retry-After and in its message (tests/test_openapi_examples.py provokes it).
THROTTLED_EXAMPLE_WAIT = 42

# Headers that come with a status whenever an operation documents it.
RESPONSE_HEADERS: dict[int, dict[str, Schema]] = {
    201: {
        "Location": {
            "description": "The new task's URL.",
            "schema": {"type": "string", "example": "http://127.0.0.1:8000/api/v1/tasks/42"},
        }
    },
    401: {
        "WWW-Authenticate": {
            "description": 'The scheme to use: `Bearer`, or `Bearer error="invalid_token"`.',
            "schema": {"type": "string", "example": 'Bearer error="invalid_token"'},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until the rate limit lets the caller through again.",
            "schema": {"type": "integer", "example": THROTTLED_EXAMPLE_WAIT},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "example": 5},
        }
    },
}

PAGE_EXAMPLE = {
    "count": 45,
    "next": "http://127.0.0.1:8000/api/v1/tasks?limit=20&offset=40",
    "previous": "http://127.0.0.1:8000/api/v1/tasks?limit=20&offset=0",
}


class ErrorCase(NamedTuple):
    """One error an operation can answer, documented with an example of the body it really sends.

    `when` says which operations can give it: "any" (every one), "token" (operations that need one),
    "public" (those that do not), "body" (with a request body), "query" (with query parameters),
    "path:<name>" or "header:<Name>" (with that parameter), "response:<status>" (declaring that status
    themselves).
    """

    name: str
    when: str
    status: int
    code: str
    message: str
    description: str
    fields: dict[str, list[str]] | None = None


ERRORS = [
    ErrorCase(
        "host_not_allowed",
        "public",
        400,
        "bad_request",
        message="Bad Request.",
        description="The `Host` header is not in `DJANGO_ALLOWED_HOSTS` (a probe must send an allowed one).",
    ),
    ErrorCase(
        "parse_error",
        "body",
        400,
        "parse_error",
        message="JSON parse error - Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        description="The body is not valid JSON.",
    ),
    ErrorCase(
        "invalid_body",
        "body",
        400,
        "invalid",
        message="The request has invalid fields.",
        description="A field has a wrong type or a value out of range.",
        fields={"title": ["Ensure this field has no more than 200 characters."]},
    ),
    ErrorCase(
        "invalid_query",
        "query",
        400,
        "invalid",
        message="The request has invalid fields.",
        description="A query parameter has a value the server does not accept.",
        fields={"completed": ["Must be true or false."]},
    ),
    ErrorCase(
        "invalid_cursor",
        "query:cursor",
        400,
        "invalid_cursor",
        message="This cursor is not one this feed gave you. Start again without one.",
        description="The cursor is malformed, altered, or another user's.",
    ),
    ErrorCase(
        "cursor_expired",
        "query:cursor",
        410,
        "cursor_expired",
        message="Changes after this cursor are past the retention and were removed. "
        "Start again without a cursor.",
        description="Changes after the cursor were removed (`CHANGES_RETENTION_DAYS`): sync again from "
        "the start, without a cursor.",
    ),
    ErrorCase(
        "not_authenticated",
        "token",
        401,
        "not_authenticated",
        message="Authentication credentials were not provided.",
        description="No bearer token (`WWW-Authenticate: Bearer`).",
    ),
    ErrorCase(
        "invalid_token",
        "token",
        401,
        "invalid_token",
        message="Invalid token: the token has expired.",
        description='The token is invalid or expired (`WWW-Authenticate: Bearer error="invalid_token"`).',
    ),
    ErrorCase(
        "account_disabled",
        "token",
        403,
        "permission_denied",
        message="This account is disabled.",
        description="The caller's account is disabled.",
    ),
    ErrorCase(
        "not_your_user_id",
        "path:user_id",
        403,
        "permission_denied",
        message="The user id in the path is not yours.",
        description="The path's user id is not the caller's.",
    ),
    ErrorCase(
        "not_found",
        "path:id",
        404,
        "not_found",
        message="Not found.",
        description="No such task among the caller's own (another user's task is reported the same way).",
    ),
    ErrorCase(
        "length_required",
        "body",
        411,
        "length_required",
        message="The request body must come with a Content-Length.",
        description="The body came without a Content-Length (`Transfer-Encoding: chunked`).",
    ),
    ErrorCase(
        "payload_too_large",
        "body",
        413,
        "payload_too_large",
        message="The request body is over 65536 bytes.",
        description="The body is over the size limit.",
    ),
    ErrorCase(
        "unsupported_media_type",
        "body",
        415,
        "unsupported_media_type",
        message='Unsupported media type "text/plain" in request.',
        description="The body is not `application/json`.",
    ),
    ErrorCase(
        "throttled",
        "token",
        429,
        "throttled",
        message=f"Request was throttled. Expected available in {THROTTLED_EXAMPLE_WAIT} seconds.",
        description="The caller is over the per-user rate limit (`API_USER_RATE`, when set); retry "
        "after `Retry-After` seconds.",
    ),
    ErrorCase(
        "uri_too_long",
        "any",
        414,
        "uri_too_long",
        message=f"The query string is over {MAX_QUERY_STRING_BYTES} bytes.",
        description=f"The query string is over {MAX_QUERY_STRING_BYTES} bytes (or the request line over "
        "what the server reads).",
    ),
    ErrorCase(
        "request_header_fields_too_large",
        "any",
        431,
        "request_header_fields_too_large",
        message=f"A header field is over {LIMIT_REQUEST_FIELD_SIZE} bytes, or there are more than "
        f"{LIMIT_REQUEST_FIELDS} of them.",
        description=f"A header is over {LIMIT_REQUEST_FIELD_SIZE} bytes (a token may have "
        f"{MAX_TOKEN_LENGTH} characters), or there are more than {LIMIT_REQUEST_FIELDS} headers.",
    ),
    ErrorCase(
        "database_unavailable",
        "token",
        503,
        "database_unavailable",
        message="The database is unavailable. Retry shortly.",
        description="The database is unavailable; retry after `Retry-After` seconds.",
    ),
    ErrorCase(
        "not_ready",
        "response:503",
        503,
        "database_unavailable",
        message="The database is unavailable.",
        description="The database does not answer: take this instance out of rotation.",
    ),
    ErrorCase(
        "keys_unavailable",
        "token",
        503,
        "keys_unavailable",
        message="The token's signing key cannot be checked right now. Retry shortly.",
        description="Better Auth's signing keys cannot be fetched; retry after `Retry-After` seconds.",
    ),
]


class ErrorSerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    code = serializers.CharField(help_text="A stable machine-readable code, e.g. `invalid_token`.")
    message = serializers.CharField(help_text="A readable explanation.")
    # The body's member is named "fields", like Serializer.fields: the serializer's metaclass moves
    # declared fields out of the class, so the property still works, but the stubs cannot know that.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(), required=False, help_text="Validation errors by field name."
    )


def _conditions(operation: Schema) -> set[str]:
    """The `when`s of ERRORS that apply to an OpenAPI operation, read from what it declares."""
    found = {f"{parameter['in']}:{parameter['name']}" for parameter in operation.get("parameters", [])}
    found |= {f"response:{status}" for status in operation["responses"]}
    if any(parameter["in"] == "query" for parameter in operation.get("parameters", [])):
        found.add("query")
    if "requestBody" in operation:
        found.add("body")
    needs_token = any(requirement for requirement in operation.get("security", []))
    found |= {"any", "token" if needs_token else "public"}
    return found


def _examples(cases: list[ErrorCase]) -> dict[str, Schema]:
    return {
        case.name: {
            "summary": case.description,
            "value": error_body(case.status, case.code, case.message, case.fields),
        }
        for case in cases
    }


class ErrorDocumentingAutoSchema(AutoSchema):
    """drf-spectacular's schema, completed from the tables above."""

    def get_tags(self) -> list[str]:
        for prefix, tag in PATH_TAGS:
            if self.path.startswith(prefix):
                return [tag]
        return super().get_tags()

    def _resolve_path_parameters(self, variables: list[str]) -> list[Schema]:
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            if parameter["name"] in PATH_PARAMETERS:
                parameter["schema"], parameter["description"] = PATH_PARAMETERS[parameter["name"]]
        return parameters

    def _map_basic_serializer(self, serializer: serializers.Serializer, direction: Direction) -> Schema:
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "response":
            # A model serializer's answer carries every field, so typed clients need no `?` on any.
            if isinstance(serializer, serializers.ModelSerializer):
                schema["required"] = list(schema["properties"])
            return schema
        if getattr(serializer, "reject_unknown_fields", False):
            schema["additionalProperties"] = False
        # A default is what the server fills in, so it is said in words: openapi-typescript would
        # otherwise make the field required in the request type a client must build.
        for property_schema in schema["properties"].values():
            if "default" in property_schema:
                default = json.dumps(property_schema.pop("default"))
                property_schema["description"] = " ".join(
                    filter(None, [property_schema.get("description"), f"Defaults to `{default}`."])
                )
        # DRF's rules for text, as a pattern for machines and in words for people.
        for name, field in serializer.fields.items():
            if field.read_only or not isinstance(field, serializers.CharField):
                continue
            rules: list[str] = []
            pattern = None
            if field.trim_whitespace:
                rules.append("surrounding whitespace is trimmed before the length is checked")
            if any(isinstance(validator, ProhibitNullCharactersValidator) for validator in field.validators):
                rules.append("NUL characters are refused")
                pattern = NO_NUL_PATTERN
            if field.trim_whitespace and not field.allow_blank:
                rules.append("text that is only whitespace is refused")
                pattern = NOT_BLANK_PATTERN
            property_schema = schema["properties"].get(name)
            if pattern and property_schema is not None and "pattern" not in property_schema:
                property_schema["pattern"] = pattern
            if rules and property_schema is not None:
                sentence = "; ".join(rules) + "."
                sentence = sentence[0].upper() + sentence[1:]
                property_schema["description"] = " ".join(
                    filter(None, [property_schema.get("description"), sentence])
                )
        return schema

    def get_operation(self, *args: Any, **kwargs: Any) -> Schema | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        self._add_request_example(operation)
        self._add_errors(operation)
        return operation

    def _add_request_example(self, operation: Schema) -> None:
        for media in operation.get("requestBody", {}).get("content", {}).values():
            component = media["schema"].get("$ref", "").rpartition("/")[2]
            if component in REQUEST_EXAMPLES and "examples" not in media:
                media["example"] = REQUEST_EXAMPLES[component]

    def _add_errors(self, operation: Schema) -> None:
        responses = operation["responses"]
        cases = [case for case in ERRORS if case.when in _conditions(operation)]
        for status in {case.status for case in cases}:
            same_status = [case for case in cases if case.status == status]
            declared = responses.get(str(status))
            response = declared or self._error_response(status)
            if not declared or not declared.get("description"):
                response["description"] = " ".join(case.description for case in same_status)
            if "content" in response:
                response["content"]["application/json"].setdefault("examples", _examples(same_status))
            responses[str(status)] = response
        for status, response in responses.items():
            if not response.get("description"):
                response["description"] = HTTPStatus(int(status)).phrase
        for status, headers in RESPONSE_HEADERS.items():
            if str(status) in responses:
                responses[str(status)].setdefault("headers", {}).update(headers)
        operation["responses"] = dict(sorted(responses.items()))

    def _error_response(self, status: int) -> Schema:
        # 304 and the like have no body.
        return self._get_response_for_code(ErrorSerializer if status >= 400 else None, str(status))


def without_trailing_slash(endpoints: list[Endpoint], **kwargs: Any) -> list[Endpoint]:
    """Preprocessing hook: every route answers with and without a trailing slash; the schema names
    the form without."""
    return [
        (path.rstrip("/"), path_regex, method, callback) for path, path_regex, method, callback in endpoints
    ]


def tidy(result: Schema, generator: SchemaGenerator, request: Request | None, public: bool) -> Schema:
    """Postprocessing hook: paths in the order of their tags, only tags in use, pages as we link them."""
    tag_names = [tag["name"] for tag in result.get("tags", [])]

    def tag_rank(item: tuple[str, Schema]) -> tuple[int, str]:
        path, operations = item
        tags = [tag for operation in operations.values() for tag in operation.get("tags", [])]
        return min((tag_names.index(tag) for tag in tags if tag in tag_names), default=len(tag_names)), path

    result["paths"] = dict(sorted(result["paths"].items(), key=tag_rank))
    used = {
        tag
        for operations in result["paths"].values()
        for operation in operations.values()
        for tag in operation.get("tags", [])
    }
    result["tags"] = [tag for tag in result.get("tags", []) if tag["name"] in used]
    for name, schema in result["components"]["schemas"].items():
        if name.startswith("Paginated"):
            for field, value in PAGE_EXAMPLE.items():
                schema["properties"][field]["example"] = value
    return result
