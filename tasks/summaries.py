"""What the caller's tasks add up to: their tags with counts, and dashboard statistics."""

from datetime import datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authbridge.authentication import caller
from tasks.fields import time_zone_names
from tasks.models import Priority, Tag, Task, overdue_at
from tasks.permissions import PathUserIsCaller
from tasks.representation import sorted_names
from tasks.serializers import StatsSerializer, TagCountSerializer, UserStatsSerializer


def counts(queryset: QuerySet[Task], **conditions: Q) -> dict[str, int]:
    """Counts of the queryset's rows meeting each condition, in one query."""
    # Aggregates may not share a field's name (completed, priority): they are named apart, then back.
    totals = queryset.aggregate(
        **{f"{name}__count": Count("pk", filter=condition) for name, condition in conditions.items()}
    )
    return {name: totals[f"{name}__count"] for name in conditions}


def day_bounds(zone: tzinfo, now: datetime) -> tuple[datetime, datetime]:
    """The day containing `now` in `zone`, midnight to midnight (23 or 25 hours when clocks change)."""
    today = now.astimezone(zone).date()
    start = datetime.combine(today, time(), tzinfo=zone)
    return start, datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)


def time_zone(name: str) -> ZoneInfo:
    if name not in time_zone_names():
        raise ValidationError({"tz": ["Unknown time zone. Send an IANA name, e.g. Europe/Paris."]})
    return ZoneInfo(name)


class StatsView(APIView):
    @extend_schema(
        operation_id="getStats",
        summary="Dashboard statistics",
        description="Counts of the caller's tasks: total, completed, open, overdue, due today (in the `tz` "
        "time zone) and by priority.",
        responses=StatsSerializer,
        parameters=[
            OpenApiParameter(
                "tz",
                OpenApiTypes.STR,
                description="The IANA time zone that decides what `due_today` means, e.g. `Europe/Paris`.",
                enum=sorted(time_zone_names()),
                default="UTC",
            )
        ],
    )
    def get(self, request: Request) -> Response:
        """A dashboard summary of your tasks."""
        now = timezone.now()
        start, end = day_bounds(time_zone(request.query_params.get("tz", "UTC")), now)
        summary = counts(
            Task.objects.owned_by(caller(request)),
            total=Q(),
            completed=Q(completed=True),
            overdue=overdue_at(now),
            due_today=Q(due_at__gte=start, due_at__lt=end),
            **{priority.label: Q(priority=priority) for priority in Priority},
        )
        by_priority = {priority.label: summary.pop(priority.label) for priority in Priority}
        summary["open"] = summary["total"] - summary["completed"]
        return Response({**summary, "by_priority": by_priority})


class UserStatsView(APIView):
    permission_classes = [IsAuthenticated, PathUserIsCaller]

    @extend_schema(
        operation_id="compatGetStats",
        summary="Your task counts",
        description="`{total, pending, completed}` of the caller's tasks, the shape the Next.js todo "
        "spec's profile pages read.",
        responses=UserStatsSerializer,
    )
    def get(self, request: Request, user_id: str) -> Response:
        """Your task counts, as the Next.js + Better Auth todo spec's profile pages read them."""
        summary = counts(Task.objects.owned_by(caller(request)), total=Q(), completed=Q(completed=True))
        return Response({**summary, "pending": summary["total"] - summary["completed"]})


class TagListView(APIView):
    @extend_schema(
        operation_id="listTags",
        summary="List your tags",
        description="The caller's tags that are on at least one of their tasks, sorted ignoring case, "
        "each with the number of the caller's tasks that carry it.",
        responses=TagCountSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        """Your tags that are on at least one of your tasks, sorted ignoring case, with their task counts."""
        owner = caller(request)
        tags = (
            Tag.objects.owned_by(owner)
            .annotate(count=Count("tasks", filter=Q(tasks__owner=owner)))
            .filter(count__gt=0)
            .values_list("name", "count")
        )
        count_by_name = dict(tags)
        return Response(
            [{"name": name, "count": count_by_name[name]} for name in sorted_names(count_by_name)]
        )
