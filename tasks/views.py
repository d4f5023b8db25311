"""Task endpoints: /api/v1/tasks (paginated) and the /api/{user_id}/tasks compatibility routes."""

from urllib.parse import quote

from django.db.models import Count, Window
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks.filters import (
    CompletedFilter,
    DueFilter,
    LiteralSearchFilter,
    PriorityFilter,
    StrictOrderingFilter,
    TagFilter,
)
from tasks.models import Task
from tasks.permissions import PathUserIsCaller
from tasks.serializers import (
    TASK_COLUMNS,
    CompatTaskSerializer,
    MeSerializer,
    TaskSerializer,
    represent_tasks,
)


class TaskPagination(LimitOffsetPagination):
    """Limit/offset pages whose total arrives with the rows: one query (COUNT(*) OVER ()), not two."""

    default_limit = 20
    max_limit = 100
    max_offset = 2**31  # past any real list; larger ones would overflow the databases' OFFSET

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.limit, self.offset = self.get_limit(request), self.get_offset(request)
        rows = []
        if self.offset < self.max_offset:
            page = queryset.annotate(total_count=Window(Count("pk")))[self.offset : self.offset + self.limit]
            rows = list(page)
        # A page past the end has no row to read the total from.
        self.count = rows[0]["total_count"] if rows else queryset.count()
        for row in rows:
            del row["total_count"]
        return rows


class TaskViewSet(viewsets.ModelViewSet):
    """Your tasks. Another user's task answers 404, exactly like a missing one."""

    serializer_class = TaskSerializer
    pagination_class = TaskPagination
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
    ordering = ["-created_at", "-id"]
    lookup_value_regex = "[0-9]{1,18}"
    detail_route_name = "task-detail"

    def get_queryset(self):
        return Task.objects.owned_by(self.request.user)

    def list(self, request, *args, **kwargs):
        rows = self.filter_queryset(self.get_queryset()).values(*TASK_COLUMNS)
        page = self.paginate_queryset(rows)
        if page is None:
            return Response(represent_tasks(list(rows)))
        return self.get_paginated_response(represent_tasks(page))

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        route_kwargs = {**self.kwargs, "pk": response.data["id"]}
        response["Location"] = request.build_absolute_uri(
            reverse(self.detail_route_name, kwargs=route_kwargs)
        )
        return response


IGNORED_FIELDS_HEADER = OpenApiParameter(
    "X-Ignored-Fields",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200, 201],
    description="Body fields that are not the task's and were ignored, comma-separated and "
    "percent-encoded (at most 20 names), e.g. `category, dueDate`. Absent when none were.",
)
MAX_IGNORED_FIELDS_LISTED = 20


def ignored_fields_header(names):
    """A header value from client-chosen names: percent-encoded, so no name can break the header."""
    listed = [quote(name, safe="") for name in names[:MAX_IGNORED_FIELDS_LISTED]]
    return ", ".join(listed)


@extend_schema_view(
    # One Task in responses for both families; only what they accept as a request differs.
    list=extend_schema(responses=TaskSerializer(many=True)),
    retrieve=extend_schema(responses=TaskSerializer),
    create=extend_schema(responses={201: TaskSerializer}, parameters=[IGNORED_FIELDS_HEADER]),
    update=extend_schema(responses=TaskSerializer, parameters=[IGNORED_FIELDS_HEADER]),
    partial_update=extend_schema(responses=TaskSerializer, parameters=[IGNORED_FIELDS_HEADER]),
)
class UserTaskViewSet(TaskViewSet):
    """The Next.js + Better Auth todo spec's routes: `user_id` must be the caller's own id."""

    permission_classes = [IsAuthenticated, PathUserIsCaller]
    pagination_class = None
    detail_route_name = "user-task-detail"
    serializer_class = CompatTaskSerializer
    ignored_fields = ()

    def perform_create(self, serializer):
        super().perform_create(serializer)
        self.ignored_fields = serializer.ignored_fields

    def perform_update(self, serializer):
        super().perform_update(serializer)
        self.ignored_fields = serializer.ignored_fields

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.ignored_fields:
            response["X-Ignored-Fields"] = ignored_fields_header(self.ignored_fields)
        return response

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["patch"])
    def complete(self, request, *args, **kwargs):
        """Toggles `completed` and returns the task."""
        task = self.get_object()
        task.toggle_completed()
        return Response(self.get_serializer(task).data, status=status.HTTP_200_OK)


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request):
        """The caller, as Better Auth describes them."""
        return Response(MeSerializer(request.user).data)
