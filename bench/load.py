"""The load: provisioning users and tasks through the API, then the measured phases, summarized."""

import math
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import (
    FASTAPI_DIR,
    HERE,
    GunicornServer,
    HarnessError,
    LoadGenerators,
    fastapi_python,
    log,
    server_env,
    wait_for_quiet_machine,
)
from loadgen import POLL_OPS
from procstat import CpuSnapshot, MemorySampler

# The request mix of scenarios a, b and soak, in percent (issue 15's; --mix sets another).
MIX = {"list": 60, "get": 15, "create": 15, "patch": 5, "delete": 5}
PHASES = ("a", "list", "b", "soak")
COUNTERS = ("connects", "reconnects", "stale_retries", "abandoned_users", "users")
# Operations that succeed with another status than a 2xx, from the API: the poll that sends its ETag
# back. (The bare baseline answers it 200, like everything.)
API_STATUS = {"changes304": "304"}
# The targets with tables in the benchmark database: (users table, tasks table), for --seed db.
TABLES = {"api": ("authbridge_user", "tasks_task"), "fastapi": ("fastapi_user", "fastapi_task")}


def phase_plan(options, phase):
    """Users, think time, mix and measured seconds of one phase."""
    if phase in ("a", "soak"):
        duration = options.duration if phase == "a" else options.soak_duration
        return {
            "users": options.users,
            "think": options.think_spec,
            "mix": dict(options.mix),
            "duration": duration,
        }
    if phase == "list":
        return {
            "users": options.list_conns,
            "think": None,
            "mix": {"list": 1},
            "duration": options.list_duration,
        }
    if phase == "b":
        return {
            "users": options.sat_conns,
            "think": None,
            "mix": dict(options.mix),
            "duration": options.sat_duration,
        }
    raise ValueError(phase)


# -------------------------------------------------------------------- statistics


def percentile(sorted_values, fraction):
    """Nearest-rank percentile."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def latency_summary(values):
    values = sorted(values)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.50), 2),
        "p95": round(percentile(values, 0.95), 2),
        "p99": round(percentile(values, 0.99), 2),
        "max": round(values[-1], 2),
        "mean": round(sum(values) / len(values), 2),
    }


def _add_counts(total, counts):
    for key, count in counts.items():
        total[key] = total.get(key, 0) + count


def _per_second(amount, seconds, digits):
    return round(amount / seconds, digits) if seconds else None


def summarize_phase(results, cpu, window_s, rss_now, expected_status=None):
    """One phase's figures from every load generator's results and the CPU used in the window. An
    answer is an error unless it is a 2xx, or for an operation in `expected_status`, that status."""
    expected_status = expected_status or {}
    latencies, latencies_by_op, status_by_op, conn_errors = [], {}, {}, {}
    counters = dict.fromkeys(COUNTERS, 0)
    loadgen_cpu_s = 0.0
    for result in results:
        for op, values in result["lat_ms"].items():
            latencies_by_op.setdefault(op, []).extend(values)
            latencies.extend(values)
        for op, counts in result["status"].items():
            _add_counts(status_by_op.setdefault(op, {}), counts)
        _add_counts(conn_errors, result["conn_errors"])
        loadgen_cpu_s += result["cpu_s"] or 0.0
        _add_counts(counters, {key: result.get(key, 0) for key in COUNTERS})
    errors_by_status = {}
    for op, counts in status_by_op.items():
        expected = expected_status.get(op)
        _add_counts(
            errors_by_status,
            {
                code: n
                for code, n in counts.items()
                if (code != expected if expected else not code.startswith("2"))
            },
        )
    requests = len(latencies) + sum(conn_errors.values())
    summary = {
        "requests": requests,
        "window_s": round(window_s, 3),
        "throughput_rps": _per_second(requests, window_s, 1),
        "latency_ms": latency_summary(latencies),
        "latency_ms_by_op": {op: latency_summary(values) for op, values in latencies_by_op.items()},
        "status_by_op": status_by_op,
        "errors": sum(errors_by_status.values()) + sum(conn_errors.values()),
        "errors_by_status": errors_by_status,
        "conn_errors": conn_errors,
        "server_cpu_s": round(cpu["server_cpu_s"], 3),
        "server_cpu_ms_per_req": _per_second(1000 * cpu["server_cpu_s"], requests, 3),
        "server_cpu_cores": _per_second(cpu["server_cpu_s"], cpu["seconds"], 3),
        # From the scheduler's nanoseconds rather than clock ticks: what --max-cpu-ratio compares.
        "server_exact_cpu_ms_per_req": (
            None
            if cpu["server_exact_cpu_s"] is None
            else _per_second(1000 * cpu["server_exact_cpu_s"], requests, 4)
        ),
        "db_cpu_ms_per_req": _per_second(1000 * cpu["db_cpu_s"], requests, 3),
        "loadgen_cpu_ms_per_req": _per_second(1000 * loadgen_cpu_s, requests, 4),
        "loadgen_cpu_cores": _per_second(loadgen_cpu_s, window_s, 3),
        "machine_busy_cores": _per_second(cpu["machine_busy_s"], cpu["seconds"], 2),
        "machine_steal_cores": _per_second(cpu["machine_steal_s"], cpu["seconds"], 2),
        # Everything else that ran on the machine meanwhile (not server, database, harness, loadgen).
        "other_cpu_cores": _per_second(cpu["other_cpu_s"], cpu["seconds"], 2),
        "worker_restarts": cpu["worker_restarts"],
        "per_worker_cpu_s": cpu["per_worker_cpu_s"],
        **counters,
    }
    if rss_now:
        summary["rss_now_mib"] = rss_now
    return summary


# ------------------------------------------------------------------ one target


class TargetRun:
    """One target (the API, the bare Django baseline or the FastAPI reference) under gunicorn, set up and
    measured."""

    def __init__(self, options, name, auth, tokens, database, log_dir, subs):
        self.options = options
        self.name = name
        self.auth = auth
        self.tokens = tokens
        self.subs = list(subs)
        self.is_api = name == "api"
        # The API and the FastAPI reference use the database; the baseline gets its URL too, to start the
        # same way.
        self.tables = TABLES.get(name)
        self.database = database
        self.log_dir = log_dir
        self.result = {"target": name, "phases": {}}

    def run(self):
        env = self._environment()
        python = None
        if self.is_api:
            self._migrate(env)
        elif self.name == "fastapi":
            python = fastapi_python()
            self._create_fastapi_tables(python, env)
        chdir, app = self._application()
        server = GunicornServer(self.name, chdir, app, env, self.options, self.log_dir, python=python)
        self.result["gunicorn"] = server.config
        self.result["gunicorn_argv"] = server.command_line
        log(f"{self.name}: starting gunicorn {server.command_line}")
        server.start()
        memory = MemorySampler(server.pid, interval=0.5)
        memory.start()
        generators = None
        jwks_fetches_before = self.auth.jwks_hits
        try:
            generators = LoadGenerators(
                self.options.loadgen_procs, server.port, self.options.path_prefix, self.options.timeout
            )
            self._set_up(generators)
            if self.options.mix.keys() & set(POLL_OPS):
                self._sync_cursors(generators)
            for phase in self.options.phase_list:
                if phase != "soak" or self.is_api:
                    self.result["phases"][phase] = self._measure(phase, server, generators, memory)
                    time.sleep(0.5)
            self.result["jwks_fetches"] = self.auth.jwks_hits - jwks_fetches_before
        finally:
            if generators is not None:
                generators.close()
            memory.stop()
            self.result["memory"] = memory.summary()
            server.stop()
            self.result["gunicorn_log_tail"] = server.log_tail(15)
        return self.result

    def _application(self):
        if self.is_api:
            return Path(self.options.api_dir).resolve(), self.options.api_wsgi
        if self.name == "fastapi":
            return FASTAPI_DIR, "app:app"
        return HERE / "baseline", "baseline_project.wsgi"

    def _environment(self):
        database_url = self.database.url if self.database else ""
        env = server_env(self.options, database_url, self.auth)
        if self.name == "baseline":
            env["DJANGO_SETTINGS_MODULE"] = "baseline_project.settings"
        return env

    def _migrate(self, env):
        started = time.monotonic()
        migration = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=Path(self.options.api_dir).resolve(),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if migration.returncode != 0:
            raise HarnessError(f"migrate failed:\n{migration.stdout[-3000:]}{migration.stderr[-3000:]}")
        self.result["migrate_s"] = round(time.monotonic() - started, 2)
        log(f"api: migrated {self.database.name} in {self.result['migrate_s']:.1f} s")

    def _create_fastapi_tables(self, python, env):
        """The reference's tables, created once here rather than by each worker as it starts (they race)."""
        try:
            created = subprocess.run(
                [str(python), "app.py", "create-tables"],
                cwd=FASTAPI_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except subprocess.TimeoutExpired as error:
            raise HarnessError(f"fastapi create-tables: {error}") from error
        if created.returncode != 0:
            output = f"{created.stdout[-3000:]}{created.stderr[-3000:]}"
            raise HarnessError(f"fastapi create-tables failed:\n{output}")

    def _set_up(self, generators):
        """Users provisioned through the API; their tasks through the API too, or seeded in the database."""
        generators.send_shares("users", "users", enumerate(self.tokens))
        generators.collect(30)
        started = time.monotonic()
        seed_in_database = self.tables is not None and self.options.seed == "db"
        setup = generators.broadcast(
            {
                "cmd": "setup",
                "tasks_per_user": 0 if seed_in_database else self.options.tasks_per_user,
                "concurrency": max(1, self.options.setup_concurrency // len(generators)),
                "max_seconds": 900,
            },
            timeout=960,
        )
        summary = {
            "seconds": round(time.monotonic() - started, 2),
            "requests": sum(part["all_requests"] for part in setup),
            "failures": sum(part["failures"] for part in setup),
            "failure_sample": [failure for part in setup for failure in part["failure_sample"]][:5],
            "tasks": sum(part["tasks"] for part in setup),
            "loadgen_cpu_s": round(sum(part["cpu_s"] for part in setup), 3),
        }
        if seed_in_database:
            seeded_at = time.monotonic()
            tasks_by_user = self.database.seed_tasks(self.subs, self.options.tasks_per_user, *self.tables)
            generators.send_shares("tasks", "tasks", tasks_by_user.items())
            summary["tasks"] = sum(part["tasks"] for part in generators.collect(60))
            summary["db_seed_s"] = round(time.monotonic() - seeded_at, 2)
        self.result["setup"] = summary
        log(
            f"{self.name}: provisioned {len(self.tokens)} users, {summary['tasks']} tasks, "
            f"{summary['requests']} requests in {summary['seconds']:.1f} s "
            f"({summary['failures']} failures {summary['failure_sample']})"
        )
        if summary["failures"]:
            self.result["setup_error"] = (
                f"setup had {summary['failures']} failures: {summary['failure_sample']}"
            )

    def _sync_cursors(self, generators):
        """Each user's cursor of the change feed, after its tasks exist, for the polls of the mix."""
        started = time.monotonic()
        parts = generators.broadcast(
            {
                "cmd": "cursors",
                "expect_cursor": self.is_api,
                "concurrency": max(1, self.options.setup_concurrency // len(generators)),
                "max_seconds": 300,
            },
            timeout=360,
        )
        summary = {
            "seconds": round(time.monotonic() - started, 2),
            "requests": sum(part["requests"] for part in parts),
            "failures": sum(part["failures"] for part in parts),
            "failure_sample": [failure for part in parts for failure in part["failure_sample"]][:5],
        }
        self.result["cursors"] = summary
        log(
            f"{self.name}: synced {len(self.tokens)} users' change feeds, {summary['requests']} requests "
            f"in {summary['seconds']:.1f} s ({summary['failures']} failures {summary['failure_sample']})"
        )
        if summary["failures"]:
            error = f"cursors had {summary['failures']} failures: {summary['failure_sample']}"
            self.result["setup_error"] = "; ".join(filter(None, [self.result.get("setup_error"), error]))

    def _measure(self, phase, server, generators, memory):
        plan = phase_plan(self.options, phase)
        self._wait_for_quiet_machine()
        window_start, window_end = self._start_phase(phase, plan, generators)
        time.sleep(max(0.0, window_start - time.monotonic()))
        own_pids = [os.getpid(), *generators.pids]
        database_name = self.database.name if self.database and self.tables else None
        cpu_before = CpuSnapshot(server.pid, database_name, own_pids)
        rss_series = self._sample_rss(server, window_start, window_end) if phase == "soak" else []
        time.sleep(max(0.0, window_end - time.monotonic()))
        cpu_after = CpuSnapshot(server.pid, database_name, own_pids)
        memory.sample()
        results = generators.collect(
            timeout=max(0.0, window_end - time.monotonic()) + self.options.timeout + 30
        )
        cpu = CpuSnapshot.delta(cpu_before, cpu_after)
        summary = summarize_phase(
            results,
            cpu,
            window_end - window_start,
            server.worker_rss_mib(),
            expected_status=API_STATUS if self.is_api else None,
        )
        summary["users"] = plan["users"]
        summary["think"] = plan["think"]
        if rss_series:
            first, last = rss_series[0]["rss_mib"], rss_series[-1]["rss_mib"]
            summary["rss_series"] = rss_series
            summary["rss_growth_mib"] = {
                pid: round(last[pid] - first[pid], 1) for pid in last if pid in first
            }
        self._log_phase(phase, summary)
        return summary

    def _wait_for_quiet_machine(self):
        if self.options.wait_quiet > 0:
            waited, busy = wait_for_quiet_machine(self.options.wait_quiet)
            if waited > 1:
                log(
                    f"{self.name}: waited {waited:.0f} s for a quiet machine "
                    f"(others now use {busy:.2f} cores)"
                )

    def _start_phase(self, phase, plan, generators):
        """Tells the generators when to ramp up and which window to measure: (window start, end)."""
        think = plan["think"]
        think_mean = 0.0
        if think:
            think_mean = (think[1] + think[2]) / 2 if think[0] == "uniform" else think[1]
        ramp_start = time.monotonic() + 0.3
        window_start = ramp_start + plan["users"] / self.options.ramp_rate + think_mean + self.options.warmup
        window_end = window_start + plan["duration"]
        command = {
            "cmd": "phase",
            "ts": ramp_start,
            "t0": window_start,
            "t1": window_end,
            "users": plan["users"],
            "mix": plan["mix"],
            "think": think,
            "ramp_rate": self.options.ramp_rate,
            "close_after": True,
        }
        log(
            f"{self.name}: phase {phase}: {plan['users']} users, window {plan['duration']:.0f} s "
            f"starts in {window_start - time.monotonic():.1f} s"
        )
        for index in range(len(generators)):
            generators.send(index, command)
        return window_start, window_end

    def _sample_rss(self, server, window_start, window_end):
        series = []
        next_sample = window_start
        while next_sample <= window_end + 0.01:
            time.sleep(max(0.0, next_sample - time.monotonic()))
            series.append(
                {"t_s": round(time.monotonic() - window_start, 1), "rss_mib": server.worker_rss_mib()}
            )
            next_sample += self.options.soak_interval
        return series

    def _log_phase(self, phase, summary):
        latency = summary["latency_ms"]
        log(
            f"{self.name}: phase {phase}: {summary['requests']} req, "
            f"{summary['throughput_rps'] or 0:.1f} req/s, "
            f"p50 {latency.get('p50')} p95 {latency.get('p95')} p99 {latency.get('p99')} ms, "
            f"{summary['errors']} errors, server {summary['server_cpu_ms_per_req'] or 0:.3f} ms CPU/req, "
            f"loadgen {summary['loadgen_cpu_ms_per_req'] or 0:.4f} ms CPU/req"
        )
