"""`manage.py purge_changes`: removes change-feed records older than CHANGES_RETENTION_DAYS."""

from typing import Any

from django.core.management.base import BaseCommand

from tasks.changes import purge_before, retention_cutoff


class Command(BaseCommand):
    help = "Removes change-feed records past CHANGES_RETENTION_DAYS (run it from a scheduler, e.g. daily)."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = purge_before(retention_cutoff())
        self.stdout.write(f"Deleted {deleted} changes past the retention.")
