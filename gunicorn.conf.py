"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py todo_api.wsgi`.

Sizes, timeouts, bind address and log level come from the environment (README, "Deploy"); flags win.
"""

import contextlib
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gunicorn.glogging import Logger

from todo_api import edge
from todo_api.env import env_number, env_str
from todo_api.logging import JsonFormatter

CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

bind = env_str("GUNICORN_BIND") or f"0.0.0.0:{env_number('PORT', 8000, minimum=1)}"

# gthread: a process per CPU for Python's CPU-bound work, threads to overlap database waits, and idle
# keep-alive connections parked in a selector instead of each holding a worker (README, "Deploy").
worker_class = env_str("GUNICORN_WORKER_CLASS") or "gthread"
workers = env_number("GUNICORN_WORKERS", max(2, CPUS), minimum=1)
# 2 threads: enough to overlap database waits; more only add GIL contention (docs/performance.md
# measured saturation with 4 threads and with 2).
threads = env_number("GUNICORN_THREADS", 2, minimum=1)
worker_connections = env_number("GUNICORN_WORKER_CONNECTIONS", 1000, minimum=1)

# Longer than the idle timeout of the usual load balancers (60 s), so they close first and never
# send a request down a connection gunicorn is closing.
keepalive = env_number("GUNICORN_KEEPALIVE", 75)
# A worker silent for this long is killed and replaced.
timeout = env_number("GUNICORN_TIMEOUT", 30, minimum=1)
# Requests here take milliseconds; 8 s drains them within Docker's default 10 s stop timeout.
graceful_timeout = env_number("GUNICORN_GRACEFUL_TIMEOUT", 8, minimum=1)

# Off by default; recycling workers bounds any slow memory growth when switched on.
max_requests = env_number("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = env_number("GUNICORN_MAX_REQUESTS_JITTER", max_requests // 10)

# No runtime control socket (gunicornc): nothing here uses it, and servers sharing a home would collide.
control_socket_disable = True

# The worker heartbeat file: on tmpfs it never blocks on a slow container disk.
if os.path.isdir("/dev/shm"):  # noqa: S108 (gunicorn's documented heartbeat dir, not a temp file)
    worker_tmp_dir = "/dev/shm"  # noqa: S108 (as above)

# Without REDIS_URL the per-user rate limit is counted in one SQLite file that every worker of this
# server opens (todo_api/throttling.py): named here, in the arbiter, so workers of another server on
# the same machine count apart. On tmpfs like the heartbeat; removed when the server stops.
_made_rate_file = None
if not os.environ.get("API_USER_RATE_FILE"):
    _rate_dir = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()  # noqa: S108 (as above)
    _made_rate_file = os.environ["API_USER_RATE_FILE"] = f"{_rate_dir}/todo-api-rate-{os.getpid()}.sqlite3"


def remove_rate_file():
    for suffix in ("", "-wal", "-shm") if _made_rate_file else ():
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{_made_rate_file}{suffix}")


# What a request may carry before Django sees it, and gunicorn's own refusals as JSON (todo_api/edge.py).
limit_request_line = edge.LIMIT_REQUEST_LINE
limit_request_field_size = edge.LIMIT_REQUEST_FIELD_SIZE
limit_request_fields = edge.LIMIT_REQUEST_FIELDS
edge.answer_errors_in_json()

loglevel = (env_str("LOG_LEVEL") or "info").lower()
errorlog = "-"
# The app already writes one JSON line per request (todo_api/logging.py); GUNICORN_ACCESS_LOG=- adds
# gunicorn's own, e.g. to see requests that never reached Django.
accesslog = env_str("GUNICORN_ACCESS_LOG") or None


class JsonLogger(Logger):
    """gunicorn's own log lines in the app's JSON format."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in [*self.error_log.handlers, *self.access_log.handlers]:
            handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        status = int(str(resp.status).split(None, 1)[0])
        response_headers = {name.lower(): value for name, value in resp.headers}
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        self.access_log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(request_time.total_seconds() * 1000, 1),
                "request_id": response_headers.get("x-request-id"),
                "bytes": getattr(resp, "sent", None),
                "remote_addr": environ.get("REMOTE_ADDR"),
            },
        )


logger_class = JsonLogger


# --- Graceful drain (todo_api/drain.py) ----------------------------------------------------------
# Seconds a stopping worker keeps serving while /readyz answers 503, so that a balancer checking it
# takes it out of rotation before its socket closes (HAProxy: about `inter` x `fall`). Kubernetes'
# preStop sleep does the same before SIGTERM, so 0 suits it. Part of graceful_timeout, not added to it.
drain_seconds = env_number("GUNICORN_DRAIN_SECONDS", 0, kind=float)
if drain_seconds >= graceful_timeout:
    raise SystemExit("GUNICORN_DRAIN_SECONDS must be less than GUNICORN_GRACEFUL_TIMEOUT")


def post_worker_init(worker):
    from todo_api.drain import drain_on_sigterm

    drain_on_sigterm(worker, drain_seconds)


# --- Metrics (todo_api/metrics.py) and traces (todo_api/tracing.py) -------------------------------
# With METRICS_TOKEN, every worker writes its figures to files in PROMETHEUS_MULTIPROC_DIR and
# GET /metrics sums them: a worker that restarts keeps what it counted. The directory is emptied at
# start (figures of an earlier server would be added in), or made in /tmp and removed at exit.
# prometheus_client picks its mode when first imported, so this runs before any worker imports it.
_made_metrics_dir = None
if env_str("METRICS_TOKEN") or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        _made_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="todo-api-metrics-"
        )
    _metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for _stale in _metrics_dir.glob("*.db"):
        _stale.unlink()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        # Its live gauges go; its counters and histograms stay in the sums.
        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_metrics_dir:
        import shutil

        shutil.rmtree(_made_metrics_dir, ignore_errors=True)
    remove_rate_file()


def post_fork(server, worker):
    # In each worker, before it loads the app: the Django middleware must be added before Django
    # builds its chain, and the exporter's thread must start in the process that uses it.
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from todo_api.tracing import start_tracing

        start_tracing()
