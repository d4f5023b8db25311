#!/usr/bin/env python3
"""Benchmark harness for the Todo API (issue 5).

    .venv/bin/python bench/run.py                 # full run: 1000 users 60 s, saturation 20 s, + baseline
    .venv/bin/python bench/run.py --quick         # a few seconds, for CI: fails only if the harness breaks
    .venv/bin/python bench/run.py --soak          # adds a 5-minute RSS-growth phase for the API

For each target (the API, then a bare Django JsonResponse baseline) it starts
gunicorn with the production configuration on a free 127.0.0.1 port, serves a
local Better Auth JWKS, provisions users and seeds tasks through the API, then
runs the measured phases with bench/loadgen.py in its own process(es):

  a     N users, each on its own keep-alive connection, think time ~2 s (uniform 1-3 s)
  list  a few connections doing only GET /api/v1/tasks?limit=20, no think time
  b     64 connections, no think time (saturation), same mix as a
  soak  (--soak) like a for 5 minutes, RSS of each worker sampled every 30 s

Server CPU per request is the CPU time (utime+stime from /proc/<pid>/stat) of
the gunicorn master (own + reaped children) and its live workers, summed over
the measured window, divided by the requests completed in it. PostgreSQL
backend CPU for the benchmark database is reported separately. Everything is
loopback-only and bounded in time; the database is dropped at the end.
"""

import argparse
import contextlib
import json
import math
import os
import platform
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from betterauth import FakeBetterAuth, random_id  # noqa: E402 (after the sys.path line that makes it importable)
from procstat import CpuSnapshot, MemorySampler, children, read_status  # noqa: E402 (after the sys.path line that makes it importable)

MIX = {"list": 60, "get": 15, "create": 15, "patch": 5, "delete": 5}
OPS = ("list", "get", "create", "patch", "delete")
LOOPBACK = "127.0.0.1"

TARGET_LIMITS = {
    "a_p95_ms": 50.0,
    "a_p99_ms": 100.0,
    "a_errors": 0,
    "mix_cpu_ms_per_req": 1.2,
    "list_cpu_ms_per_req": 1.5,
    "peak_rss_mib_per_worker": 120.0,
}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class HarnessError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# arguments


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few-second smoke run for CI (tiny sizes)")
    p.add_argument("--soak", action="store_true", help="add the soak phase (RSS growth) for the API")
    p.add_argument("--users", type=int, default=1000, help="users in scenario a (default 1000)")
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds of scenario a (default 60)")
    p.add_argument(
        "--think", default="1,3", help="think time: 'lo,hi' uniform seconds, or 'exp:MEAN' (default 1,3)"
    )
    p.add_argument("--sat-conns", type=int, default=64, help="connections in scenario b (default 64)")
    p.add_argument(
        "--sat-duration", type=float, default=20.0, help="measured seconds of scenario b (default 20)"
    )
    p.add_argument("--list-conns", type=int, default=2, help="connections in the list-only phase (default 2)")
    p.add_argument(
        "--list-duration", type=float, default=10.0, help="measured seconds of the list-only phase"
    )
    p.add_argument("--soak-duration", type=float, default=300.0)
    p.add_argument("--soak-interval", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds before each window")
    p.add_argument("--ramp-rate", type=float, default=200.0, help="new users (connections) per second")
    p.add_argument("--tasks-per-user", type=int, default=20)
    p.add_argument(
        "--seed",
        choices=["api", "db"],
        default="api",
        help="seed the tasks through the API (default) or with one INSERT into tasks_task "
        "(users are always provisioned through the API)",
    )
    p.add_argument("--setup-concurrency", type=int, default=32)
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    p.add_argument("--phases", default="a,list,b", help="comma list of a,list,b,soak (default a,list,b)")
    p.add_argument("--targets", default="api,baseline", help="comma list of api,baseline (default both)")
    p.add_argument("--workers", type=int, default=None, help="gunicorn workers (or env GUNICORN_WORKERS)")
    p.add_argument("--threads", type=int, default=None, help="gunicorn threads (or env GUNICORN_THREADS)")
    p.add_argument(
        "--worker-class", default=None, help="gunicorn worker class (or env GUNICORN_WORKER_CLASS)"
    )
    p.add_argument(
        "--keep-alive", type=int, default=None, help="gunicorn keep-alive seconds (or env GUNICORN_KEEPALIVE)"
    )
    p.add_argument(
        "--gunicorn-conf",
        default=None,
        help="gunicorn config file (default: gunicorn.conf.py in the repo root if it exists)",
    )
    p.add_argument("--api-dir", default=str(REPO), help="directory holding manage.py and the API package")
    p.add_argument(
        "--api-wsgi", default="todo_api.wsgi", help="WSGI module of the API (default todo_api.wsgi)"
    )
    p.add_argument("--path-prefix", default="/api/v1/tasks")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (loopback), without database name",
    )
    p.add_argument("--loadgen-procs", type=int, default=1, help="load generator processes (default 1)")
    p.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra env for the servers"
    )
    p.add_argument("--out", default=None, help="JSON results file (default bench/results/<time>.json)")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        help="before each phase wait up to this many seconds for other processes to leave the CPUs "
        "idle (default 30, 0 with --quick)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database")
    a = p.parse_args(argv)
    if a.quick:
        a.users, a.duration, a.think = min(a.users, 16), 1.5, "0.1,0.3"
        a.sat_conns, a.sat_duration = min(a.sat_conns, 8), 1.0
        a.list_duration, a.warmup, a.tasks_per_user = 1.0, 0.3, 3
        a.ramp_rate = max(a.ramp_rate, 400.0)
        a.soak_duration, a.soak_interval = 4.0, 1.0
        a.timeout = min(a.timeout, 10.0)
    if a.wait_quiet is None:
        a.wait_quiet = 0.0 if a.quick else 30.0
    if a.think.startswith("exp:"):
        mean = float(a.think[4:])
        a.think_spec = ["exp", mean, mean * 5]
    else:
        lo, hi = (float(x) for x in a.think.split(","))
        a.think_spec = ["uniform", lo, hi]
    a.phase_list = [x for x in a.phases.split(",") if x]
    if a.soak and "soak" not in a.phase_list:
        a.phase_list.append("soak")
    a.target_list = [x for x in a.targets.split(",") if x]
    for ph in a.phase_list:
        if ph not in ("a", "list", "b", "soak"):
            p.error(f"unknown phase {ph!r}")
    for t in a.target_list:
        if t not in ("api", "baseline"):
            p.error(f"unknown target {t!r}")
    return a


# --------------------------------------------------------------------------
# machine, database, servers


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    info = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": mem,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
    # Versions are decoration in the report: a bench venv without them still runs.
    with contextlib.suppress(ImportError):
        import django
        import gunicorn

        info["django"] = django.get_version()
        info["gunicorn"] = gunicorn.__version__
    # A tiny CPU-speed yardstick so figures from different machines can be compared:
    # best of 5 runs of sum(range(100000)), in ms (a recent laptop core does it in about 1 ms).
    best = None
    for _ in range(5):
        t = time.perf_counter()
        sum(range(100000))
        d = (time.perf_counter() - t) * 1000
        best = d if best is None else min(best, d)
    info["calibration_sum_range_1e5_ms"] = round(best, 3)
    with contextlib.suppress(OSError, subprocess.SubprocessError):  # no git: no commit in the report
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        info["git_head"] = head
    return info


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def check_loopback_url(url):
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise HarnessError(f"PostgreSQL must be on loopback, got {host!r}")


class Database:
    def __init__(self, server_url):
        check_loopback_url(server_url)
        self.server_url = server_url.rstrip("/")
        self.name = f"bench_{time.strftime('%Y%m%d%H%M%S')}_{secrets.token_hex(3)}"
        self.url = f"{self.server_url}/{self.name}"
        self.created = False

    def _admin(self, sql):
        import psycopg

        with psycopg.connect(f"{self.server_url}/postgres", autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(sql)
            return cur.fetchone() if sql.lstrip().upper().startswith("SELECT") else None

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
        except Exception:
            return None


class Server:
    """gunicorn, started in its own session so that it and its workers can be ended by its pid."""

    def __init__(self, name, chdir, wsgi, env, args, port, log_path):
        self.name = name
        self.chdir = chdir
        self.wsgi = wsgi
        self.env = env
        self.port = port
        self.log_path = log_path
        self.argv = [sys.executable, "-m", "gunicorn", *gunicorn_args(args, chdir, port), wsgi]
        self.proc = None
        self.config = {}

    def effective_config(self):
        argv = [*self.argv[:-1], "--print-config", self.wsgi]
        try:
            out = subprocess.run(
                argv, cwd=self.chdir, env=self.env, capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired:
            return {}
        cfg = {}
        for line in out.stdout.splitlines():
            key, sep, val = line.partition("=")
            key = key.strip()
            if sep and key in (
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
            ):
                cfg[key] = val.strip()
        self.config = cfg
        return cfg

    def start(self, ready_timeout=60.0):
        self.logf = open(self.log_path, "ab")  # noqa: SIM115 (open while the server runs, closed in stop())
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.chdir,
            env=self.env,
            stdout=self.logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(
                    f"{self.name}: gunicorn exited with {self.proc.returncode}\n{self.log_tail()}"
                )
            status = probe(self.port)
            if status:
                break
            time.sleep(0.1)
        else:
            raise HarnessError(
                f"{self.name}: gunicorn not answering after {ready_timeout:.0f} s\n{self.log_tail()}"
            )
        want = int(self.config.get("workers", "1") or 1)
        while time.monotonic() < deadline and len(children(self.proc.pid)) < want:
            time.sleep(0.1)
        time.sleep(0.3)
        return self

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # the session we created for it
            self.proc.wait(timeout=5)
        self.logf.close()


def gunicorn_args(a, chdir, port):
    conf = a.gunicorn_conf
    if conf is None and (REPO / "gunicorn.conf.py").exists():
        conf = str(REPO / "gunicorn.conf.py")
    args = ["--chdir", str(chdir), "--bind", f"{LOOPBACK}:{port}"]
    workers = a.workers or os.environ.get("GUNICORN_WORKERS")
    threads = a.threads or os.environ.get("GUNICORN_THREADS")
    klass = a.worker_class or os.environ.get("GUNICORN_WORKER_CLASS")
    keepalive = a.keep_alive or os.environ.get("GUNICORN_KEEPALIVE")
    if conf:
        args = ["-c", str(Path(conf).resolve()), *args]
    else:
        # no production config in the repo: a sensible default
        args = ["-c", "/dev/null", *args]
        workers = workers or 2
        threads = threads or 8
        klass = klass or "gthread"
        # gunicorn's default keep-alive (2 s) is shorter than the ~2 s think time:
        # half the users would reconnect for each request. 5 s keeps them connected.
        keepalive = keepalive or 5
    if workers:
        args += ["--workers", str(workers)]
    if threads:
        args += ["--threads", str(threads)]
    if klass:
        args += ["--worker-class", str(klass)]
    if keepalive:
        args += ["--keep-alive", str(keepalive)]
    return args


def probe(port):
    """Status code of GET / on the server, or None while it does not answer."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = s.recv(64)
            if data.startswith(b"HTTP/1."):
                return int(data[9:12])
    except (OSError, ValueError):
        return None
    return None


def server_env(a, db, auth):
    env = dict(os.environ)
    for k in ("DJANGO_SETTINGS_MODULE", "PYTHONSTARTUP"):
        env.pop(k, None)
    env.update(
        {
            "DATABASE_URL": db.url if db else "",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "BETTER_AUTH_URL": auth.url,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    for kv in a.env:
        k, _, v = kv.partition("=")
        env[k] = v
    return env


# --------------------------------------------------------------------------
# load generator processes


class LoadGens:
    def __init__(self, n, port, prefix, timeout):
        self.procs = []
        for _ in range(n):
            p = subprocess.Popen(
                [sys.executable, str(HERE / "loadgen.py")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
                cwd=str(HERE),
            )
            self.procs.append(p)
        self.broadcast({"host": LOOPBACK, "port": port, "prefix": prefix, "timeout": timeout}, timeout=30)

    def send(self, i, cmd):
        self.procs[i].stdin.write(f"{json.dumps(cmd)}\n")
        self.procs[i].stdin.flush()

    def read(self, i, timeout):
        p = self.procs[i]
        r, _, _ = select.select([p.stdout], [], [], max(0.0, timeout))
        if not r:
            raise HarnessError(f"load generator {i} did not answer in {timeout:.0f} s")
        line = p.stdout.readline()
        if not line:
            raise HarnessError(f"load generator {i} exited ({p.poll()})")
        msg = json.loads(line)
        if msg.get("ok") is False:
            raise HarnessError(f"load generator {i}: {msg.get('error')}")
        return msg.get("result", msg)

    def broadcast(self, cmd, timeout):
        for i in range(len(self.procs)):
            self.send(i, cmd)
        return self.collect(timeout)

    def collect(self, timeout):
        deadline = time.monotonic() + timeout
        return [self.read(i, deadline - time.monotonic()) for i in range(len(self.procs))]

    def close(self):
        for p in self.procs:
            try:
                p.stdin.write('{"cmd":"quit"}\n')
                p.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# --------------------------------------------------------------------------
# statistics


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    k = max(0, math.ceil(q * len(sorted_vals)) - 1)
    return sorted_vals[k]


def lat_summary(vals):
    vals = sorted(vals)
    if not vals:
        return {"n": 0}
    return {
        "n": len(vals),
        "p50": round(pct(vals, 0.50), 2),
        "p95": round(pct(vals, 0.95), 2),
        "p99": round(pct(vals, 0.99), 2),
        "max": round(vals[-1], 2),
        "mean": round(sum(vals) / len(vals), 2),
    }


def merge_phase(results, cpu, window_s, mem_now):
    lat_all = []
    per_op = {}
    status = {}
    conn_errors = {}
    lg_cpu = 0.0
    counters = {"connects": 0, "reconnects": 0, "stale_retries": 0, "abandoned_users": 0, "users": 0}
    for r in results:
        for op, vals in r["lat_ms"].items():
            per_op.setdefault(op, []).extend(vals)
            lat_all.extend(vals)
        for op, st in r["status"].items():
            d = status.setdefault(op, {})
            for code, n in st.items():
                d[code] = d.get(code, 0) + n
        for k, n in r["conn_errors"].items():
            conn_errors[k] = conn_errors.get(k, 0) + n
        lg_cpu += r["cpu_s"] or 0.0
        for k in counters:
            counters[k] += r.get(k, 0)
    n_err_conn = sum(conn_errors.values())
    requests = len(lat_all) + n_err_conn
    errors_by_status = {}
    for st in status.values():
        for code, n in st.items():
            if not code.startswith("2"):
                errors_by_status[code] = errors_by_status.get(code, 0) + n
    errors = sum(errors_by_status.values()) + n_err_conn
    out = {
        "requests": requests,
        "window_s": round(window_s, 3),
        "throughput_rps": round(requests / window_s, 1) if window_s else None,
        "latency_ms": lat_summary(lat_all),
        "latency_ms_by_op": {op: lat_summary(v) for op, v in per_op.items()},
        "status_by_op": status,
        "errors": errors,
        "errors_by_status": errors_by_status,
        "conn_errors": conn_errors,
        "server_cpu_s": round(cpu["server_cpu_s"], 3),
        "server_cpu_ms_per_req": round(1000 * cpu["server_cpu_s"] / requests, 3) if requests else None,
        "server_cpu_cores": round(cpu["server_cpu_s"] / cpu["seconds"], 3) if cpu["seconds"] else None,
        "db_cpu_ms_per_req": round(1000 * cpu["db_cpu_s"] / requests, 3) if requests else None,
        "loadgen_cpu_ms_per_req": round(1000 * lg_cpu / requests, 4) if requests else None,
        "loadgen_cpu_cores": round(lg_cpu / window_s, 3) if window_s else None,
        "machine_busy_cores": round(cpu["machine_busy_s"] / cpu["seconds"], 2) if cpu["seconds"] else None,
        "machine_steal_cores": round(cpu["machine_steal_s"] / cpu["seconds"], 2) if cpu["seconds"] else None,
        # everything else that ran on the machine meanwhile (not server, DB, harness, loadgen)
        "other_cpu_cores": round(cpu["other_cpu_s"] / cpu["seconds"], 2) if cpu["seconds"] else None,
        "worker_restarts": cpu["worker_restarts"],
        "per_worker_cpu_s": cpu["per_worker_cpu_s"],
    }
    out.update(counters)
    if mem_now:
        out["rss_now_mib"] = mem_now
    return out


# --------------------------------------------------------------------------
# running one target


def phase_plan(a, name):
    mix = dict(MIX)
    if name == "a":
        return {"users": a.users, "think": a.think_spec, "mix": mix, "duration": a.duration}
    if name == "soak":
        return {"users": a.users, "think": a.think_spec, "mix": mix, "duration": a.soak_duration}
    if name == "list":
        return {"users": a.list_conns, "think": None, "mix": {"list": 1}, "duration": a.list_duration}
    if name == "b":
        return {"users": a.sat_conns, "think": None, "mix": mix, "duration": a.sat_duration}
    raise ValueError(name)


def wait_quiet(limit, threshold=0.3):
    """Wait (at most `limit` s) until the machine's CPUs are nearly idle while we are idle."""
    from procstat import machine_cpu

    t_start = time.monotonic()
    busy = None
    while True:
        b0, _ = machine_cpu()
        t0 = time.monotonic()
        time.sleep(1.0)
        b1, _ = machine_cpu()
        busy = (b1 - b0) / (time.monotonic() - t0)
        if busy < threshold or time.monotonic() - t_start >= limit:
            return time.monotonic() - t_start, busy


def rss_mib_now(master_pid):
    out = {}
    for pid in children(master_pid):
        st = read_status(pid)
        if st:
            out[str(pid)] = round(st.get("VmRSS", 0) / 2**20, 1)
    return out


def seed_db(db, subs, per_user):
    """INSERT per_user tasks for each provisioned user; {user index: [task ids]}."""
    import psycopg

    index = {sub: i for i, sub in enumerate(subs)}
    out = {}
    with psycopg.connect(db.url, connect_timeout=10) as conn:
        rows = conn.execute(
            "INSERT INTO tasks_task (owner_id, title, description, completed, created_at, updated_at) "
            "SELECT u.id, 'seed task ' || g, 'seeded in the database by bench/run.py', false, "
            "now() - make_interval(secs => g), now() - make_interval(secs => g) "
            "FROM authbridge_user u CROSS JOIN generate_series(1, %s) g WHERE u.sub = ANY(%s) "
            "RETURNING id, (SELECT sub FROM authbridge_user WHERE id = owner_id)",
            (per_user, list(subs)),
        ).fetchall()
        conn.execute("ANALYZE tasks_task")
    for tid, sub in rows:
        out.setdefault(index[sub], []).append(tid)
    return out


def run_target(a, name, auth, tokens, db, run_dir, subs=()):
    port = free_port()
    subs = list(subs)
    if name == "api":
        chdir, wsgi = Path(a.api_dir).resolve(), a.api_wsgi
    else:
        chdir, wsgi = HERE / "baseline", "baseline_project.wsgi"
    env = server_env(a, db if name == "api" else None, auth)
    if name == "baseline":
        env["DJANGO_SETTINGS_MODULE"] = "baseline_project.settings"
        env["DATABASE_URL"] = db.url if db else ""
    result = {"target": name, "phases": {}}
    jwks0 = auth.jwks_hits
    if name == "api":
        t = time.monotonic()
        mig = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=chdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if mig.returncode != 0:
            raise HarnessError(f"migrate failed:\n{mig.stdout[-3000:]}{mig.stderr[-3000:]}")
        result["migrate_s"] = round(time.monotonic() - t, 2)
        log(f"api: migrated {db.name} in {result['migrate_s']:.1f} s")
    server = Server(name, chdir, wsgi, env, a, port, run_dir / (f"gunicorn-{name}.log"))
    result["gunicorn"] = server.effective_config()
    result["gunicorn_argv"] = " ".join(server.argv[2:])
    log(f"{name}: starting gunicorn {result['gunicorn_argv']}")
    server.start()
    mem = MemorySampler(server.proc.pid, interval=0.5)
    mem.start()
    gens = None
    try:
        result["probe_status"] = probe(port)
        gens = LoadGens(a.loadgen_procs, port, a.path_prefix, a.timeout)
        k = len(gens.procs)
        for i in range(k):
            gens.send(i, {"cmd": "users", "users": [[u, tok] for u, tok in enumerate(tokens) if u % k == i]})
        gens.collect(30)
        t = time.monotonic()
        per_user = a.tasks_per_user if (a.seed == "api" or name != "api") else 0
        setup = gens.broadcast(
            {
                "cmd": "setup",
                "tasks_per_user": per_user,
                "concurrency": max(1, a.setup_concurrency // k),
                "max_seconds": 900,
            },
            timeout=960,
        )
        s = {
            "seconds": round(time.monotonic() - t, 2),
            "requests": sum(x["all_requests"] for x in setup),
            "failures": sum(x["failures"] for x in setup),
            "failure_sample": [f for x in setup for f in x["failure_sample"]][:5],
            "tasks": sum(x["tasks"] for x in setup),
            "loadgen_cpu_s": round(sum(x["cpu_s"] for x in setup), 3),
        }
        if per_user != a.tasks_per_user:
            t2 = time.monotonic()
            by_user = seed_db(db, subs, a.tasks_per_user)
            for i in range(k):
                gens.send(
                    i, {"cmd": "tasks", "tasks": [[u, ids] for u, ids in by_user.items() if u % k == i]}
                )
            s["tasks"] = sum(x["tasks"] for x in gens.collect(60))
            s["db_seed_s"] = round(time.monotonic() - t2, 2)
        result["setup"] = s
        log(
            f"{name}: provisioned {len(tokens)} users, {s['tasks']} tasks, {s['requests']} requests "
            f"in {s['seconds']:.1f} s ({s['failures']} failures {s['failure_sample']})"
        )
        if s["failures"]:
            result["setup_error"] = f"setup had {s['failures']} failures: {s['failure_sample']}"
        for ph in a.phase_list:
            if ph == "soak" and name != "api":
                continue
            plan = phase_plan(a, ph)
            n = plan["users"]
            if a.wait_quiet > 0:
                waited, busy = wait_quiet(a.wait_quiet)
                if waited > 1:
                    log(
                        f"{name}: waited {waited:.0f} s for a quiet machine (others now use {busy:.2f} cores)"
                    )
            think_mean = 0.0
            if plan["think"]:
                think_mean = (
                    (plan["think"][1] + plan["think"][2]) / 2
                    if plan["think"][0] == "uniform"
                    else plan["think"][1]
                )
            ts = time.monotonic() + 0.3
            t0 = ts + n / a.ramp_rate + think_mean + a.warmup
            t1 = t0 + plan["duration"]
            cmd = {
                "cmd": "phase",
                "ts": ts,
                "t0": t0,
                "t1": t1,
                "users": n,
                "mix": plan["mix"],
                "think": plan["think"],
                "ramp_rate": a.ramp_rate,
                "close_after": True,
            }
            log(
                f"{name}: phase {ph}: {n} users, window {plan['duration']:.0f} s "
                f"starts in {t0 - time.monotonic():.1f} s"
            )
            for i in range(k):
                gens.send(i, cmd)
            time.sleep(max(0.0, t0 - time.monotonic()))
            own = [os.getpid()] + [g.pid for g in gens.procs]
            c0 = CpuSnapshot(server.proc.pid, db.name if (db and name == "api") else None, own)
            rss_series = []
            if ph == "soak":
                nxt = t0
                while nxt <= t1 + 0.01:
                    time.sleep(max(0.0, nxt - time.monotonic()))
                    rss_series.append(
                        {"t_s": round(time.monotonic() - t0, 1), "rss_mib": rss_mib_now(server.proc.pid)}
                    )
                    nxt += a.soak_interval
            time.sleep(max(0.0, t1 - time.monotonic()))
            c1 = CpuSnapshot(server.proc.pid, db.name if (db and name == "api") else None, own)
            mem.sample()
            res = gens.collect(timeout=max(0.0, t1 - time.monotonic()) + a.timeout + 30)
            merged = merge_phase(res, CpuSnapshot.delta(c0, c1), t1 - t0, rss_mib_now(server.proc.pid))
            merged["users"] = n
            merged["think"] = plan["think"]
            if rss_series:
                merged["rss_series"] = rss_series
                first, last = rss_series[0]["rss_mib"], rss_series[-1]["rss_mib"]
                merged["rss_growth_mib"] = {
                    pid: round(last[pid] - first[pid], 1) for pid in last if pid in first
                }
            result["phases"][ph] = merged
            lat = merged["latency_ms"]
            log(
                f"{name}: phase {ph}: {merged['requests']} req, {merged['throughput_rps'] or 0:.1f} req/s, "
                f"p50 {lat.get('p50')} p95 {lat.get('p95')} p99 {lat.get('p99')} ms, "
                f"{merged['errors']} errors, "
                f"server {merged['server_cpu_ms_per_req'] or 0:.3f} ms CPU/req, "
                f"loadgen {merged['loadgen_cpu_ms_per_req'] or 0:.4f} ms CPU/req"
            )
            time.sleep(0.5)
        result["jwks_fetches"] = auth.jwks_hits - jwks0
    finally:
        if gens is not None:
            gens.close()
        mem.stop()
        result["memory"] = mem.summary()
        server.stop()
        result["gunicorn_log_tail"] = server.log_tail(15)
    return result


# --------------------------------------------------------------------------
# report


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return (f"%.{nd!s}f") % v
    return str(v)


def ratio(x, y):
    if x is None or y in (None, 0):
        return None
    return round(x / y, 2)


def evaluate(report):
    api = report["targets"].get("api")
    if not api:
        return []
    checks = []
    ph = api["phases"]

    def add(name, value, limit, ok):
        checks.append(
            {"check": name, "value": value, "limit": limit, "pass": bool(ok) if value is not None else False}
        )

    if "a" in ph:
        p = ph["a"]
        add(
            "scenario a p95 latency (ms)",
            p["latency_ms"].get("p95"),
            TARGET_LIMITS["a_p95_ms"],
            p["latency_ms"].get("p95") is not None and p["latency_ms"]["p95"] <= TARGET_LIMITS["a_p95_ms"],
        )
        add(
            "scenario a p99 latency (ms)",
            p["latency_ms"].get("p99"),
            TARGET_LIMITS["a_p99_ms"],
            p["latency_ms"].get("p99") is not None and p["latency_ms"]["p99"] <= TARGET_LIMITS["a_p99_ms"],
        )
        add("scenario a errors", p["errors"], TARGET_LIMITS["a_errors"], p["errors"] == 0)
        add(
            "mix server CPU/request, scenario a (ms)",
            p["server_cpu_ms_per_req"],
            TARGET_LIMITS["mix_cpu_ms_per_req"],
            p["server_cpu_ms_per_req"] is not None
            and p["server_cpu_ms_per_req"] <= TARGET_LIMITS["mix_cpu_ms_per_req"],
        )
    if "b" in ph:
        p = ph["b"]
        add(
            "mix server CPU/request, scenario b (ms)",
            p["server_cpu_ms_per_req"],
            TARGET_LIMITS["mix_cpu_ms_per_req"],
            p["server_cpu_ms_per_req"] is not None
            and p["server_cpu_ms_per_req"] <= TARGET_LIMITS["mix_cpu_ms_per_req"],
        )
    if "list" in ph:
        p = ph["list"]
        add(
            "list of 20 server CPU/request (ms)",
            p["server_cpu_ms_per_req"],
            TARGET_LIMITS["list_cpu_ms_per_req"],
            p["server_cpu_ms_per_req"] is not None
            and p["server_cpu_ms_per_req"] <= TARGET_LIMITS["list_cpu_ms_per_req"],
        )
    peak = api.get("memory", {}).get("peak_rss_max_worker_mib")
    add(
        "peak RSS per worker (MiB)",
        peak,
        TARGET_LIMITS["peak_rss_mib_per_worker"],
        peak is not None and peak <= TARGET_LIMITS["peak_rss_mib_per_worker"],
    )
    return checks


def render(report):
    lines = []
    m = report["machine"]
    lines.append(
        "Machine: {} CPU(s), {}, {} GiB RAM, Python {}, Django {}, gunicorn {}, PostgreSQL {}, kernel {}, "
        "yardstick sum(range(1e5)) {} ms".format(
            m.get("nproc"),
            m.get("cpu_model"),
            m.get("mem_gib"),
            m.get("python"),
            m.get("django"),
            m.get("gunicorn"),
            m.get("postgres"),
            m.get("kernel"),
            m.get("calibration_sum_range_1e5_ms"),
        )
    )
    lines.append(f"Run: {report['started']}  mode={report['mode']}  git={m.get('git_head')}")
    for tname, t in report["targets"].items():
        g = t.get("gunicorn", {})
        lines.append(
            "{}: gunicorn {}  [workers={} threads={} class={} keepalive={}]  setup {}  jwks fetches {}".format(  # noqa: E501 (the row template reads best whole)
                tname,
                t.get("gunicorn_argv"),
                g.get("workers"),
                g.get("threads"),
                g.get("worker_class"),
                g.get("keepalive"),
                _setup_str(t.get("setup")),
                t.get("jwks_fetches"),
            )
        )
    lines.append("")
    hdr = (
        "target",
        "phase",
        "conns",
        "requests",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "errors",
        "srv CPU ms/req",
        "srv cores",
        "db CPU ms/req",
        "loadgen ms/req",
        "other cores",
        "peak RSS/wkr MiB",
    )
    rows = [hdr]
    for tname, t in report["targets"].items():
        peak = t.get("memory", {}).get("peak_rss_max_worker_mib")
        for ph, p in t["phases"].items():
            lat = p["latency_ms"]
            rows.append(
                (
                    tname,
                    ph,
                    p["users"],
                    p["requests"],
                    fmt(p["throughput_rps"]),
                    fmt(lat.get("p50"), 2),
                    fmt(lat.get("p95"), 2),
                    fmt(lat.get("p99"), 2),
                    fmt(lat.get("max"), 1),
                    p["errors"],
                    fmt(p["server_cpu_ms_per_req"], 3),
                    fmt(p["server_cpu_cores"], 2),
                    fmt(p["db_cpu_ms_per_req"], 3) if tname == "api" else "-",
                    fmt(p["loadgen_cpu_ms_per_req"], 4),
                    fmt(p.get("other_cpu_cores"), 2),
                    fmt(peak),
                )
            )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(hdr))]
    for k, r in enumerate(rows):
        lines.append(
            "  ".join(str(c).rjust(widths[i]) if i > 1 else str(c).ljust(widths[i]) for i, c in enumerate(r))
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    busy = [
        (t, ph, p["other_cpu_cores"])
        for t, x in report["targets"].items()
        for ph, p in x["phases"].items()
        if (p.get("other_cpu_cores") or 0) > 0.2
    ]
    if busy:
        lines.append(
            "WARNING: other processes used CPU during the windows (cores): {} -- the machine was not quiet, "
            "latencies and throughput are pessimistic".format(
                ", ".join("{}/{} {:.2f}".format(*b) for b in busy)
            )
        )
    # errors detail
    for tname, t in report["targets"].items():
        for ph, p in t["phases"].items():
            if p["errors"] or p["reconnects"] or p["stale_retries"]:
                lines.append(
                    f"{tname}/{ph}: errors by status {p['errors_by_status'] or '{}'}, "
                    f"connection errors {p['conn_errors'] or '{}'}, connects {p['connects']} "
                    f"(reconnects {p['reconnects']}, stale keep-alive retries {p['stale_retries']})"
                )
    # per-op latency, scenario a
    for tname, t in report["targets"].items():
        for ph in ("a", "b"):
            p = t["phases"].get(ph)
            if not p:
                continue
            parts = []
            for op in OPS:
                s = p["latency_ms_by_op"].get(op)
                if s and s["n"]:
                    parts.append(f"{op} n={s['n']} p50 {s['p50']:.1f} p95 {s['p95']:.1f} p99 {s['p99']:.1f}")
            lines.append(f"{tname}/{ph} by op (ms): {'; '.join(parts)}")
    if report.get("ratios"):
        lines.append("")
        lines.append("API / baseline:")
        for ph, r in report["ratios"].items():
            lines.append(
                f"  {ph:5} CPU/req {fmt(r['cpu_per_req'], 2)}x   p95 {fmt(r['p95'], 2)}x   "
                f"(API {fmt(r['api_cpu_ms'], 3)} vs baseline {fmt(r['baseline_cpu_ms'], 3)} ms CPU/req)"
            )
    for tname, t in report["targets"].items():
        soak = t["phases"].get("soak")
        if soak and soak.get("rss_series"):
            lines.append("")
            lines.append(f"Soak ({tname}): RSS per worker (MiB) every {report['args']['soak_interval']}s:")
            for s in soak["rss_series"]:
                rss = "  ".join(f"{pid}:{mib:.1f}" for pid, mib in sorted(s["rss_mib"].items()))
                lines.append(f"  t={s['t_s']:6.1f}s  {rss}")
            lines.append(f"  growth over the soak: {soak.get('rss_growth_mib')} MiB")
    if report.get("checks"):
        lines.append("")
        lines.append("Targets (API):")
        for c in report["checks"]:
            verdict = "PASS" if c["pass"] else "FAIL"
            lines.append(f"  [{verdict}] {c['check']:42} {fmt(c['value'], 3)} (limit {c['limit']})")
    if report.get("harness_errors"):
        lines.append("")
        lines.append("HARNESS PROBLEMS:")
        for e in report["harness_errors"]:
            lines.append(f"  - {e}")
    return "\n".join(lines)


def _setup_str(s):
    if not s:
        return "-"
    return f"{s['requests']} req in {s['seconds']:.1f} s"


# --------------------------------------------------------------------------


def main(argv=None):
    a = parse_args(argv)
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run_dir = HERE / "results"
    run_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path = Path(a.out) if a.out else run_dir / (f"{stamp}{'-quick' if a.quick else ''}.json")
    logs = run_dir / (f"logs-{stamp}")
    logs.mkdir(exist_ok=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)

    report = {
        "started": started,
        "mode": "quick" if a.quick else ("soak" if a.soak else "full"),
        "args": {k: v for k, v in vars(a).items() if k not in ("env",)},
        "machine": machine_info(),
        "targets": {},
        "harness_errors": [],
    }
    auth = FakeBetterAuth().start()
    db = None
    n_users = max(a.users, a.sat_conns, a.list_conns)
    total_est = (
        3600
        + n_users / a.ramp_rate
        + a.duration
        + a.sat_duration
        + a.list_duration
        + (a.soak_duration if a.soak else 0)
    )
    tokens = []
    subs = []
    for i in range(n_users):
        uid = random_id(32)
        subs.append(uid)
        tokens.append(auth.mint(uid, f"bench{i}@example.test", f"Bench User {i}", ttl_seconds=int(total_est)))
    exit_code = 0
    try:
        db = Database(a.pg_url)
        report["machine"]["postgres"] = db.version()
        if "api" in a.target_list:
            if not (Path(a.api_dir) / "manage.py").exists():
                raise HarnessError(f"no manage.py in {a.api_dir}: the API is not there")
            db.create()
            report["database"] = db.name
        for tname in a.target_list:
            try:
                report["targets"][tname] = run_target(a, tname, auth, tokens, db, logs, subs)
            except HarnessError as exc:
                report["harness_errors"].append(f"{tname}: {exc}")
                log(f"{tname} failed: {exc}")
    except KeyboardInterrupt:
        report["harness_errors"].append("interrupted")
        exit_code = 130
    except HarnessError as exc:
        report["harness_errors"].append(str(exc))
    finally:
        auth.stop()
        if db is not None and not a.keep_db:
            try:
                db.drop()
            except Exception as exc:  # still report
                report["harness_errors"].append(f"drop database: {exc}")

    api, base = report["targets"].get("api"), report["targets"].get("baseline")
    report["ratios"] = {}
    if api and base:
        for ph in api["phases"]:
            if ph in base["phases"]:
                x, y = api["phases"][ph], base["phases"][ph]
                report["ratios"][ph] = {
                    "cpu_per_req": ratio(x["server_cpu_ms_per_req"], y["server_cpu_ms_per_req"]),
                    "p95": ratio(x["latency_ms"].get("p95"), y["latency_ms"].get("p95")),
                    "api_cpu_ms": x["server_cpu_ms_per_req"],
                    "baseline_cpu_ms": y["server_cpu_ms_per_req"],
                }
    report["checks"] = evaluate(report)
    # harness sanity: every target ran, every phase completed requests, setup worked
    for tname in a.target_list:
        t = report["targets"].get(tname)
        if not t:
            continue
        if t.get("setup_error"):
            report["harness_errors"].append(f"{tname}: {t['setup_error']}")
        for ph, p in t["phases"].items():
            if p["requests"] == 0:
                report["harness_errors"].append(f"{tname}/{ph}: no request completed")
            if a.quick and p["errors"]:
                report["harness_errors"].append(
                    f"{tname}/{ph}: {p['errors']} errors {p['errors_by_status']} {p['conn_errors']}"
                )
            if p["abandoned_users"]:
                report["harness_errors"].append(
                    f"{tname}/{ph}: {p['abandoned_users']} users still busy at the hard stop"
                )
        if a.quick and t.get("phases") and any(p["errors"] for p in t["phases"].values()):
            report["harness_errors"].append(f"{tname} gunicorn log tail:\n{t.get('gunicorn_log_tail', '')}")
    report["finished"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = render(report)
    print(text, flush=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(report, f, indent=1, default=str)
    shutil.copyfile(out_path, run_dir / "latest.json")
    print(f"\nJSON results: {out_path} (gunicorn logs in {logs})")
    if exit_code:
        return exit_code
    if report["harness_errors"] or any(not report["targets"].get(t) for t in a.target_list):
        return 2
    if a.strict and any(not c["pass"] for c in report["checks"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
