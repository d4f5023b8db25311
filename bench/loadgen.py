"""A small, cheap HTTP/1.1 keep-alive load generator (standard library only).

It runs in its own process, started by bench/run.py, and is driven by JSON
commands, one per line on stdin; it answers one JSON line per command on stdout.

Each simulated user owns one token and one keep-alive TCP connection (opened
lazily, re-opened when the server closed it) and does one request at a time.
The client is an asyncio.Protocol that parses only the status line, the
Content-Length (or chunked framing) and the Connection header, so that it
costs a few tens of microseconds of CPU per request. It measures its own CPU
time (time.process_time) over each measured window so that a reader can see
it is not the bottleneck.

Only loopback addresses are accepted as targets. Every phase is bounded in
time: users stop issuing requests at the end of the window, and a phase is
abandoned at window end + request timeout + 5 s whatever happens.
"""

import asyncio
import contextlib
import gc
import ipaddress
import json
import random
import sys
import time
from urllib.parse import quote

MIX_OPS = ("list", "get", "create", "patch", "delete", "me", "changes", "changes304")
# The change feed's polls: each user polls with its own cursor, fetched in set-up (command "cursors"),
# at which nothing is new as long as the user writes nothing (run.py refuses them beside writes).
POLL_OPS = ("changes", "changes304")
# Pages of the set-up's sync as large as the feed allows: fewer requests before the phases.
SYNC_PAGE = 500


class ConnClosed(ConnectionError):
    pass


class HTTPConn(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection with at most one request in flight."""

    __slots__ = ("buf", "closed", "fut", "got_bytes", "nreq", "transport")

    def __init__(self):
        self.transport = None
        self.buf = bytearray()
        self.fut = None
        self.closed = False
        self.nreq = 0
        self.got_bytes = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        self.got_bytes = True
        if self.fut is not None:
            self._parse()

    def eof_received(self):
        return False  # let the transport close; connection_lost follows

    def connection_lost(self, exc):
        self.closed = True
        fut = self.fut
        if fut is not None and not fut.done():
            self.fut = None
            fut.set_exception(ConnClosed("connection closed by peer" if exc is None else repr(exc)))

    def _parse(self):
        buf = self.buf
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            return
        raw_head = bytes(buf[:i])
        head = raw_head.lower()
        try:
            status = int(head[9:12])
        except ValueError:
            self._fail("bad status line")
            return
        start = i + 4
        j = head.find(b"\r\ncontent-length:")
        if j >= 0:
            k = head.find(b"\r\n", j + 17)
            length = int(head[j + 17 : k] if k >= 0 else head[j + 17 :])
            end = start + length
            if len(buf) < end:
                return
            body = bytes(buf[start:end])
        elif b"\r\ntransfer-encoding: chunked" in head:
            body = bytearray()
            pos = start
            while True:
                k = buf.find(b"\r\n", pos)
                if k < 0:
                    return
                size = int(bytes(buf[pos:k]).split(b";")[0], 16)
                if size == 0:
                    if len(buf) < k + 4:
                        return
                    end = buf.find(b"\r\n\r\n", k)
                    if end < 0:
                        return
                    end += 4
                    break
                if len(buf) < k + 2 + size + 2:
                    return
                body += buf[k + 2 : k + 2 + size]
                pos = k + 2 + size + 2
            body = bytes(body)
        elif status in (204, 304) or status < 200:
            body, end = b"", start
        else:
            self._fail("response without length")
            return
        del buf[:end]
        fut, self.fut = self.fut, None
        fut.set_result((status, body, b"\r\nconnection: close" in head, raw_head))

    def _fail(self, why):
        fut, self.fut = self.fut, None
        if fut is not None and not fut.done():
            fut.set_exception(ConnClosed(why))
        if self.transport is not None:
            self.transport.close()


class PhaseStats:
    def __init__(self, t0, t1):
        self.t0 = t0
        self.t1 = t1
        self.lat = {op: [] for op in MIX_OPS}
        self.status = {op: {} for op in MIX_OPS}
        self.conn_errors = {}
        self.connects = 0
        self.reconnects = 0
        self.stale_retries = 0
        self.all_requests = 0
        self.cpu_t0 = None
        self.cpu_t1 = None
        self.wall_t0 = None
        self.wall_t1 = None

    def record(self, op, status, t_start, t_end):
        self.all_requests += 1
        if self.t0 <= t_end <= self.t1:
            self.lat[op].append((t_end - t_start) * 1000.0)
            st = self.status[op]
            st[status] = st.get(status, 0) + 1

    def record_error(self, op, kind, t_end):
        self.all_requests += 1
        if self.t0 <= t_end <= self.t1:
            self.conn_errors[kind] = self.conn_errors.get(kind, 0) + 1

    def as_dict(self):
        return {
            "lat_ms": {op: [round(x, 3) for x in v] for op, v in self.lat.items() if v},
            "status": {op: {str(k): n for k, n in v.items()} for op, v in self.status.items() if v},
            "conn_errors": self.conn_errors,
            "connects": self.connects,
            "reconnects": self.reconnects,
            "stale_retries": self.stale_retries,
            "all_requests": self.all_requests,
            "cpu_s": (self.cpu_t1 - self.cpu_t0)
            if self.cpu_t0 is not None and self.cpu_t1 is not None
            else None,
            "wall_s": (self.wall_t1 - self.wall_t0)
            if self.wall_t0 is not None and self.wall_t1 is not None
            else None,
        }


class User:
    __slots__ = ("auth", "conn", "created", "idx", "if_none_match", "poll", "tasks")

    def __init__(self, idx, token):
        self.idx = idx
        self.auth = (f"Authorization: Bearer {token}\r\n").encode() if token else b""
        self.conn = None
        self.tasks = []  # ids of this user's existing tasks
        self.created = 0
        self.poll = None  # the path of a poll of the change feed at the user's cursor (set-up: cursors)
        self.if_none_match = b""  # the header that sends back the ETag of that poll's answer


def header_value(raw_head, name):
    """The value of header `name` (lower case bytes) in a response head, as sent, or None."""
    at = raw_head.lower().find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    end = raw_head.find(b"\r\n", start)
    return raw_head[start : end if end >= 0 else len(raw_head)].strip()


class LoadGen:
    def __init__(self, host, port, prefix, timeout):
        ip = ipaddress.ip_address(host)
        if not ip.is_loopback:
            raise SystemExit(f"loadgen: refusing non-loopback target {host}")
        self.host = host
        self.port = port
        self.prefix = prefix.rstrip("/")
        self.timeout = timeout
        self.hosthdr = f"Host: {host}:{port}\r\n".encode()
        self.users = {}
        self.loop = asyncio.new_event_loop()
        self.fake_ids = 0
        self.task_no = 0

    # -- one request -----------------------------------------------------
    async def _connect(self, user, stats):
        loop = self.loop
        _, conn = await loop.create_connection(HTTPConn, self.host, self.port)
        if user.conn is not None:
            stats.reconnects += 1
        stats.connects += 1
        user.conn = conn
        return conn

    async def request(self, user, method, path, body, stats, headers=b""):
        """Return (status, body, t_start, t_end, head); raises on connection trouble. `headers`: more
        request header lines, each ending in CRLF."""
        loop = self.loop
        req = b"%s %s HTTP/1.1\r\n%s%s%sAccept: application/json\r\n" % (
            method,
            path,
            self.hosthdr,
            user.auth,
            headers,
        )
        if body is not None:
            req += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        else:
            req += b"\r\n"
        for attempt in (0, 1):
            conn = user.conn
            if conn is None or conn.closed:
                conn = await self._connect(user, stats)
            reused = conn.nreq > 0
            conn.nreq += 1
            conn.got_bytes = False
            fut = loop.create_future()
            conn.fut = fut
            t_start = time.perf_counter()
            conn.transport.write(req)
            handle = loop.call_later(self.timeout, _expire, conn, fut)
            try:
                status, rbody, close, head = await fut
            except ConnClosed:
                handle.cancel()
                conn.closed = True
                conn.transport.close()
                # The server closed an idle keep-alive connection just as we
                # reused it: nothing was processed, retry once on a new one.
                if reused and not conn.got_bytes and attempt == 0:
                    stats.stale_retries += 1
                    continue
                raise
            handle.cancel()
            if close:
                conn.closed = True
                conn.transport.close()
            return status, rbody, t_start, time.perf_counter(), head

    # -- operations --------------------------------------------------------
    async def do_op(self, user, op, stats):
        prefix = self.prefix
        tasks = user.tasks
        body = None
        headers = b""
        if op in ("get", "patch", "delete") and not tasks:
            op = "create"
        if op == "list":
            method, path = b"GET", (f"{prefix}?limit=20").encode()
        elif op == "me":  # the caller, from the token alone: a DRF request that runs no query
            method, path = b"GET", (f"{prefix.rpartition('/')[0]}/me").encode()
        elif op == "changes":  # a poll of the change feed with nothing new: 200, no changes
            method, path = b"GET", user.poll
        elif op == "changes304":  # the same poll, sending back its ETag: 304
            method, path, headers = b"GET", user.poll, user.if_none_match
        elif op == "get":
            method, path = b"GET", (f"{prefix}/{random.choice(tasks)}").encode()
        elif op == "create":
            self.task_no += 1
            method, path = b"POST", prefix.encode()
            body = json.dumps(
                {
                    "title": f"bench task {self.task_no}",
                    "description": f"created by the load generator for user {user.idx}",
                },
                separators=(",", ":"),
            ).encode()
        elif op == "patch":
            method, path = b"PATCH", (f"{prefix}/{random.choice(tasks)}").encode()
            body = b'{"completed":true}'
        else:  # delete
            k = random.randrange(len(tasks))
            tid = tasks[k]
            tasks[k] = tasks[-1]
            tasks.pop()
            method, path = b"DELETE", (f"{prefix}/{tid}").encode()
        try:
            status, rbody, t_start, t_end, _ = await self.request(user, method, path, body, stats, headers)
        except (ConnectionError, OSError, TimeoutError) as exc:
            stats.record_error(op, type(exc).__name__, time.perf_counter())
            return None
        stats.record(op, status, t_start, t_end)
        if op == "create" and 200 <= status < 300:
            tid = None
            with contextlib.suppress(Exception):
                tid = json.loads(rbody)["id"]
            if tid is None:  # the JsonResponse baseline has no ids: invent them
                self.fake_ids += 1
                tid = self.fake_ids
            tasks.append(tid)
        return status

    # -- phases ------------------------------------------------------------
    async def setup(self, cmd):
        """Provision every user with one GET (the API creates the local user on the
        first request of a sub), then create tasks_per_user tasks through the API."""
        per_user = cmd["tasks_per_user"]
        sem = asyncio.Semaphore(cmd.get("concurrency", 32))
        stats = PhaseStats(0.0, float("inf"))
        deadline = time.monotonic() + cmd.get("max_seconds", 600)
        perf0 = time.perf_counter()
        failures = []

        async def one(user):
            async with sem:
                if time.monotonic() > deadline:
                    failures.append("deadline")
                    return
                st = await self.do_op(user, "list", stats)
                if st != 200:
                    failures.append(f"provision {st}")
                    return
                for _ in range(per_user):
                    st = await self.do_op(user, "create", stats)
                    if st is None or not 200 <= st < 300:
                        failures.append(f"create {st}")
                        return
                # release the connection slot: the measured phases open their own
                if user.conn is not None and not user.conn.closed:
                    user.conn.transport.close()
                user.conn = None

        cpu0 = time.process_time()
        await asyncio.gather(*(one(u) for u in self.users.values()))
        out = stats.as_dict()
        out.pop("lat_ms")
        out.update(
            seconds=time.perf_counter() - perf0,
            cpu_s=time.process_time() - cpu0,
            failures=len(failures),
            failure_sample=failures[:5],
            tasks=sum(len(u.tasks) for u in self.users.values()),
        )
        return out

    async def cursors(self, cmd):
        """Gives every user a cursor of the change feed at which nothing is new, and the ETag of the
        poll at it: a sync as a client starts one (GET /changes without a cursor, then each next page
        until has_more is false), then one poll at the last cursor, which must list no change.
        With expect_cursor false (the bare baseline, which answers every path alike) the users poll the
        feed's path without a cursor, and send an ETag of none."""
        feed = f"{self.prefix.rpartition('/')[0]}/changes"
        expect_cursor = cmd["expect_cursor"]
        sem = asyncio.Semaphore(cmd.get("concurrency", 32))
        stats = PhaseStats(0.0, float("inf"))
        deadline = time.monotonic() + cmd.get("max_seconds", 300)
        perf0 = time.perf_counter()
        failures = []

        async def get(user, path):
            status, rbody, t_start, t_end, head = await self.request(user, b"GET", path.encode(), None, stats)
            stats.record("changes", status, t_start, t_end)
            if status != 200:
                raise ValueError(f"GET {path[:60]}: {status}")
            return json.loads(rbody), head

        async def one(user):
            async with sem:
                if time.monotonic() > deadline:
                    failures.append("deadline")
                    return
                try:
                    page, head = await get(user, f"{feed}?limit={SYNC_PAGE}")
                    if not expect_cursor:
                        user.poll, etag = feed.encode(), b'W/"none"'
                    else:
                        while page["has_more"]:
                            next_page = f"{feed}?limit={SYNC_PAGE}&cursor={quote(page['cursor'])}"
                            page, head = await get(user, next_page)
                        poll = f"{feed}?cursor={quote(page['cursor'])}"
                        page, head = await get(user, poll)
                        etag = header_value(head, b"etag")
                        if page["changes"] or page["has_more"] or not etag:
                            raise ValueError(f"a poll at the sync's last cursor: {page}, ETag {etag}")
                        user.poll = poll.encode()
                    user.if_none_match = b"If-None-Match: %s\r\n" % etag
                except (ConnectionError, OSError, TimeoutError, ValueError, KeyError) as exc:
                    failures.append(f"cursor: {exc}"[:200])
                finally:
                    if user.conn is not None and not user.conn.closed:
                        user.conn.transport.close()
                    user.conn = None

        cpu0 = time.process_time()
        await asyncio.gather(*(one(u) for u in self.users.values()))
        return {
            "requests": stats.all_requests,
            "seconds": time.perf_counter() - perf0,
            "cpu_s": time.process_time() - cpu0,
            "failures": len(failures),
            "failure_sample": failures[:5],
        }

    async def phase(self, cmd):
        loop = self.loop
        ts, t0, t1 = cmd["ts"], cmd["t0"], cmd["t1"]
        n = cmd["users"]
        users = [u for u in self.users.values() if u.idx < n]
        mix = cmd["mix"]
        ops = [op for op in MIX_OPS if mix.get(op)]
        weights = [mix[op] for op in ops]
        cum = []
        acc = 0.0
        for w in weights:
            acc += w
            cum.append(acc)
        total = acc
        think = cmd.get("think")  # None, ["uniform", lo, hi] or ["exp", mean, cap]
        ramp_rate = cmd.get("ramp_rate", 200.0)
        # Latencies are kept for requests that *complete* inside [t0, t1]; the
        # window is on the perf_counter clock, translated from monotonic.
        off = time.perf_counter() - time.monotonic()
        stats = PhaseStats(t0 + off, t1 + off)
        rnd = random.random
        uniform = random.uniform
        expo = random.expovariate

        def mark(which):
            if which == 0:
                stats.cpu_t0, stats.wall_t0 = time.process_time(), time.perf_counter()
            else:
                stats.cpu_t1, stats.wall_t1 = time.process_time(), time.perf_counter()

        loop.call_at(t0, mark, 0)
        loop.call_at(t1, mark, 1)

        async def run_user(user, pos):
            # Stagger the first request (and with it the connect) at ramp_rate.
            start = ts + pos / ramp_rate
            if think is not None:
                start += rnd() * _think_mean(think)
            delay = start - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            while loop.time() < t1:
                x = rnd() * total
                k = 0
                while cum[k] < x:
                    k += 1
                await self.do_op(user, ops[k], stats)
                if think is not None:
                    if think[0] == "uniform":
                        pause = uniform(think[1], think[2])
                    else:
                        pause = min(expo(1.0 / think[1]), think[2])
                    # never sleep past the window end; the user is done then
                    pause = min(pause, t1 - loop.time() + 0.001)
                    if pause > 0:
                        await asyncio.sleep(pause)

        random.shuffle(users)
        tasks = [loop.create_task(run_user(u, i)) for i, u in enumerate(users)]
        hard_stop = t1 + self.timeout + 5.0
        _done, pending = await asyncio.wait(tasks, timeout=max(0.0, hard_stop - loop.time()))
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2.0)
        if stats.cpu_t1 is None:
            mark(1)
        out = stats.as_dict()
        out["users"] = len(users)
        out["abandoned_users"] = len(pending)
        if cmd.get("close_after", False):
            for u in users:
                if u.conn is not None and not u.conn.closed:
                    u.conn.transport.close()
                u.conn = None
        return out

    def handle(self, cmd):
        kind = cmd["cmd"]
        gc.collect()
        if kind == "users":
            for idx, token in cmd["users"]:
                self.users[idx] = User(idx, token)
            return {"users": len(self.users)}
        if kind == "tasks":  # ids of tasks seeded directly in the database
            n = 0
            for idx, ids in cmd["tasks"]:
                if idx in self.users:
                    self.users[idx].tasks.extend(ids)
                    n += len(ids)
            return {"tasks": n}
        if kind == "setup":
            return self.loop.run_until_complete(self.setup(cmd))
        if kind == "cursors":
            return self.loop.run_until_complete(self.cursors(cmd))
        if kind == "phase":
            gc.freeze()  # keep the collector from walking the long-lived objects
            try:
                return self.loop.run_until_complete(self.phase(cmd))
            finally:
                gc.unfreeze()
        if kind == "ping":
            return {"pong": True}
        raise ValueError(f"unknown command {kind!r}")


def _think_mean(think):
    return (think[1] + think[2]) / 2.0 if think[0] == "uniform" else think[1]


def _expire(conn, fut):
    if not fut.done():
        conn.fut = None
        fut.set_exception(TimeoutError("request timed out"))
        conn.closed = True
        if conn.transport is not None:
            conn.transport.close()


def main():
    first = json.loads(sys.stdin.readline())
    gen = LoadGen(first["host"], first["port"], first["prefix"], first.get("timeout", 30.0))
    out = sys.stdout
    out.write(f"{json.dumps({'ready': True})}\n")
    out.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        if cmd.get("cmd") == "quit":
            break
        try:
            res = {"ok": True, "result": gen.handle(cmd)}
        except Exception as exc:  # report, keep serving
            res = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out.write(f"{json.dumps(res)}\n")
        out.flush()
    for u in gen.users.values():
        if u.conn is not None and not u.conn.closed:
            u.conn.transport.close()
    gen.loop.run_until_complete(asyncio.sleep(0.05))
    gen.loop.close()


if __name__ == "__main__":
    main()
