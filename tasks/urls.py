from django.urls import re_path
from rest_framework.routers import SimpleRouter

from tasks.changes import ChangeFeedView
from tasks.summaries import StatsView, TagListView, UserStatsView
from tasks.views import TaskViewSet, UserTaskViewSet


class OptionalSlashRouter(SimpleRouter):
    """Every route answers with and without a trailing slash, for every method: no redirects."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


v1_router = OptionalSlashRouter()
v1_router.register("tasks", TaskViewSet, basename="task")

user_router = OptionalSlashRouter()
user_router.register(r"(?P<user_id>[^/]+)/tasks", UserTaskViewSet, basename="user-task")

v1_urls = [
    re_path(r"^tags/?$", TagListView.as_view(), name="tags"),
    re_path(r"^stats/?$", StatsView.as_view(), name="stats"),
    re_path(r"^changes/?$", ChangeFeedView.as_view(), name="changes"),
    *v1_router.urls,
]
user_urls = [
    re_path(r"^(?P<user_id>[^/]+)/stats/?$", UserStatsView.as_view(), name="user-stats"),
    *user_router.urls,
]
