"""Graceful drain of a gunicorn worker: from its SIGTERM on, /readyz answers 503.

gunicorn alone stops accepting at once and finishes in-flight requests within its graceful timeout.
A balancer that health-checks /readyz learns of that only when connections start failing; with a drain
delay (GUNICORN_DRAIN_SECONDS) the worker first keeps serving while /readyz says 503, so the balancer
takes it out of rotation before its socket closes. Under Kubernetes the preStop sleep does that job
(the endpoint is removed before SIGTERM arrives) and the delay can stay 0.
"""

import signal
import threading
from types import FrameType

from gunicorn.workers.base import Worker

_draining = threading.Event()


def is_draining() -> bool:
    return _draining.is_set()


def start_draining() -> None:
    _draining.set()


def drain_on_sigterm(worker: Worker, delay: float) -> None:
    """Replaces the worker's SIGTERM handler (gunicorn's post_worker_init hook calls this)."""
    stop = worker.handle_exit

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if is_draining():
            return
        start_draining()
        worker.log.info("Draining: /readyz answers 503, the worker stops in %s s", delay)
        # gunicorn's handler only flags the worker and wakes its loop, so a timer thread may call it.
        timer = threading.Timer(delay, stop, (signum, None))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_sigterm)
    # As gunicorn does for its own handler: a SIGTERM must not interrupt a request's system calls.
    signal.siginterrupt(signal.SIGTERM, False)
