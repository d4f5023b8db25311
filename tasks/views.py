"""Task endpoints: /api/v1/tasks (paginated) and the /api/{user_id}/tasks compatibility routes."""

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from django.db.models import QuerySet
from django.http import Http404, HttpResponseBase
from django.urls import reverse
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import BasePagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from authbridge.authentication import caller
from authbridge.models import User
from tasks.compiled import CompiledQuery
from tasks.conditional import ConditionalTaskMixin
from tasks.filters import (
    CompletedFilter,
    DueFilter,
    LiteralSearchFilter,
    PriorityFilter,
    RecurrenceAndReminderFilter,
    StrictOrderingFilter,
    TagFilter,
)
from tasks.idempotency import IdempotentCreateMixin
from tasks.models import TagNames, Task
from tasks.pagination import TaskPagination, task_page
from tasks.permissions import PathUserIsCaller
from tasks.representation import represent_tasks, task_rows
from tasks.schema import TaskSchema, task_viewset_schema, user_task_viewset_schema
from tasks.serializers import CompatTaskSerializer, TaskSerializer
from tasks.services import task_create, task_delete, task_skip, task_toggle, task_update

PAGE_PARAMETERS = {"limit", "offset"}


def owned_tasks(owner: User) -> QuerySet[Task]:
    """The owner's tasks in the model's order, newest first: what every task view reads, through the
    ORM or compiled."""
    return Task.objects.owned_by(owner).order_by(*(Task._meta.ordering or ()))


def unfiltered_rows(owner: int) -> QuerySet[Task, dict[str, Any]]:
    """The list as most requests ask for it: no filter, the default order."""
    return task_rows(owned_tasks(User(pk=owner)))


# The hot queries: a page of the unfiltered list (v1), all of it (the compatibility routes), one task.
DEFAULT_LIST_PAGE = CompiledQuery(lambda page, owner: task_page(unfiltered_rows(owner), *page))
DEFAULT_LIST = CompiledQuery(unfiltered_rows)
# Unordered, as QuerySet.get() leaves it: one row needs no sort.
ONE_TASK = CompiledQuery(
    lambda owner, pk: owned_tasks(User(pk=owner)).filter(pk=pk).annotate(tag_names=TagNames()).order_by()
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


@task_viewset_schema
class TaskViewSet(IdempotentCreateMixin, ConditionalTaskMixin, CompiledLookupMixin):
    """Your tasks. Another user's task answers 404, exactly like a missing one."""

    serializer_class = TaskSerializer
    pagination_class: type[BasePagination] | None = TaskPagination
    filter_backends = [
        CompletedFilter,
        PriorityFilter,
        TagFilter,
        DueFilter,
        RecurrenceAndReminderFilter,
        LiteralSearchFilter,
        StrictOrderingFilter,
    ]
    search_fields = ["title", "description"]
    ordering_fields = ["created_at", "updated_at", "title", "completed", "priority", "due_at", "completed_at"]
    # No `ordering`: without an `ordering` parameter the list keeps owned_tasks' order.
    lookup_value_regex = "[0-9]{1,18}"
    schema = TaskSchema()
    detail_route_name = "task-detail"

    def get_queryset(self) -> QuerySet[Task]:
        return owned_tasks(caller(self.request))

    def unfiltered_page(self, paginator: TaskPagination) -> list[dict[str, Any]]:
        """A page of the list as most requests ask for it: the compiled DEFAULT_LIST_PAGE query."""
        owner = caller(self.request)
        return paginator.paginate(
            self.request,
            lambda offset, limit: DEFAULT_LIST_PAGE.dicts((offset, limit), owner=owner.pk),
            lambda: owned_tasks(owner).count(),  # built only past the last page
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

    # The writes: the serializer has validated the body, the write path (tasks/services.py) writes.
    def perform_create(self, serializer: BaseSerializer[Task]) -> None:
        serializer.instance = self.task = task_create(owner=caller(self.request), **serializer.validated_data)

    def perform_update(self, serializer: BaseSerializer[Task]) -> None:
        assert serializer.instance is not None  # get_object's task
        serializer.instance = task_update(
            serializer.instance, versions=self.allowed_versions(), **serializer.validated_data
        )

    def perform_destroy(self, instance: Task) -> None:
        task_delete(instance, versions=self.allowed_versions())

    @action(detail=True, methods=["post"])
    def skip(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Moves a recurring task to its next occurrence and returns it."""
        task = task_skip(self.get_object(), versions=self.allowed_versions())
        return Response(self.get_serializer(task).data)

    def get_success_headers(self, data: Any) -> dict[str, str]:
        route_kwargs = {**self.kwargs, "pk": data["id"]}
        location = self.request.build_absolute_uri(reverse(self.detail_route_name, kwargs=route_kwargs))
        return {**super().get_success_headers(data), "Location": location}


MAX_IGNORED_FIELDS_LISTED = 20
# A longer name is cut to this many characters and ends in "…"; enough to recognise any real field.
MAX_IGNORED_FIELD_NAME_LENGTH = 50
# The whole value, encoded: with the other headers it stays well inside a proxy's response header
# buffer (nginx's proxy_buffer_size is one 4 KiB page), which would otherwise turn the answer into a 502.
MAX_IGNORED_FIELDS_HEADER_BYTES = 1024


def ignored_fields_header(names: Sequence[str]) -> str:
    """A header value from client-chosen names: percent-encoded, so no name can break the header;
    each name and the whole value capped (names that do not fit are left out)."""
    listed: list[str] = []
    size = 0
    for name in names[:MAX_IGNORED_FIELDS_LISTED]:
        if len(name) > MAX_IGNORED_FIELD_NAME_LENGTH:
            name = name[:MAX_IGNORED_FIELD_NAME_LENGTH] + "…"
        encoded = quote(name, safe="")
        size += len(encoded) + (2 if listed else 0)
        if size > MAX_IGNORED_FIELDS_HEADER_BYTES:
            break
        listed.append(encoded)
    return ", ".join(listed)


@user_task_viewset_schema
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

    def replayed_headers(self, response: Response) -> dict[str, str]:
        # Added by finalize_response below, after the create that is remembered.
        headers = super().replayed_headers(response)
        if self.ignored_fields:
            headers["X-Ignored-Fields"] = ignored_fields_header(self.ignored_fields)
        return headers

    # A 304 is not a DRF Response: see ConditionalTaskMixin.finalize_response.
    def finalize_response(  # type: ignore[override]
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        finalized = super().finalize_response(request, response, *args, **kwargs)
        if self.ignored_fields:
            finalized["X-Ignored-Fields"] = ignored_fields_header(self.ignored_fields)
        return finalized

    @action(detail=True, methods=["patch"])
    def complete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Toggles `completed` and returns the task."""
        task = self.get_object()
        task_toggle(task, versions=self.allowed_versions())
        return Response(self.get_serializer(task).data, status=status.HTTP_200_OK)
