from django.apps import AppConfig


class TodoApiConfig(AppConfig):
    """The project itself: its templates and static files, and the database connection receivers."""

    name = "todo_api"
    verbose_name = "Todo API"

    def ready(self) -> None:
        from todo_api import database  # noqa: F401 (connects its receivers)
