from rest_framework.routers import SimpleRouter

from tasks.views import TaskViewSet, UserTaskViewSet


class OptionalSlashRouter(SimpleRouter):
    """Every route answers with and without a trailing slash, for every method: no redirects."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


v1_router = OptionalSlashRouter()
v1_router.register("tasks", TaskViewSet, basename="task")

user_router = OptionalSlashRouter()
user_router.register(r"(?P<user_id>[^/]+)/tasks", UserTaskViewSet, basename="user-task")

v1_urls = v1_router.urls
