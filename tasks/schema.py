"""OpenAPI for the task routes' HTTP semantics: ETag, If-None-Match, If-Match and Idempotency-Key,
with the 304, 409, 412 and 422 answers they bring."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import Direction, OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework.exceptions import APIException

from tasks.conditional import PreconditionFailed
from tasks.idempotency import IdempotencyKeyInProgress, IdempotencyKeyReused
from todo_api.errors import error_body
from todo_api.schema import ErrorDocumentingAutoSchema, ErrorSerializer, Schema

TASK_WRITES = {"update", "partial_update", "destroy", "complete"}
READS = {"retrieve", "list"}


def header(name: str, description: str, example: str, **options: Any) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description=description,
        examples=[OpenApiExample(name, value=example)],
        **options,
    )


IF_NONE_MATCH = header(
    "If-None-Match",
    "The ETag of the copy you have: a 304 with no body when it is still current.",
    '"42.3"',
)
IF_MATCH = header(
    "If-Match",
    "The ETag of the task as you last read it: the write happens only if the task is still exactly "
    "that, else 412 and nothing changes. `*` or no header: write whatever the task now is.",
    '"42.3"',
)
IDEMPOTENCY_KEY = header(
    "Idempotency-Key",
    "A new random value per user action (1 to 255 visible ASCII characters, e.g. a UUID). A retry "
    "with the same key and body replays the first 201 and creates nothing, for at least 24 hours.",
    "9b2f0c4e-3d7a-4f4e-9a55-7d1f6c0b8e21",
)
TASK_ETAG = header(
    "ETag",
    "The task's strong entity tag: send it back in If-Match or If-None-Match.",
    '"42.3"',
    response=[200, 201, 304],
)
LIST_ETAG = header(
    "ETag",
    "A weak entity tag of this page: send it back in If-None-Match.",
    'W/"5d41402abc4b2a76"',
    response=[200, 304],
)
REPLAYED = header(
    "Idempotent-Replayed",
    "`true` when this 201 is the replay of an earlier create with the same Idempotency-Key.",
    "true",
    response=[201],
)
LOCATION = header(
    "Location", "The new task's URL.", "https://api.example.com/api/v1/tasks/42", response=[201]
)


def error_response(exception: type[APIException], description: str) -> OpenApiResponse:
    status = exception.status_code
    example = error_body(status, exception.default_code, str(exception.default_detail))
    return OpenApiResponse(
        ErrorSerializer,
        description=description,
        examples=[OpenApiExample(exception.default_code, value=example, status_codes=[status])],
    )


EXTRA_RESPONSES: dict[str, dict[str, OpenApiResponse | None]] = {
    "read": {"304": None},
    "write": {
        "412": error_response(
            PreconditionFailed, "If-Match names another version of the task: fetch it again, nothing changed."
        )
    },
    "create": {
        "409": error_response(
            IdempotencyKeyInProgress, "A request with this Idempotency-Key could not be replayed yet: retry."
        ),
        "422": error_response(
            IdempotencyKeyReused,
            "This Idempotency-Key came with another request body or route: nothing created.",
        ),
    },
}


class TaskSchema(ErrorDocumentingAutoSchema):
    def _kind(self) -> str:
        """The operation's kind: read, write, or else the view's action (create); "" without one."""
        action = getattr(self.view, "action", None) or ""
        if action in READS:
            return "read"
        if action in TASK_WRITES:
            return "write"
        return action

    def get_override_parameters(self) -> list[Any]:
        kind = self._kind()
        etag = LIST_ETAG if getattr(self.view, "action", None) == "list" else TASK_ETAG
        added = {
            "read": [IF_NONE_MATCH, etag],
            "write": [IF_MATCH] + ([] if self.method == "DELETE" else [TASK_ETAG]),
            "create": [IDEMPOTENCY_KEY, TASK_ETAG, LOCATION, REPLAYED],
        }.get(kind, [])
        return [*super().get_override_parameters(), *added]

    def _get_response_bodies(self, direction: Direction = "response") -> Schema:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status, response in EXTRA_RESPONSES.get(self._kind(), {}).items():
            responses[status] = self._get_response_for_code(response, status, direction=direction)
            if response is None:
                responses[status]["description"] = "Not modified: your copy is current (If-None-Match)."
        return responses
