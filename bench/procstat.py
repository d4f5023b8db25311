"""CPU time and memory of a gunicorn master and its workers, read from /proc."""

import os
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def read_stat(pid):
    """(ppid, utime_s, stime_s, cutime_s, cstime_s, starttime_ticks) or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2 :].split()
    # rest[0] is field 3 (state); utime is field 14 -> rest[11]
    return (
        int(rest[1]),
        int(rest[11]) / CLK_TCK,
        int(rest[12]) / CLK_TCK,
        int(rest[13]) / CLK_TCK,
        int(rest[14]) / CLK_TCK,
        int(rest[19]),
    )


def exec_runtime(pid):
    """CPU seconds of all of a process's live threads, from the scheduler's nanosecond count
    (/proc/<pid>/task/<tid>/schedstat), or None. /proc/<pid>/stat counts 10 ms clock ticks, too coarse
    for the few hundred ms a quick run's baseline uses: one tick more or less moved its ratio by a tenth."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return total / 1e9


def read_status(pid):
    """{'VmRSS': bytes, 'VmHWM': bytes, 'Threads': n} or None."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(val.split()[0]) * 1024
                elif key == "Threads":
                    out[key] = int(val)
    except OSError:
        return None
    return out


def children(ppid):
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = read_stat(int(name))
        if st is not None and st[0] == ppid:
            kids.append(int(name))
    return sorted(kids)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def postgres_backends(dbname):
    """pids of PostgreSQL backends connected to dbname (cmdline 'postgres: user db host ...')."""
    pids = []
    needle = f" {dbname} "
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        cl = cmdline(int(name))
        if cl.startswith("postgres: ") and needle in f"{cl} ":
            pids.append(int(name))
    return pids


def machine_cpu():
    """(busy_s, steal_s) summed over all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / CLK_TCK, (v[7] if len(v) > 7 else 0) / CLK_TCK


class CpuSnapshot:
    """CPU seconds of master (own + reaped children) + live workers, of DB backends,
    of our own processes (harness + load generators) and of the whole machine."""

    def __init__(self, master_pid, dbname=None, own_pids=()):
        self.t = time.monotonic()
        self.machine_busy, self.machine_steal = machine_cpu()
        self.own = {}
        for pid in own_pids:
            s = read_stat(pid)
            if s:
                self.own[pid] = s[1] + s[2]
        st = read_stat(master_pid)
        self.master = (st[1] + st[2] + st[3] + st[4]) if st else 0.0
        self.workers = {}
        for pid in children(master_pid):
            s = read_stat(pid)
            if s:
                self.workers[pid] = s[1] + s[2]
        # The same processes' live threads in nanoseconds (a worker that exits meanwhile is not in it).
        self.server_exact = {pid: exec_runtime(pid) for pid in [master_pid, *self.workers]}
        self.db = {}
        if dbname:
            for pid in postgres_backends(dbname):
                s = read_stat(pid)
                if s:
                    self.db[pid] = s[1] + s[2]

    def server_total(self):
        return self.master + sum(self.workers.values())

    @staticmethod
    def delta(a, b):
        server = b.server_total() - a.server_total()
        # DB backends: only count what was spent during the window by each pid
        db = sum(v - a.db.get(pid, 0.0) for pid, v in b.db.items())
        own = sum(v - a.own.get(pid, 0.0) for pid, v in b.own.items())
        busy = b.machine_busy - a.machine_busy
        return {
            "machine_busy_s": busy,
            "machine_steal_s": b.machine_steal - a.machine_steal,
            "harness_cpu_s": own,
            "other_cpu_s": busy - server - db - own,
            "seconds": b.t - a.t,
            "server_cpu_s": server,
            "server_exact_cpu_s": _exact_delta(a.server_exact, b.server_exact),
            "db_cpu_s": db,
            "worker_restarts": len(set(a.workers) - set(b.workers)),
            "per_worker_cpu_s": {
                str(pid): round(v - a.workers.get(pid, 0.0), 3) for pid, v in b.workers.items()
            },
        }


def _exact_delta(before, after):
    """The scheduler's CPU seconds between two readings of the same processes, or None if any is missing."""
    if set(before) != set(after) or None in (*before.values(), *after.values()):
        return None
    return sum(after[pid] - before[pid] for pid in after)


class MemorySampler(threading.Thread):
    """Samples VmRSS/VmHWM of master and workers every `interval` seconds."""

    def __init__(self, master_pid, interval=0.5):
        super().__init__(daemon=True, name="rss-sampler")
        self.master_pid = master_pid
        self.interval = interval
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.peak_rss = {}  # pid -> max VmRSS seen
        self.hwm = {}  # pid -> last VmHWM seen
        self.threads = {}
        self.master_peak = 0

    def sample(self):
        st = read_status(self.master_pid)
        kids = children(self.master_pid)
        with self.lock:
            if st:
                self.master_peak = max(self.master_peak, st.get("VmHWM", 0), st.get("VmRSS", 0))
            for pid in kids:
                s = read_status(pid)
                if not s:
                    continue
                self.peak_rss[pid] = max(self.peak_rss.get(pid, 0), s.get("VmRSS", 0))
                self.hwm[pid] = max(self.hwm.get(pid, 0), s.get("VmHWM", 0))
                self.threads[pid] = s.get("Threads", 0)
        return kids

    def current_rss(self):
        out = {}
        for pid in children(self.master_pid):
            s = read_status(pid)
            if s:
                out[pid] = s.get("VmRSS", 0)
        return out

    def run(self):
        while not self.stop_event.wait(self.interval):
            self.sample()

    def stop(self):
        self.stop_event.set()
        self.sample()

    def summary(self):
        with self.lock:
            peaks = {
                pid: max(self.peak_rss.get(pid, 0), self.hwm.get(pid, 0))
                for pid in set(self.peak_rss) | set(self.hwm)
            }
            return {
                "workers_seen": len(peaks),
                "peak_rss_per_worker_mib": {str(p): round(v / 2**20, 1) for p, v in sorted(peaks.items())},
                "peak_rss_max_worker_mib": round(max(peaks.values()) / 2**20, 1) if peaks else None,
                "master_peak_rss_mib": round(self.master_peak / 2**20, 1),
                "threads_per_worker": sorted(set(self.threads.values())),
            }
