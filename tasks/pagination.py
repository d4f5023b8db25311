"""The task list's pages: `limit` and `offset`, strictly parsed, with the total read in the same query."""

from collections.abc import Callable
from typing import Any

from django.db.models import Count, QuerySet, Window
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.views import APIView

from tasks.models import Task


def integer_parameter(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    """A query parameter that must be an integer in a range, else a 400 naming it: a client whose
    page size silently became the default would never learn of its bug."""
    value = request.query_params.get(name)
    if value is None:
        return default
    # Digits first, and no more than the maximum has: int() refuses over 4,300 of them.
    fits = value.isascii() and value.isdigit() and len(value.lstrip("0")) <= len(str(maximum))
    if not (fits and minimum <= int(value) <= maximum):
        raise ValidationError({name: [f"Must be an integer from {minimum} to {maximum}."]})
    return int(value)


class TaskPagination(LimitOffsetPagination):
    """Limit/offset pages whose total arrives with the rows: one query (COUNT(*) OVER ()), not two.

    `limit` and `offset` outside their documented ranges are a 400 naming the parameter.
    """

    default_limit = 20
    max_limit = 100
    max_offset = 2**31 - 1  # past any real list, and an int32 in every generated client

    def get_limit(self, request: Request) -> int:
        return integer_parameter(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return integer_parameter(request, self.offset_query_param, 0, 0, self.max_offset)

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
