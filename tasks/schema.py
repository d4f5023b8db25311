"""OpenAPI for the task routes: each operation's id, summary and description, and their HTTP
semantics: ETag, If-None-Match, If-Match and Idempotency-Key, with the 304, 409, 412 and 422 answers
they bring."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    Direction,
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework.exceptions import APIException

from tasks.conditional import PreconditionFailed
from tasks.idempotency import VALID_KEY, IdempotencyKeyInProgress, IdempotencyKeyReused
from tasks.serializers import TaskSerializer
from tasks.services import CannotSkip
from todo_api.errors import error_body
from todo_api.schema import ErrorDocumentingAutoSchema, ErrorSerializer, Schema

TASK_WRITES = {"update", "partial_update", "destroy", "complete", "skip"}
READS = {"retrieve", "list"}


def header(
    name: str, description: str, example: str, schema: Schema | None = None, **options: Any
) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        schema or OpenApiTypes.STR,
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
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": f"^{VALID_KEY.pattern}$"},
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


SKIP_REFUSED = error_response(
    CannotSkip, "The task is completed, does not repeat, or its series has ended: nothing changed."
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
            IdempotencyKeyInProgress,
            "Another request with this Idempotency-Key was handled at the same moment and its result "
            "could not be read back: retry with the same key.",
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


# The operations of TaskViewSet (/api/v1/tasks).
task_viewset_schema = extend_schema_view(
    list=extend_schema(
        operation_id="listTasks",
        summary="List your tasks",
        description="A page of the caller's tasks, newest first unless `ordering` says otherwise. "
        "`next` and `previous` link the neighbouring pages.",
    ),
    create=extend_schema(
        operation_id="createTask",
        summary="Create a task",
        description="Creates a task owned by the caller; `Location` gives its URL.",
    ),
    retrieve=extend_schema(
        operation_id="getTask", summary="Get a task", description="One of the caller's tasks."
    ),
    update=extend_schema(
        operation_id="replaceTask",
        summary="Replace a task",
        description="Sends the task as a whole (`title` required). A field left out keeps its current "
        "value; send `null`, `[]` or `false` to clear one.",
    ),
    partial_update=extend_schema(
        operation_id="updateTask",
        summary="Update some fields of a task",
        description="Changes only the fields sent.",
    ),
    destroy=extend_schema(
        operation_id="deleteTask", summary="Delete a task", description="Deletes the task for good."
    ),
    skip=extend_schema(
        operation_id="skipTask",
        summary="Skip to the next occurrence",
        description="Moves an open recurring task to its next occurrence, the first after its current "
        "`due_at`; `remind_at` moves with it and the reminder is armed again. Takes no body.",
        request=None,
        responses={200: TaskSerializer, 409: SKIP_REFUSED},
    ),
)

IGNORED_FIELDS_HEADER = OpenApiParameter(
    "X-Ignored-Fields",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200, 201],
    description="Body fields that are not the task's and were ignored, comma-separated and "
    "percent-encoded, e.g. `category, dueDate`: at most 20 names, each cut to 50 characters and an "
    "ellipsis (`…`) when longer, and at most 1024 bytes in all (names past that are left out). "
    "Absent when none were.",
)

# The operations of UserTaskViewSet (/api/{user_id}/tasks).
user_task_viewset_schema = extend_schema_view(
    # One Task in responses for both families; only what they accept as a request differs.
    list=extend_schema(
        operation_id="compatListTasks",
        summary="List your tasks (plain array)",
        description="All of the caller's tasks as a plain array, newest first unless `ordering` says so.",
        responses=TaskSerializer(many=True),
    ),
    create=extend_schema(
        operation_id="compatCreateTask",
        summary="Create a task",
        description="As `POST /api/v1/tasks`, under the caller's user id; body fields a task does not "
        "have are ignored and named in `X-Ignored-Fields`.",
        responses={201: TaskSerializer},
        parameters=[IGNORED_FIELDS_HEADER],
    ),
    retrieve=extend_schema(
        operation_id="compatGetTask",
        summary="Get a task",
        description="As `GET /api/v1/tasks/{id}`.",
        responses=TaskSerializer,
    ),
    update=extend_schema(
        operation_id="compatReplaceTask",
        summary="Replace a task",
        description="As `PUT /api/v1/tasks/{id}`; unknown body fields are named in `X-Ignored-Fields`.",
        responses=TaskSerializer,
        parameters=[IGNORED_FIELDS_HEADER],
    ),
    partial_update=extend_schema(
        operation_id="compatUpdateTask",
        summary="Update some fields of a task",
        description="As `PATCH /api/v1/tasks/{id}`; unknown body fields are named in `X-Ignored-Fields`.",
        responses=TaskSerializer,
        parameters=[IGNORED_FIELDS_HEADER],
    ),
    destroy=extend_schema(
        operation_id="compatDeleteTask",
        summary="Delete a task",
        description="As `DELETE /api/v1/tasks/{id}`.",
    ),
    skip=extend_schema(
        operation_id="compatSkipTask",
        summary="Skip to the next occurrence",
        description="As `POST /api/v1/tasks/{id}/skip`.",
        request=None,
        responses={200: TaskSerializer, 409: SKIP_REFUSED},
    ),
    complete=extend_schema(
        operation_id="compatToggleTaskCompleted",
        summary="Toggle a task's completed flag",
        description="Flips `completed` in one atomic step (two toggles at once leave it as it was) and "
        "returns the task. Takes no body.",
        request=None,
        responses=TaskSerializer,
    ),
)
