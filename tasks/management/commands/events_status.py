"""`manage.py events_status`: how many task events wait to go out to Dapr, and how old the oldest is."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from tasks.events import backlog


class Command(BaseCommand):
    help = "Prints how many task events wait to be published to Dapr and the age of the oldest."

    def handle(self, *args: Any, **options: Any) -> None:
        count, oldest = backlog()
        if not settings.EVENTS_ENABLED:
            self.stdout.write("Events are off (neither DAPR_HTTP_ENDPOINT nor DAPR_HTTP_PORT is set).")
        if oldest is None:
            self.stdout.write("0 events wait.")
            return
        age = (timezone.now() - oldest).total_seconds()
        self.stdout.write(
            f"{count} events wait; the oldest was recorded {age:.0f} s ago ({oldest.isoformat()})."
        )
