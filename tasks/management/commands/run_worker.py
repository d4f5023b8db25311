"""`manage.py run_worker`: the process that fires due reminders (tasks/worker.py) and, with events on,
publishes task events to Dapr beside them (tasks/events.py); stops on SIGTERM."""

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from tasks.events import Publisher
from tasks.worker import ReminderWorker
from todo_api.metrics import serve_worker_metrics


class Command(BaseCommand):
    help = (
        "Fires due reminders and, with DAPR_HTTP_ENDPOINT or DAPR_HTTP_PORT set, publishes task events, "
        "polling every WORKER_POLL_SECONDS; any number may run. "
        "SIGTERM or SIGINT: finishes the reminder or event in hand and exits."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            # Only the flag: the loop checks it between claims and its wait wakes on it at once.
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            from todo_api.tracing import start_tracing  # OpenTelemetry is imported only when asked for

            start_tracing()
        if settings.WORKER_METRICS_PORT:
            serve_worker_metrics(settings.WORKER_METRICS_PORT)
        publishing = None
        if settings.EVENTS_ENABLED:
            assert settings.DAPR_HTTP_ENDPOINT is not None  # what EVENTS_ENABLED means
            publisher = Publisher(
                endpoint=settings.DAPR_HTTP_ENDPOINT, poll_seconds=settings.WORKER_POLL_SECONDS, stop=stop
            )
            # A thread of its own (and so its own database connection), beside the reminders.
            publishing = threading.Thread(target=publisher.run, name="publisher")
            publishing.start()
        else:
            logging.getLogger("tasks.events").info(
                "events are off (neither DAPR_HTTP_ENDPOINT nor DAPR_HTTP_PORT is set): only reminders run"
            )
        try:
            ReminderWorker(poll_seconds=settings.WORKER_POLL_SECONDS, stop=stop).run()
        finally:
            stop.set()  # the reminders' loop ended (or failed): the publisher stops too
            if publishing is not None:
                publishing.join()
