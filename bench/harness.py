"""The benchmark's moving parts: the machine, a throw-away database, gunicorn, the load generators."""

import contextlib
import hashlib
import json
import os
import platform
import secrets
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from procstat import children, machine_cpu, read_status

from tests.support.http import LOOPBACK, free_port
from tests.support.servers import ServerProcess, gunicorn_argv

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# The FastAPI + SQLModel reference (--targets ...,fastapi) and the venv of its own it runs in.
FASTAPI_DIR = HERE / "fastapi_reference"
FASTAPI_VENV = HERE / ".venv-fastapi"
# The gunicorn settings that decide throughput, read back from `gunicorn --print-config`.
REPORTED_GUNICORN_SETTINGS = (
    "workers",
    "threads",
    "worker_class",
    "keepalive",
    "worker_connections",
    "backlog",
    "max_requests",
    "max_requests_jitter",
    "preload_app",
    "timeout",
    "accesslog",
    "config",
)


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class HarnessError(RuntimeError):
    """The benchmark itself failed (not the API): it reports the run as broken."""


def machine_info():
    info = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_gib": _memory_gib(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "calibration_sum_range_1e5_ms": _yardstick_ms(),
        "git_head": _git_head(),
    }
    # Versions are decoration in the report: a bench venv without them still runs.
    with contextlib.suppress(ImportError):
        import django
        import gunicorn

        info["django"] = django.get_version()
        info["gunicorn"] = gunicorn.__version__
    return info


def _cpu_model():
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def _memory_gib():
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        return round(int(meminfo.readline().split()[1]) / 2**20, 1)
    return None


def _yardstick_ms():
    """Best of 5 runs of sum(range(100000)), in ms, so figures from different machines compare
    (a recent laptop core does it in about 1 ms)."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        sum(range(100000))
        best = min(best, (time.perf_counter() - started) * 1000)
    return round(best, 3)


def _git_head():
    with contextlib.suppress(OSError, subprocess.SubprocessError):  # no git: no commit in the report
        return subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    return None


class Database:
    """A database of its own on a loopback PostgreSQL server, created and dropped by the run."""

    def __init__(self, server_url):
        host = urlsplit(server_url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise HarnessError(f"PostgreSQL must be on loopback, got {host!r}")
        self.server_url = server_url.rstrip("/")
        self.name = f"bench_{time.strftime('%Y%m%d%H%M%S')}_{secrets.token_hex(3)}"
        self.url = f"{self.server_url}/{self.name}"
        self.created = False

    def _admin(self, statement):
        import psycopg

        with psycopg.connect(f"{self.server_url}/postgres", autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchone() if statement.startswith("SELECT") else None

    def create(self):
        self._admin(f'CREATE DATABASE "{self.name}"')
        self.created = True

    def drop(self):
        if self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False

    def version(self):
        try:
            return self._admin("SELECT current_setting('server_version')")[0]
        except Exception:  # only decoration in the report
            return None

    def seed_tasks(self, subs, per_user, users_table="authbridge_user", tasks_table="tasks_task"):
        """INSERTs `per_user` tasks for each provisioned user: {user index: [task ids]}.

        The tables are the API's unless named: the FastAPI reference's have the same columns."""
        import psycopg
        from psycopg import sql

        names = {"users": sql.Identifier(users_table), "tasks": sql.Identifier(tasks_table)}
        index = {sub: i for i, sub in enumerate(subs)}
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            rows = conn.execute(
                sql.SQL(
                    "INSERT INTO {tasks} (owner_id, title, description, completed, created_at, updated_at) "
                    "SELECT u.id, 'seed task ' || g, 'seeded in the database by bench/run.py', false, "
                    "now() - make_interval(secs => g), now() - make_interval(secs => g) "
                    "FROM {users} u CROSS JOIN generate_series(1, %s) g WHERE u.sub = ANY(%s) "
                    "RETURNING id, (SELECT sub FROM {users} WHERE id = owner_id)"
                ).format(**names),
                (per_user, list(subs)),
            ).fetchall()
            conn.execute(sql.SQL("ANALYZE {tasks}").format(**names))
        tasks_by_user = {}
        for task_id, sub in rows:
            tasks_by_user.setdefault(index[sub], []).append(task_id)
        return tasks_by_user


def gunicorn_options(options, chdir, port):
    """The API's gunicorn.conf.py as deployed, with the sizes the run asks for (flags, then environment).

    The one in --api-dir: it puts its own directory first on sys.path, so another checkout's config
    would serve that checkout's code instead of the API under test."""
    config = Path(options.gunicorn_conf or Path(options.api_dir) / "gunicorn.conf.py")
    sizes = {
        "--workers": options.workers or os.environ.get("GUNICORN_WORKERS"),
        "--threads": options.threads or os.environ.get("GUNICORN_THREADS"),
        "--worker-class": options.worker_class or os.environ.get("GUNICORN_WORKER_CLASS"),
        "--keep-alive": options.keep_alive or os.environ.get("GUNICORN_KEEPALIVE"),
    }
    flags = ["--chdir", str(chdir), "--bind", f"{LOOPBACK}:{port}"]
    flags += [part for flag, value in sizes.items() if value for part in (flag, str(value))]
    return config.resolve(), flags


def fastapi_flags(options, chdir, port, env):
    """The FastAPI reference's gunicorn flags: uvicorn workers, as many as the API's (--workers, or
    gunicorn.conf.py's default max(2, CPUs)), the same keep-alive (75 s); none of our gunicorn.conf.py,
    which imports Django (--threads and --worker-class are the Django targets'). Sizes come from the
    servers' environment (`env`, with --env on top), where gunicorn.conf.py reads the API's."""
    workers = options.workers or env.get("GUNICORN_WORKERS") or max(2, len(os.sched_getaffinity(0)))
    keep_alive = options.keep_alive or env.get("GUNICORN_KEEPALIVE") or 75
    return [
        *("-k", "uvicorn_worker.UvicornWorker", "--workers", str(workers), "--keep-alive", str(keep_alive)),
        *("--bind", f"{LOOPBACK}:{port}", "--chdir", str(chdir)),
    ]


def fastapi_python():
    """bench/.venv-fastapi's python, the venv made (again only when its lock changed) from
    fastapi_reference/requirements.txt: every package pinned, every file checked by its hash."""
    python = FASTAPI_VENV / "bin" / "python"
    lock = FASTAPI_DIR / "requirements.txt"
    stamp = FASTAPI_VENV / ".requirements-sha256"
    wanted = hashlib.sha256(lock.read_bytes()).hexdigest()
    with contextlib.suppress(OSError):
        if python.exists() and stamp.read_text().strip() == wanted:
            return python
    log(f"fastapi: installing {lock.relative_to(REPO)} into {FASTAPI_VENV.relative_to(REPO)}")
    # The API's interpreter makes the venv: both targets run the same Python.
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for argv in (
        [sys.executable, "-m", "venv", "--clear", str(FASTAPI_VENV)],  # nothing left of an older lock
        [*pip, "--require-hashes", "--no-deps", "-r", str(lock)],
    ):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise HarnessError(f"fastapi venv: {' '.join(argv)}: {error}") from error
        if done.returncode != 0:
            output = f"{done.stdout[-2000:]}{done.stderr[-3000:]}"
            raise HarnessError(f"fastapi venv: {' '.join(argv)} exited {done.returncode}:\n{output}")
    stamp.write_text(f"{wanted}\n")
    return python


class GunicornServer:
    """gunicorn in its own session, so that it and its workers can be ended by its pid.

    With `python` (the FastAPI reference's venv), that interpreter's gunicorn serves the ASGI `app` with
    fastapi_flags() instead of our gunicorn.conf.py."""

    def __init__(self, name, chdir, app, env, options, log_dir, python=None):
        self.name = name
        self.chdir = chdir
        self.env = env
        self.port = free_port()
        self.log_dir = log_dir
        if python is None:
            config, flags = gunicorn_options(options, chdir, self.port)
            self.argv = gunicorn_argv(*flags, config=config, wsgi=app)
        else:
            flags = fastapi_flags(options, chdir, self.port, env)
            self.argv = [str(python), *gunicorn_argv(*flags, config=None, wsgi=app)[1:]]
        self.config = self._effective_config()
        self.process = None

    @property
    def command_line(self):
        return " ".join(self.argv[2:])

    def _effective_config(self):
        argv = [*self.argv[:-1], "--print-config", self.argv[-1]]
        try:
            out = subprocess.run(
                argv, cwd=self.chdir, env=self.env, capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired:
            return {}
        pairs = (line.partition("=") for line in out.stdout.splitlines())
        return {
            key.strip(): value.strip()
            for key, sep, value in pairs
            if sep and key.strip() in REPORTED_GUNICORN_SETTINGS
        }

    def start(self, ready_timeout=60.0):
        self.process = ServerProcess(
            f"gunicorn-{self.name}", self.argv, cwd=self.chdir, env=self.env, log_dir=self.log_dir
        )
        try:
            self.process.wait_until(lambda: first_status(self.port), "answer on its port", ready_timeout)
            workers = int(self.config.get("workers") or 1)
            self.process.wait_until(
                lambda: len(children(self.process.pid)) >= workers, "start its workers", ready_timeout
            )
        except RuntimeError as error:
            raise HarnessError(f"{self.name}: {error}") from error
        time.sleep(0.3)  # the last worker imports the app after it is forked
        return self

    @property
    def pid(self):
        return self.process.pid

    def worker_rss_mib(self):
        """{worker pid: resident memory in MiB} now."""
        rss = {}
        for pid in children(self.pid):
            status = read_status(pid)
            if status:
                rss[str(pid)] = round(status.get("VmRSS", 0) / 2**20, 1)
        return rss

    def log_tail(self, lines=40):
        return self.process.log_tail(lines) if self.process else ""

    def stop(self):
        if self.process is not None:
            self.process.stop()


def first_status(port):
    """The status code of GET / on the server, or None while it does not answer."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=2) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            head = conn.recv(64)
    except OSError:
        return None
    return int(head[9:12]) if head.startswith(b"HTTP/1.") and head[9:12].isdigit() else None


def server_env(options, database_url, auth):
    """The servers' environment: the caller's, with ours set for the run (and --env on top)."""
    env = dict(os.environ)
    for name in ("DJANGO_SETTINGS_MODULE", "PYTHONSTARTUP"):
        env.pop(name, None)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        BETTER_AUTH_URL=auth.url,
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(assignment.partition("=")[::2] for assignment in options.env)
    return env


class LoadGenerators:
    """bench/loadgen.py processes, driven by JSON lines on their stdin and stdout."""

    def __init__(self, count, port, prefix, timeout):
        self.processes = [
            subprocess.Popen(
                [sys.executable, str(HERE / "loadgen.py")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
                cwd=str(HERE),
            )
            for _ in range(count)
        ]
        self.broadcast({"host": LOOPBACK, "port": port, "prefix": prefix, "timeout": timeout}, timeout=30)

    def __len__(self):
        return len(self.processes)

    @property
    def pids(self):
        return [process.pid for process in self.processes]

    def send(self, index, command):
        self.processes[index].stdin.write(f"{json.dumps(command)}\n")
        self.processes[index].stdin.flush()

    def send_shares(self, kind, key, items):
        """Sends each generator its share of `items` ((user index, value) pairs): user % count."""
        for index in range(len(self)):
            share = [[user, value] for user, value in items if user % len(self) == index]
            self.send(index, {"cmd": kind, key: share})

    def read(self, index, timeout):
        process = self.processes[index]
        readable, _, _ = select.select([process.stdout], [], [], max(0.0, timeout))
        if not readable:
            raise HarnessError(f"load generator {index} did not answer in {timeout:.0f} s")
        line = process.stdout.readline()
        if not line:
            raise HarnessError(f"load generator {index} exited ({process.poll()})")
        message = json.loads(line)
        if message.get("ok") is False:
            raise HarnessError(f"load generator {index}: {message.get('error')}")
        return message.get("result", message)

    def broadcast(self, command, timeout):
        for index in range(len(self)):
            self.send(index, command)
        return self.collect(timeout)

    def collect(self, timeout):
        deadline = time.monotonic() + timeout
        return [self.read(index, deadline - time.monotonic()) for index in range(len(self))]

    def close(self):
        for process in self.processes:
            with contextlib.suppress(OSError):
                process.stdin.write('{"cmd":"quit"}\n')
                process.stdin.flush()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_quiet_machine(limit, threshold=0.3):
    """Waits (at most `limit` s) until the CPUs are nearly idle while we are: (seconds waited, busy cores)."""
    started = time.monotonic()
    while True:
        busy_before, _ = machine_cpu()
        sampled_at = time.monotonic()
        time.sleep(1.0)
        busy_after, _ = machine_cpu()
        busy = (busy_after - busy_before) / (time.monotonic() - sampled_at)
        if busy < threshold or time.monotonic() - started >= limit:
            return time.monotonic() - started, busy
