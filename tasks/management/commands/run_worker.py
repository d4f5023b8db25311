"""`manage.py run_worker`: the process that fires due reminders (tasks/worker.py); stops on SIGTERM."""

import signal
import threading
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from tasks.worker import ReminderWorker


class Command(BaseCommand):
    help = (
        "Fires due reminders, polling every WORKER_POLL_SECONDS; any number may run. "
        "SIGTERM or SIGINT: finishes the reminder in hand and exits."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            # Only the flag: the loop checks it between claims and its wait wakes on it at once.
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        ReminderWorker(poll_seconds=settings.WORKER_POLL_SECONDS, stop=stop).run()
