#!/usr/bin/env python3
"""Where does a request's CPU go? cProfile of the API's WSGI app, in process, no gunicorn.

    .venv/bin/python bench/profile_api.py [--requests 2000] [--op list|get|...|me|changes|mix] [--top 35]

Creates a throw-away PostgreSQL database, migrates it, serves the fake Better Auth
JWKS on 127.0.0.1, provisions a few users with 20 tasks each, then calls the WSGI
application directly (no sockets, no gunicorn) for the chosen operation and prints
the per-request wall/CPU time and the hottest functions. The database is dropped
at the end.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # tests.support, which the bench modules use

from betterauth import FakeBetterAuth, random_id  # noqa: E402 (after the sys.path line that makes it importable)
from harness import Database  # noqa: E402 (as above)
from load import MIX  # noqa: E402 (as above)
from loadgen import MIX_OPS as OPERATIONS  # noqa: E402 (as above)
from loadgen import POLL_OPS  # noqa: E402 (as above)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--op", default="list", choices=[*OPERATIONS, "mix"])
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--top", type=int, default=35)
    p.add_argument("--sort", default="tottime", choices=["tottime", "cumulative"])
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    p.add_argument("--api-dir", default=str(REPO))
    a = p.parse_args()

    auth = FakeBetterAuth()
    db = Database(a.pg_url)
    db.create()
    try:
        env = {
            "DATABASE_URL": db.url,
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "BETTER_AUTH_URL": auth.url,
        }
        os.environ.update(env)
        os.environ.pop("DJANGO_SETTINGS_MODULE", None)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=a.api_dir,
            env=dict(os.environ),
            check=True,
            timeout=300,
        )
        sys.path.insert(0, a.api_dir)
        os.chdir(a.api_dir)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "todo_api.settings")
        from django.core.wsgi import get_wsgi_application

        app = get_wsgi_application()

        def call(method, path, token, body=None, headers=None):
            path, _, query = path.partition("?")
            data = body or b""
            environ = {
                "REQUEST_METHOD": method,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "8000",
                "HTTP_HOST": "127.0.0.1:8000",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "HTTP_AUTHORIZATION": f"Bearer {token}",
                "HTTP_ACCEPT": "application/json",
                "wsgi.input": io.BytesIO(data),
                "wsgi.url_scheme": "http",
                "wsgi.errors": sys.stderr,
                "wsgi.multithread": True,
                "wsgi.multiprocess": True,
                "wsgi.run_once": False,
                "wsgi.version": (1, 0),
                "CONTENT_LENGTH": str(len(data)),
            }
            if body is not None:
                environ["CONTENT_TYPE"] = "application/json"
            environ.update(headers or {})
            status = []
            chunks = app(environ, lambda s, h, e=None: status.append((s, h)))
            out = b"".join(chunks)
            if hasattr(chunks, "close"):
                chunks.close()
            line, response_headers = status[0]
            if headers is not None:  # the caller wants the response's headers too
                return int(line[:3]), out, dict(response_headers)
            return int(line[:3]), out

        def poll_at_cursor(tok):
            """A sync of the user's change feed, as loadgen's set-up does it: the poll at its last
            cursor, at which nothing is new while the user writes nothing, and that poll's ETag."""
            st, body = call("GET", "/api/v1/changes?limit=500", tok)
            page = json.loads(body)
            while page["has_more"]:
                st, body = call("GET", f"/api/v1/changes?limit=500&cursor={quote(page['cursor'])}", tok)
                page = json.loads(body)
            poll = f"/api/v1/changes?cursor={quote(page['cursor'])}"
            st, body, headers = call("GET", poll, tok, headers={})
            assert st == 200 and json.loads(body)["changes"] == [], (st, body)
            return poll, {"HTTP_IF_NONE_MATCH": headers["ETag"]}

        prefix = "/api/v1/tasks"
        users = []
        for i in range(a.users):
            uid = random_id()
            tok = auth.mint(uid, f"p{i}@example.test", f"Profile {i}", 3600)
            ids = []
            st, _ = call("GET", f"{prefix}?limit=20", tok)
            assert st == 200, st
            for k in range(20):
                st, body = call(
                    "POST", prefix, tok, json.dumps({"title": f"t{k}", "description": "d"}).encode()
                )
                assert st == 201, (st, body)
                ids.append(json.loads(body)["id"])
            users.append((tok, ids, poll_at_cursor(tok) if a.op in POLL_OPS else None))

        def one(op):
            tok, ids, poll = random.choice(users)
            if op == "mix":  # the benchmark's
                op = random.choices(list(MIX), list(MIX.values()))[0]
            if op == "me":
                return call("GET", "/api/v1/me", tok)
            if op == "changes":  # nothing new: 200 with no changes
                return call("GET", poll[0], tok)
            if op == "changes304":  # the same, with the poll's ETag: 304
                return call("GET", poll[0], tok, headers=poll[1])[:2]
            if op == "list":
                return call("GET", f"{prefix}?limit=20", tok)
            if op == "get":
                return call("GET", f"{prefix}/{random.choice(ids)}", tok)
            if op == "create" or (op == "delete" and len(ids) < 2):
                status, body = call("POST", prefix, tok, b'{"title":"x","description":"y"}')
                ids.append(json.loads(body)["id"])
                return status, body
            if op == "delete":
                return call("DELETE", f"{prefix}/{ids.pop()}", tok)
            return call("PATCH", f"{prefix}/{random.choice(ids)}", tok, b'{"completed":true}')

        for _ in range(200):  # warm up
            status, _ = one(a.op)
            # A poll that found something, or a 304 that did not match, would measure something else.
            assert a.op not in POLL_OPS or status == (304 if a.op == "changes304" else 200), (a.op, status)
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(a.requests):
            one(a.op)
        w1, c1 = time.perf_counter(), time.process_time()
        print(
            f"{a.op}: {a.requests} requests, {1000 * (w1 - w0) / a.requests:.3f} ms wall, "
            f"{1000 * (c1 - c0) / a.requests:.3f} ms CPU per request (unprofiled, in process, no gunicorn)"
        )
        prof = cProfile.Profile(time.process_time)  # CPU time, not wall
        prof.enable()
        for _ in range(a.requests):
            one(a.op)
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats(a.sort).print_stats(a.top)
        print(s.getvalue())
        from django.db import connections

        connections.close_all()
    finally:
        auth.stop()
        db.drop()


if __name__ == "__main__":
    main()
