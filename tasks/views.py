"""Task endpoints: /api/v1/tasks (paginated) and the /api/{user_id}/tasks compatibility routes."""

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from django.db.models import Count, QuerySet, Window
from django.http import Http404, HttpResponseBase
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from authbridge.authentication import caller
from authbridge.models import User
from tasks.compiled import CompiledQuery
from tasks.conditional import ConditionalTaskMixin
from tasks.filters import (
    CompletedFilter,
    DueFilter,
    LiteralSearchFilter,
    PriorityFilter,
    StrictOrderingFilter,
    TagFilter,
)
from tasks.idempotency import IdempotentCreateMixin
from tasks.models import TagNames, Task
from tasks.permissions import PathUserIsCaller
from tasks.representation import represent_tasks, task_rows
from tasks.schema import TaskSchema
from tasks.serializers import CompatTaskSerializer, TaskSerializer


class TaskPagination(LimitOffsetPagination):
    """Limit/offset pages whose total arrives with the rows: one query (COUNT(*) OVER ()), not two.

    `limit` and `offset` outside their documented ranges are a 400 naming the parameter: a client
    whose page size silently became the default would never learn of its bug.
    """

    default_limit = 20
    max_limit = 100
    max_offset = 2**31 - 1  # past any real list, and an int32 in every generated client

    def get_limit(self, request: Request) -> int:
        return self._integer_param(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return self._integer_param(request, self.offset_query_param, 0, 0, self.max_offset)

    @staticmethod
    def _integer_param(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
        value = request.query_params.get(name)
        if value is None:
            return default
        # Digits first, and no more than the maximum has: int() refuses over 4,300 of them.
        fits = value.isascii() and value.isdigit() and len(value.lstrip("0")) <= len(str(maximum))
        if not (fits and minimum <= int(value) <= maximum):
            raise ValidationError({name: [f"Must be an integer from {minimum} to {maximum}."]})
        return int(value)

    # Narrower than DRF's: the list hands over a `.values()` queryset, and the total is annotated on it.
    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Task, dict[str, Any]], request: Request, view: APIView | None = None
    ) -> list[dict[str, Any]]:
        return self.paginate(
            request, lambda offset, limit: list(task_page(queryset, offset, limit)), queryset.count
        )

    def paginate(
        self,
        request: Request,
        read_page: Callable[[int, int], list[dict[str, Any]]],
        count: Callable[[], int],
    ) -> list[dict[str, Any]]:
        """The rows `read_page(offset, limit)` gives for the request's page, each with its total."""
        self.request = request
        self.limit, self.offset = self.get_limit(request), self.get_offset(request)
        rows = read_page(self.offset, self.limit)
        # A page past the end has no row to read the total from.
        self.count = rows[0]["total_count"] if rows else count()
        for row in rows:
            del row["total_count"]
        return rows

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        limit, offset = super().get_schema_operation_parameters(view)
        limit["schema"].update(minimum=1, maximum=self.max_limit, default=self.default_limit)
        offset["schema"].update(minimum=0, maximum=self.max_offset, default=0)
        return [limit, offset]


def task_page(
    rows: QuerySet[Task, dict[str, Any]], offset: int, limit: int
) -> QuerySet[Task, dict[str, Any]]:
    """A page of rows, each with the total of all the rows: one query (COUNT(*) OVER ()), not two."""
    return rows.annotate(total_count=Window(Count("pk")))[offset : offset + limit]


DEFAULT_ORDERING = ["-created_at", "-id"]
PAGE_PARAMETERS = {"limit", "offset"}


def unfiltered_rows(owner: int) -> QuerySet[Task, dict[str, Any]]:
    """The list as most requests ask for it: no filter, the default order."""
    return task_rows(Task.objects.owned_by(User(pk=owner)).order_by(*DEFAULT_ORDERING))


# The hot queries: a page of the unfiltered list (v1), all of it (the compatibility routes), one task.
DEFAULT_LIST_PAGE = CompiledQuery(lambda page, owner: task_page(unfiltered_rows(owner), *page))
DEFAULT_LIST = CompiledQuery(unfiltered_rows)
# Unordered, as QuerySet.get() leaves it: one row needs no sort.
ONE_TASK = CompiledQuery(
    lambda owner, pk: (
        Task.objects.owned_by(User(pk=owner)).filter(pk=pk).annotate(tag_names=TagNames()).order_by()
    )
)


class CompiledLookupMixin(viewsets.ModelViewSet):
    """get_object with the compiled ONE_TASK query: the same ownership rule and 404, at less CPU."""

    def get_object(self) -> Task:
        pk = int(self.kwargs[self.lookup_field])  # the route admits 1 to 18 digits only
        found = ONE_TASK.instances(owner=caller(self.request).pk, pk=pk)
        if not found:
            raise Http404
        self.check_object_permissions(self.request, found[0])
        return found[0]


@extend_schema_view(
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
)
class TaskViewSet(IdempotentCreateMixin, ConditionalTaskMixin, CompiledLookupMixin):
    """Your tasks. Another user's task answers 404, exactly like a missing one."""

    serializer_class = TaskSerializer
    pagination_class: type[BasePagination] | None = TaskPagination
    filter_backends = [
        CompletedFilter,
        PriorityFilter,
        TagFilter,
        DueFilter,
        LiteralSearchFilter,
        StrictOrderingFilter,
    ]
    search_fields = ["title", "description"]
    ordering_fields = ["created_at", "updated_at", "title", "completed", "priority", "due_at", "completed_at"]
    ordering = DEFAULT_ORDERING
    lookup_value_regex = "[0-9]{1,18}"
    schema = TaskSchema()
    detail_route_name = "task-detail"

    def get_queryset(self) -> QuerySet[Task]:
        return Task.objects.owned_by(caller(self.request))

    def unfiltered_page(self, paginator: TaskPagination) -> list[dict[str, Any]]:
        """A page of the list as most requests ask for it: the compiled DEFAULT_LIST_PAGE query."""
        owner = caller(self.request)
        return paginator.paginate(
            self.request,
            lambda offset, limit: DEFAULT_LIST_PAGE.dicts((offset, limit), owner=owner.pk),
            lambda: Task.objects.owned_by(owner).count(),  # built only past the last page
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if set(request.query_params) <= PAGE_PARAMETERS:  # no filter, no ordering: compiled queries
            if isinstance(self.paginator, TaskPagination):
                return self.get_paginated_response(represent_tasks(self.unfiltered_page(self.paginator)))
            return Response(represent_tasks(DEFAULT_LIST.dicts(owner=caller(request).pk)))
        rows = task_rows(self.filter_queryset(self.get_queryset()))
        page = self.paginate_queryset(rows)
        if page is None:
            return Response(represent_tasks(list(rows)))
        return self.get_paginated_response(represent_tasks(page))

    def perform_create(self, serializer: BaseSerializer[Task]) -> None:
        self.task = serializer.save(owner=caller(self.request))

    def get_success_headers(self, data: Any) -> dict[str, str]:
        route_kwargs = {**self.kwargs, "pk": data["id"]}
        location = self.request.build_absolute_uri(reverse(self.detail_route_name, kwargs=route_kwargs))
        return {**super().get_success_headers(data), "Location": location}


IGNORED_FIELDS_HEADER = OpenApiParameter(
    "X-Ignored-Fields",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200, 201],
    description="Body fields that are not the task's and were ignored, comma-separated and "
    "percent-encoded (at most 20 names), e.g. `category, dueDate`. Absent when none were.",
)
MAX_IGNORED_FIELDS_LISTED = 20


def ignored_fields_header(names: Sequence[str]) -> str:
    """A header value from client-chosen names: percent-encoded, so no name can break the header."""
    listed = [quote(name, safe="") for name in names[:MAX_IGNORED_FIELDS_LISTED]]
    return ", ".join(listed)


@extend_schema_view(
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
    complete=extend_schema(
        operation_id="compatToggleTaskCompleted",
        summary="Toggle a task's completed flag",
        description="Flips `completed` in one atomic step (two toggles at once leave it as it was) and "
        "returns the task. Takes no body.",
    ),
)
class UserTaskViewSet(TaskViewSet):
    """The Next.js + Better Auth todo spec's routes: `user_id` must be the caller's own id."""

    permission_classes = [IsAuthenticated, PathUserIsCaller]
    pagination_class = None
    detail_route_name = "user-task-detail"
    serializer_class = CompatTaskSerializer
    ignored_fields: Sequence[str] = ()

    # serializer_class is CompatTaskSerializer here, which DRF's signature cannot say.
    def perform_create(self, serializer: CompatTaskSerializer) -> None:  # type: ignore[override]
        super().perform_create(serializer)
        self.ignored_fields = serializer.ignored_fields

    def perform_update(self, serializer: CompatTaskSerializer) -> None:  # type: ignore[override]
        super().perform_update(serializer)
        self.ignored_fields = serializer.ignored_fields

    # A 304 is not a DRF Response: see ConditionalTaskMixin.finalize_response.
    def finalize_response(  # type: ignore[override]
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        finalized = super().finalize_response(request, response, *args, **kwargs)
        if self.ignored_fields:
            finalized["X-Ignored-Fields"] = ignored_fields_header(self.ignored_fields)
        return finalized

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["patch"])
    def complete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Toggles `completed` and returns the task."""
        task = self.get_object()
        task.toggle_completed(versions=self.allowed_versions())
        return Response(self.get_serializer(task).data, status=status.HTTP_200_OK)
