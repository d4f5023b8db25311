"""GET /metrics (off, refused, served) and each series moving on its event, in process."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http import HTTPStatus

import jwt
import pytest
from django.db import OperationalError
from django.urls import resolve
from prometheus_client import REGISTRY

from tests.conftest import SECRET, client_with, ed25519_key
from tests.support.environment import clean_env
from tests.support.servers import REPO
from todo_api import metrics

TOKEN = "metrics-token-of-the-test"
ME = "/api/v1/me"


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """How much a sample grew inside the `with` block."""

    def __init__(self, name, **labels):
        self.name, self.labels = name, labels

    def __enter__(self):
        self.before = value(self.name, **self.labels)
        return self

    def __exit__(self, *exc_info):
        self.grew = value(self.name, **self.labels) - self.before


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(header=None):
    client = client_with()
    return client.get("/metrics", **({"HTTP_AUTHORIZATION": header} if header is not None else {}))


class TestTheEndpoint:
    def test_it_is_a_json_404_without_a_metrics_token(self, db, settings):
        settings.METRICS_TOKEN = None
        response = scrape(f"Bearer {TOKEN}")
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert response.json() == {"status": 404, "code": "not_found", "message": "Not Found."}

    def test_it_asks_for_the_token_without_one(self, db, metrics_on):
        response = scrape()
        assert response.status_code == HTTPStatus.UNAUTHORIZED
        assert response["WWW-Authenticate"] == "Bearer"
        assert response.json() == {
            "status": 401,
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
        }

    @pytest.mark.parametrize(
        "header", [f"Bearer {TOKEN}x", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}"]
    )
    def test_it_refuses_any_other_token(self, db, metrics_on, header):
        response = scrape(header)
        assert response.status_code == HTTPStatus.UNAUTHORIZED
        assert response.json()["code"] in {"invalid_token", "not_authenticated"}

    def test_it_serves_the_text_format_with_the_token(self, db, metrics_on):
        response = scrape(f"bearer {TOKEN}")
        assert response.status_code == HTTPStatus.OK
        assert response["Content-Type"].startswith("text/plain; version=")
        text = response.content.decode()
        for name in [
            "todo_api_auth_failures_total",
            "todo_api_jwks_fetches_total",
            "todo_api_build_info",
            "todo_api_reminder_delay_seconds",
        ]:
            assert f"# TYPE {name.removesuffix('_total')}" in text

    def test_only_reads_are_answered(self, db, metrics_on):
        response = client_with().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED

    def test_it_is_served_whatever_the_host_as_prometheus_scrapes_pod_ips(self, db, metrics_on):
        response = client_with().get(
            "/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_HOST="10.1.2.3:8000"
        )
        assert response.status_code == HTTPStatus.OK

    def test_the_build_is_labelled_from_the_environment_settings(self, db, settings):
        settings.METRICS_TOKEN, settings.APP_VERSION, settings.GIT_REVISION = TOKEN, "1.2.3", "abc123"
        scrape(f"Bearer {TOKEN}")
        assert value("todo_api_build_info", version="1.2.3", revision="abc123") == 1


class TestRequests:
    def test_a_task_route_is_labelled_by_its_template_never_its_id(self, alice, metrics_on):
        task_id = alice.post("/api/v1/tasks", {"title": "Renew passport"}, format="json").json()["id"]
        labels = {"method": "GET", "route": "/api/v1/tasks/{id}", "status": "200"}
        with Delta("todo_api_http_requests_total", **labels) as counted:
            client_with_token = alice
            assert client_with_token.get(f"/api/v1/tasks/{task_id}/").status_code == HTTPStatus.OK
            assert client_with_token.get(f"/api/v1/tasks/{task_id}").status_code == HTTPStatus.OK
        assert counted.grew == 2
        assert (
            value("todo_api_http_request_duration_seconds_count", method="GET", route="/api/v1/tasks/{id}")
            >= 2
        )

    def test_the_compatibility_routes_carry_no_user_id(self, alice, metrics_on):
        with Delta(
            "todo_api_http_requests_total", method="GET", route="/api/{user_id}/tasks", status="200"
        ) as c:
            assert alice.get(f"/api/{alice.sub}/tasks").status_code == HTTPStatus.OK
        assert c.grew == 1
        labels = [sample.labels.get("route", "") for m in REGISTRY.collect() for sample in m.samples]
        assert not [label for label in labels if alice.sub in label]

    @pytest.mark.parametrize("path", ["/api/nowhere/at/all", "/nowhere", "/api/v1/tasks/abc", "/%ff%fe"])
    def test_an_unknown_path_counts_as_unmatched(self, db, metrics_on, path):
        with Delta("todo_api_http_requests_total", method="GET", route="unmatched", status="404") as c:
            assert client_with().get(path).status_code == HTTPStatus.NOT_FOUND
        assert c.grew == 1

    def test_a_client_invented_method_is_one_label(self, db, metrics_on):
        with Delta("todo_api_http_requests_total", method="other", route="/healthz", status="405") as c:
            client_with().generic("BREW", "/healthz")
        assert c.grew == 1

    def test_every_api_route_is_labelled_as_the_openapi_schema_names_it(self, db):
        schema = json.loads(client_with().get("/api/schema/", HTTP_ACCEPT="application/json").content)
        for template in schema["paths"]:
            path = template.replace("{id}", "42").replace("{user_id}", "u-1")
            for concrete in (path, f"{path}/"):
                assert metrics.route_template(resolve(concrete).route) == template

    def test_without_a_metrics_token_requests_are_not_timed(self, alice, settings):
        settings.METRICS_TOKEN = None
        with Delta("todo_api_http_requests_total", method="GET", route="/api/v1/me", status="200") as c:
            alice.get(ME)
        assert c.grew == 0


class TestAuthentication:
    def test_a_request_without_a_token_counts_as_missing(self, anonymous, better_auth):
        with Delta("todo_api_auth_failures_total", reason="missing") as c:
            assert anonymous.get(ME).status_code == HTTPStatus.UNAUTHORIZED
        assert c.grew == 1

    @pytest.mark.parametrize(
        ("reason", "make"),
        [
            ("malformed", lambda key, claims: "not-a-jwt"),
            ("malformed", lambda key, claims: "a b"),
            ("expired", lambda key, claims: key.sign(claims(exp=int(time.time()) - 3600))),
            ("claims", lambda key, claims: key.sign(claims(iss="https://elsewhere.example"))),
            ("unknown_key", lambda key, claims: ed25519_key().sign(claims())),
            ("bad_signature", lambda key, claims: key.sign(claims())[:-6] + "AAAAAA"),
            ("bad_signature", lambda key, claims: jwt.encode(claims(), SECRET + "x", algorithm="HS256")),
            ("algorithm", lambda key, claims: jwt.encode(claims(), SECRET, algorithm="HS384")),
        ],
    )
    def test_each_refusal_counts_under_its_reason(
        self, db, better_auth, signing_key, claims_for, reason, make
    ):
        token = make(signing_key, claims_for)
        with Delta("todo_api_auth_failures_total", reason=reason) as c:
            response = client_with().get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == HTTPStatus.UNAUTHORIZED
        assert c.grew == 1

    def test_keys_that_cannot_be_fetched_count_as_keys_unavailable_and_a_failed_fetch(
        self, db, better_auth, signing_key, claims_for, jwks_server
    ):
        jwks_server.status = 502
        with (
            Delta("todo_api_auth_failures_total", reason="keys_unavailable") as refused,
            Delta("todo_api_jwks_fetches_total", outcome="failure") as failed,
        ):
            response = client_with(signing_key.sign(claims_for())).get(ME)
        assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
        assert (refused.grew, failed.grew) == (1, 1)

    def test_a_good_fetch_counts_as_success_and_a_repeated_token_as_a_cache_hit(self, db, token_for):
        token = token_for()
        with (
            Delta("todo_api_jwks_fetches_total", outcome="success") as fetched,
            Delta("todo_api_token_cache_misses_total") as misses,
            Delta("todo_api_token_cache_hits_total") as hits,
        ):
            for _ in range(3):
                assert client_with(token).get(ME).status_code == HTTPStatus.OK
        assert (fetched.grew, misses.grew, hits.grew) == (1, 1, 2)


class TestOtherEvents:
    def test_a_lost_database_counts_a_503(self, alice, monkeypatch):
        def lost(*args, **kwargs):
            raise OperationalError("the database is gone")

        monkeypatch.setattr("authbridge.views.MeView.get", lost)
        with Delta("todo_api_db_unavailable_total") as c:
            assert alice.get(ME).status_code == HTTPStatus.SERVICE_UNAVAILABLE
        assert c.grew == 1

    def test_a_throttled_request_counts(self, alice, settings):
        settings.API_USER_RATE, settings.REDIS_URL, settings.API_USER_RATE_FILE = (1, 3600), None, None
        with Delta("todo_api_throttled_total") as c:
            statuses = [alice.get("/api/v1/tasks").status_code for _ in range(3)]
        assert statuses == [HTTPStatus.OK, HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.TOO_MANY_REQUESTS]
        assert c.grew == 2

    def test_a_replayed_create_counts(self, alice):
        create = {
            "path": "/api/v1/tasks",
            "data": {"title": "Once"},
            "format": "json",
            "HTTP_IDEMPOTENCY_KEY": "k-1",
        }
        with Delta("todo_api_idempotent_replays_total") as c:
            first, second = alice.post(**create), alice.post(**create)
        assert (first.status_code, second.status_code) == (HTTPStatus.CREATED, HTTPStatus.CREATED)
        assert c.grew == 1

    def test_a_write_with_a_stale_if_match_counts(self, alice):
        task = alice.post("/api/v1/tasks", {"title": "Versioned"}, format="json")
        with Delta("todo_api_precondition_failed_total") as c:
            response = alice.patch(
                f"/api/v1/tasks/{task.json()['id']}",
                {"completed": True},
                format="json",
                HTTP_IF_MATCH='"1.999"',
            )
        assert response.status_code == HTTPStatus.PRECONDITION_FAILED
        assert c.grew == 1


class TestTheWorkersEndpoint:
    def test_it_serves_the_same_text_with_the_same_token_check(self, settings):
        settings.METRICS_TOKEN = TOKEN
        server = metrics.serve_worker_metrics(0, host="127.0.0.1")
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
            metrics.REMINDERS_FIRED.inc()
            for header, status in [(None, 401), ("Bearer nope", 401)]:
                request = urllib.request.Request(url, headers={"Authorization": header} if header else {})
                with pytest.raises(urllib.error.HTTPError) as refused:
                    urllib.request.urlopen(request, timeout=5)
                assert refused.value.code == status
                assert json.loads(refused.value.read())["status"] == status
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                assert b"todo_api_reminders_fired_total" in response.read()
        finally:
            server.shutdown()
            server.server_close()

    def test_it_is_not_served_without_a_token(self, settings):
        settings.METRICS_TOKEN = None
        assert metrics.serve_worker_metrics(0, host="127.0.0.1") is None


@pytest.mark.live
def test_the_series_are_summed_over_processes_sharing_the_multiprocess_dir(tmp_path):
    """Two processes count; a third reads both, as GET /metrics does under gunicorn."""
    env = clean_env(
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="todo_api.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x",
        DJANGO_ALLOWED_HOSTS="localhost",
    )
    count = (
        "from todo_api import metrics; metrics.THROTTLED.inc(3); metrics.BUILD_INFO.labels('v', 'r').set(1)"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], cwd=REPO, env=env, check=True, timeout=60)
    read = "import sys; from todo_api import metrics; sys.stdout.write(metrics.exposition().decode())"
    text = subprocess.run(
        [sys.executable, "-c", read],
        cwd=REPO,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert "todo_api_throttled_total 6.0" in text
    assert 'todo_api_build_info{revision="r",version="v"} 1.0' in text
