"""Query parameters of the task list, parsed strictly: a value the server cannot read is a 400."""

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from django.db.models import F, Model, OrderBy, QuerySet
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend, OrderingFilter, SearchFilter
from rest_framework.request import Request
from rest_framework.views import APIView

from authbridge.authentication import caller
from tasks.fields import (
    DATETIME_HINT,
    DATETIME_SCHEMA,
    PRIORITY_RANKS,
    has_control_character,
    parse_rfc3339,
)
from tasks.models import Tag, overdue_at

BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}
# Sized so that every list parameter at its longest, in 4-byte characters percent-encoded (12 bytes
# each), fits the query string limit together (todo_api/edge.py, MAX_QUERY_STRING_BYTES): gunicorn
# reads at most 8,190 bytes of request line. A search box and an all-of tag filter need no more.
MAX_SEARCH_LENGTH = 100
MAX_TAG_PARAMETERS = 5
# Tasks without one sort last whichever the direction, on every database.
NULLS_LAST_FIELDS = {"due_at", "completed_at"}

# The queryset a filter gets and returns: tasks, or the dicts of their columns (the list's `.values()`).
AnyModel = TypeVar("AnyModel", bound=Model)
Row = TypeVar("Row")


def invalid(parameter: str, message: str) -> ValidationError:
    return ValidationError({parameter: [message]})


def boolean_parameter(request: Request, name: str) -> bool | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if value.lower() not in BOOLEAN_WORDS:
        raise invalid(name, "Must be true or false.")
    return BOOLEAN_WORDS[value.lower()]


def list_parameter(request: Request, name: str) -> list[str]:
    """Both forms a client sends arrays in: `name=a,b` and `name=a&name=b` (or a mix)."""
    return [item.strip() for value in request.query_params.getlist(name) for item in value.split(",")]


def boolean_schema(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "boolean"},
    }


def array_schema(name: str, description: str, items: dict[str, Any], **schema: Any) -> dict[str, Any]:
    # style form + explode: the repeated form, which openapi-fetch and axios send for arrays.
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "style": "form",
        "explode": True,
        "schema": {"type": "array", "items": items, **schema},
    }


class CompletedFilter(BaseFilterBackend):
    def filter_queryset(
        self, request: Request, queryset: QuerySet[AnyModel, Row], view: APIView
    ) -> QuerySet[AnyModel, Row]:
        completed = boolean_parameter(request, "completed")
        return queryset if completed is None else queryset.filter(completed=completed)

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [boolean_schema("completed", "Only completed (true) or open (false) tasks.")]


class PriorityFilter(BaseFilterBackend):
    def filter_queryset(
        self, request: Request, queryset: QuerySet[AnyModel, Row], view: APIView
    ) -> QuerySet[AnyModel, Row]:
        names = list_parameter(request, "priority")
        if not names:
            return queryset
        unknown = [name for name in names if name not in PRIORITY_RANKS]
        if unknown:
            raise invalid("priority", f"Unknown priority: {', '.join(unknown)}. Allowed: low, medium, high.")
        return queryset.filter(priority__in=[PRIORITY_RANKS[name] for name in names])

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            array_schema(
                "priority",
                "Tasks with any of these priorities. Repeat the parameter (`priority=high&priority=medium`) "
                "or separate values with commas (`priority=high,medium`).",
                {"type": "string", "enum": list(PRIORITY_RANKS)},
            )
        ]


class TagFilter(BaseFilterBackend):
    """Tasks carrying every given tag. Names resolve among the caller's own tags only, so another
    user's tag is a tag the caller does not have: an empty result, as for any unknown name."""

    def filter_queryset(
        self, request: Request, queryset: QuerySet[AnyModel, Row], view: APIView
    ) -> QuerySet[AnyModel, Row]:
        names = request.query_params.getlist("tag")
        if len(names) > MAX_TAG_PARAMETERS:
            raise invalid("tag", f"At most {MAX_TAG_PARAMETERS} tags.")
        owned_tags = Tag.objects.owned_by(caller(request))
        for name in {name.strip().lower(): name.strip() for name in names}.values():
            if has_control_character(name):
                # No tag has a control character (nor could the database compare a NUL).
                return queryset.none()
            # The id first, in a query of its own: a literal tag id lets PostgreSQL plan the join from
            # the tag's side (a subquery had it walk all of a user's tasks; see docs/performance.md).
            tag_id = owned_tags.named(name).values_list("pk", flat=True).first()
            if tag_id is None:
                return queryset.none()
            # One join per tag: each must be on the task.
            queryset = queryset.filter(tags=tag_id)
        return queryset

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            array_schema(
                "tag",
                "Tasks carrying all these tags, ignoring case. Repeat the parameter for each tag "
                "(`tag=Work&tag=Urgent`); a comma is part of a tag's name. A tag you do not have "
                "matches no task.",
                {"type": "string"},
                maxItems=MAX_TAG_PARAMETERS,
            )
        ]


class DueFilter(BaseFilterBackend):
    """`due_after` ≤ due_at < `due_before`, `overdue` and `has_due`."""

    def filter_queryset(
        self, request: Request, queryset: QuerySet[AnyModel, Row], view: APIView
    ) -> QuerySet[AnyModel, Row]:
        for name, lookup in (("due_after", "due_at__gte"), ("due_before", "due_at__lt")):
            value = request.query_params.get(name)
            if value is not None:
                moment = parse_rfc3339(value)
                if moment is None:
                    raise invalid(name, DATETIME_HINT)
                queryset = queryset.filter(**{lookup: moment})
        overdue = boolean_parameter(request, "overdue")
        if overdue is not None:
            is_overdue = overdue_at(timezone.now())
            queryset = queryset.filter(is_overdue if overdue else ~is_overdue)
        has_due = boolean_parameter(request, "has_due")
        if has_due is not None:
            queryset = queryset.filter(due_at__isnull=not has_due)
        return queryset

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        moment = DATETIME_SCHEMA
        return [
            {
                "name": "due_after",
                "in": "query",
                "required": False,
                "description": "Tasks due at or after this moment (RFC 3339 with an offset); "
                "tasks without a due date are left out.",
                "schema": moment,
            },
            {
                "name": "due_before",
                "in": "query",
                "required": False,
                "description": "Tasks due before this moment (RFC 3339 with an offset); "
                "tasks without a due date are left out.",
                "schema": moment,
            },
            boolean_schema("overdue", "true: open tasks whose due date has passed; false: every other task."),
            boolean_schema("has_due", "Only tasks with (true) or without (false) a due date."),
        ]


class RecurrenceAndReminderFilter(BaseFilterBackend):
    """`recurring` (the task has a rule) and `has_reminder` (it has a `remind_at`)."""

    FLAGS = {"recurring": "recurrence__isnull", "has_reminder": "remind_at__isnull"}

    def filter_queryset(
        self, request: Request, queryset: QuerySet[AnyModel, Row], view: APIView
    ) -> QuerySet[AnyModel, Row]:
        for name, lookup in self.FLAGS.items():
            value = boolean_parameter(request, name)
            if value is not None:
                queryset = queryset.filter(**{lookup: not value})
        return queryset

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            boolean_schema("recurring", "Only recurring tasks (true) or one-off ones (false)."),
            boolean_schema("has_reminder", "Only tasks with (true) or without (false) a `remind_at`."),
        ]


class LiteralSearchFilter(SearchFilter):
    """Matches the whole text, case-insensitively; DRF's default splits it into words."""

    def get_search_terms(self, request: Request) -> list[str]:
        value = request.query_params.get(self.search_param, "")
        if len(value) > MAX_SEARCH_LENGTH:
            raise invalid(self.search_param, f"At most {MAX_SEARCH_LENGTH} characters.")
        value = value.replace("\x00", "")
        return [value] if value.strip() else []

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        [parameter] = super().get_schema_operation_parameters(view)
        parameter["description"] = "Tasks whose title or description contains this text, ignoring case."
        parameter["schema"]["maxLength"] = MAX_SEARCH_LENGTH
        return [parameter]


class StrictOrderingFilter(OrderingFilter):
    """Unknown ordering fields are a 400, not silently ignored; ties break on the newest id."""

    # Expressions as well as names: DRF passes them all to order_by(), though its stubs say str.
    def get_ordering(  # type: ignore[override]
        self, request: Request, queryset: QuerySet[Any, Any], view: APIView
    ) -> Sequence[str | OrderBy] | None:
        values = request.query_params.getlist(self.ordering_param)
        if not values:
            return self.get_default_ordering(view)
        if not any(values):
            # `ordering=` names no field, like `ordering=,`: not "no ordering given".
            raise invalid(self.ordering_param, "Name at least one field, or leave ordering out.")
        fields = list_parameter(request, self.ordering_param)
        return [
            self.expression(field) for field in self.remove_invalid_fields(queryset, fields, view, request)
        ]

    @staticmethod
    def expression(field: str) -> str | OrderBy:
        name = field.removeprefix("-")
        if name not in NULLS_LAST_FIELDS:
            return field
        return F(name).desc(nulls_last=True) if field.startswith("-") else F(name).asc(nulls_last=True)

    def remove_invalid_fields(
        self, queryset: QuerySet[Any, Any], fields: Iterable[str], view: APIView, request: Request
    ) -> list[str]:
        allowed = {name for name, _ in self.get_valid_fields(queryset, view, {"request": request})}
        unknown = [field for field in fields if field.removeprefix("-") not in allowed]
        if unknown:
            raise invalid(
                self.ordering_param,
                f"Unknown field: {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.",
            )
        return [*fields, "-id"]

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        # Known fields only, since anything else is a 400. A view ordered by this filter declares
        # ordering_fields (TaskViewSet does), which APIView's type does not know.
        ordering_fields = view.ordering_fields  # type: ignore[attr-defined]
        fields = [name if isinstance(name, str) else name[0] for name in ordering_fields]
        return [
            array_schema(
                self.ordering_param,
                "Fields to order by, the first first; `-` before a field sorts it descending. Repeat the "
                "parameter or separate fields with commas. `priority` sorts by rank (low < medium < high); "
                "tasks without `due_at` or `completed_at` come last in both directions; ties go to the "
                "newest task.",
                {"type": "string", "enum": [*fields, *(f"-{name}" for name in fields)]},
                minItems=1,  # `ordering=` names no field: a 400
            )
        ]
