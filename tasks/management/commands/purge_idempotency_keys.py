"""`manage.py purge_idempotency_keys`: deletes Idempotency-Key records past IDEMPOTENCY_KEY_TTL_HOURS."""

from typing import Any

from django.core.management.base import BaseCommand

from tasks.idempotency import purge_expired


class Command(BaseCommand):
    help = "Deletes expired Idempotency-Key records (run it from a scheduler, e.g. hourly)."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = purge_expired()
        self.stdout.write(f"Deleted {deleted} expired idempotency keys.")
