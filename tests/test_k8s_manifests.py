"""deploy/k8s: each overlay renders with `kubectl kustomize`, every object is valid for the Kubernetes
version docs/deploy.md names, checkov finds nothing it does not justify, and the settings that make a
rollout drain cleanly hold together."""

import json
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "k8s"
KUBERNETES_VERSION = "1.32.0"
# Their own venv, installed by ./dev test (requirements-k8s.txt).
KUBECTL = REPO / ".venv-k8s" / "bin" / "kubectl"
CHECKOV = REPO / ".venv-k8s" / "bin" / "checkov"
OVERLAYS = ["production", "dapr"]
# Kinds of Dapr's CRDs an overlay renders, beside the built-in ones.
DAPR_KINDS = {"dapr": {"Component"}}
DAPR_EXAMPLES = K8S / "overlays" / "dapr" / "examples"
# Each purge CronJob: its schedule (UTC), its command, and how long a run may take.
PURGES = {
    "todo-api-purge-idempotency-keys": ("17 * * * *", ["python", "manage.py", "purge_idempotency_keys"], 600),
    "todo-api-purge-changes": ("43 3 * * *", ["python", "manage.py", "purge_changes"], 3600),
}


def render(overlay):
    result = subprocess.run(
        [KUBECTL, "kustomize", K8S / "overlays" / overlay],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def objects(overlay):
    return {(item["kind"], item["metadata"]["name"]): item for item in yaml.safe_load_all(render(overlay))}


def config_map(rendered):
    return next(item for (kind, _), item in rendered.items() if kind == "ConfigMap")["data"]


def without_config_name(containers):
    return [{key: value for key, value in container.items() if key != "envFrom"} for container in containers]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_the_documented_kubernetes_version(overlay):
    rendered = objects(overlay)

    for item in rendered.values():
        if item["apiVersion"].startswith("dapr.io/"):
            # kubernetes-validate has the built-in kinds' schemas only, not Dapr's CRDs: a Dapr object
            # is checked by test_the_dapr_objects_have_the_fields_the_dapr_crds_require instead.
            with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
                kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
            continue
        kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
    assert {kind for kind, _ in rendered} == DAPR_KINDS.get(overlay, set()) | {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Job",
        "CronJob",
    }
    assert f"Kubernetes {KUBERNETES_VERSION.rsplit('.', 1)[0]}" in (REPO / "docs" / "deploy.md").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_fails_nothing_and_every_skip_is_justified_in_the_docs(overlay, tmp_path):
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(render(overlay))

    result = subprocess.run(
        [CHECKOV, "-f", manifest, "--framework", "kubernetes", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )

    report = json.loads(result.stdout)["results"]
    assert [check["check_id"] for check in report["failed_checks"]] == []
    assert report["passed_checks"]
    docs = (REPO / "docs" / "deploy.md").read_text()
    for check in report["skipped_checks"]:
        assert re.search(rf"`{check['check_id']}`: \S", docs), (
            f"{check['check_id']} is skipped without a reason"
        )


def test_pods_get_longer_to_stop_than_the_drain_and_the_graceful_timeout_together():
    rendered = objects("production")
    pod = rendered["Deployment", "todo-api"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pre_stop_seconds = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    graceful_timeout = int(config_map(rendered)["GUNICORN_GRACEFUL_TIMEOUT"])

    assert pod["terminationGracePeriodSeconds"] > pre_stop_seconds + graceful_timeout


def test_the_api_runs_three_probed_non_root_replicas_on_a_read_only_filesystem():
    rendered = objects("production")
    deployment = rendered["Deployment", "todo-api"]["spec"]
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]

    assert (
        deployment["replicas"] == rendered["HorizontalPodAutoscaler", "todo-api"]["spec"]["minReplicas"] == 3
    )
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert rendered["PodDisruptionBudget", "todo-api"]["spec"]["maxUnavailable"] == 1


def test_the_probes_host_header_is_an_allowed_host():
    rendered = objects("production")
    (container,) = rendered["Deployment", "todo-api"]["spec"]["template"]["spec"]["containers"]
    allowed = config_map(rendered)["DJANGO_ALLOWED_HOSTS"].split(",")

    for probe in ["startupProbe", "readinessProbe", "livenessProbe"]:
        assert container[probe]["httpGet"]["httpHeaders"] == [{"name": "Host", "value": "localhost"}]
    assert "localhost" in allowed


def test_secrets_are_files_of_the_secret_and_the_migration_uses_the_direct_database_url():
    rendered = objects("production")
    config = config_map(rendered)
    job = rendered["Job", "todo-api-migrate"]["spec"]["template"]["spec"]
    (migrate,) = job["containers"]

    assert config["DATABASE_URL_FILE"] == "/run/secrets/todo-api/DATABASE_URL"
    assert config["DJANGO_SECRET_KEY_FILE"] == "/run/secrets/todo-api/DJANGO_SECRET_KEY"
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["env"] == [
        {"name": "DATABASE_URL_FILE", "value": "/run/secrets/todo-api/DATABASE_DIRECT_URL"}
    ]
    assert job["volumes"][0]["secret"]["secretName"] == "todo-api-secrets"


def test_the_dapr_overlay_adds_the_sidecar_and_leaves_the_app_container_as_it_is():
    production, dapr = objects("production"), objects("dapr")
    pod = dapr["Deployment", "todo-api"]["spec"]["template"]
    annotations = pod["metadata"]["annotations"]

    assert annotations["dapr.io/enabled"] == "true"
    assert annotations["dapr.io/app-port"] == "8000"
    # The same container; only the ConfigMap's name differs, by the hash of its changed content.
    assert without_config_name(pod["spec"]["containers"]) == without_config_name(
        production["Deployment", "todo-api"]["spec"]["template"]["spec"]["containers"]
    )
    assert "127.0.0.1" in config_map(dapr)["DJANGO_ALLOWED_HOSTS"].split(",")


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", PURGES)
def test_the_purges_are_cronjobs_run_one_at_a_time_as_the_api_runs(overlay, name):
    rendered = objects(overlay)
    cronjob = rendered["CronJob", name]["spec"]
    job = cronjob["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (purge,) = pod["containers"]
    api_pod = rendered["Deployment", "todo-api"]["spec"]["template"]["spec"]
    (api,) = api_pod["containers"]
    schedule, command, deadline = PURGES[name]

    assert (cronjob["schedule"], cronjob["timeZone"]) == (schedule, "Etc/UTC")
    assert purge["command"] == command
    assert cronjob["concurrencyPolicy"] == "Forbid"
    # Under Forbid, a hung run would hold off the next ones: each is stopped after its deadline.
    assert job["activeDeadlineSeconds"] == deadline
    assert (pod["restartPolicy"], job["backoffLimit"]) == ("Never", 2)
    assert purge["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    assert set(purge["resources"]["requests"]) == {"cpu", "memory"}
    # The API's image, settings, Secret files and security context: the same code, as locked down.
    assert (purge["image"], purge["envFrom"]) == (api["image"], api["envFrom"])
    assert "env" not in purge  # the pooled DATABASE_URL, as the API; only migrations take the direct one
    assert purge["securityContext"] == api["securityContext"]
    assert purge["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"] == api_pod["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("todo-api", False)
    assert purge["volumeMounts"] == api["volumeMounts"]
    assert pod["volumes"] == api_pod["volumes"]
    assert "annotations" not in job["template"]["metadata"]  # no Dapr sidecar: a Job would never finish
    assert job["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "maintenance"
    maintenance = rendered["NetworkPolicy", "todo-api-maintenance"]["spec"]
    assert maintenance["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "maintenance"
    assert (maintenance["policyTypes"], maintenance.get("ingress")) == (["Ingress"], None)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_worker_is_a_deployment_of_its_own_run_as_the_api_runs_with_nothing_to_connect_to(overlay):
    rendered = objects(overlay)
    deployment = rendered["Deployment", "todo-api-worker"]["spec"]
    pod = deployment["template"]["spec"]
    (worker,) = pod["containers"]
    api_pod = rendered["Deployment", "todo-api"]["spec"]["template"]["spec"]
    (api,) = api_pod["containers"]

    assert worker["command"] == ["python", "manage.py", "run_worker"]
    assert deployment["replicas"] >= 1
    # A new worker starts before the old one stops: two at once are safe, a gap would delay reminders.
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # The API's image, settings, Secret files and security context: the same code, as locked down.
    assert (worker["image"], worker["envFrom"]) == (api["image"], api["envFrom"])
    assert "env" not in worker  # the pooled DATABASE_URL, as the API
    assert worker["securityContext"] == api["securityContext"]
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"] == api_pod["securityContext"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("todo-api", False)
    assert worker["volumeMounts"] == api["volumeMounts"]
    assert pod["volumes"] == api_pod["volumes"]
    assert set(worker["resources"]) == {"requests", "limits"}
    # It stops within 10 s of SIGTERM (tests/test_worker_live.py); the pod waits longer before SIGKILL.
    assert pod["terminationGracePeriodSeconds"] >= 10
    # No HTTP probe, no Service; one port, for Prometheus (WORKER_METRICS_PORT, from the config).
    assert not {"livenessProbe", "readinessProbe", "startupProbe"} & set(worker)
    assert worker["ports"] == [{"name": "metrics", "containerPort": 9100}]
    annotations = deployment["template"]["metadata"]["annotations"]
    assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/port"]) == ("true", "9100")
    labels = deployment["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "worker"
    for (kind, _), item in rendered.items():
        if kind == "Service":
            assert item["spec"]["selector"]["app.kubernetes.io/component"] != "worker"
    policy = rendered["NetworkPolicy", "todo-api-worker"]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    assert (policy["policyTypes"], policy["ingress"]) == (["Ingress"], [{"ports": [{"port": "metrics"}]}])


def test_the_dapr_overlay_gives_the_worker_a_sidecar_with_no_app_port_and_leaves_its_container_as_it_is():
    production, dapr = objects("production"), objects("dapr")
    pod = dapr["Deployment", "todo-api-worker"]["spec"]["template"]
    annotations = pod["metadata"]["annotations"]

    assert (annotations["dapr.io/enabled"], annotations["dapr.io/app-id"]) == ("true", "todo-api-worker")
    # Nothing calls the worker: no app port for daprd to wait for, probe or forward to.
    assert not {"dapr.io/app-port", "dapr.io/app-protocol", "dapr.io/enable-app-health-check"} & set(
        annotations
    )
    assert (
        int(annotations["dapr.io/graceful-shutdown-seconds"]) < pod["spec"]["terminationGracePeriodSeconds"]
    )
    assert without_config_name(pod["spec"]["containers"]) == without_config_name(
        production["Deployment", "todo-api-worker"]["spec"]["template"]["spec"]["containers"]
    )
    # The worker only connects out (to the database and its own daprd on 127.0.0.1): still no ingress.
    assert dapr["NetworkPolicy", "todo-api-worker"]["spec"]["ingress"] == [{"ports": [{"port": "metrics"}]}]


def test_the_pubsub_component_is_kafka_scoped_to_the_worker_which_alone_publishes_the_two_topics():
    component = objects("dapr")["Component", "pubsub"]
    metadata = {item["name"]: item for item in component["spec"]["metadata"]}

    assert (component["spec"]["type"], component["metadata"]["namespace"]) == ("pubsub.kafka", "todo-api")
    assert "todo-api-worker" in component["scopes"]
    assert metadata["publishingScopes"]["value"] == "todo-api-worker=task-events,reminders"
    # Credentials come from a Secret, never a literal in the manifest.
    assert metadata["saslPassword"] == {
        "name": "saslPassword",
        "secretKeyRef": {"name": "todo-api-kafka", "key": "password"},
    }


def dapr_objects():
    rendered = [item for item in objects("dapr").values() if item["apiVersion"].startswith("dapr.io/")]
    examples = [yaml.safe_load(path.read_text()) for path in sorted(DAPR_EXAMPLES.glob("*.yaml"))]
    return rendered + examples


def test_the_dapr_objects_have_the_fields_the_dapr_crds_require():
    """Dapr's CRDs (components.dapr.io v1alpha1, subscriptions.dapr.io v2alpha1, in dapr/dapr's
    charts/dapr/crds) are not vendored here: this checks the fields they require and their types, as
    we read them, not the CRDs' schemas themselves."""
    found = {(item["kind"], item["apiVersion"]) for item in dapr_objects()}
    assert found == {("Component", "dapr.io/v1alpha1"), ("Subscription", "dapr.io/v2alpha1")}

    for item in dapr_objects():
        assert set(item) <= {"apiVersion", "kind", "metadata", "spec", "scopes", "auth"}, item["metadata"]
        assert isinstance(item["metadata"]["name"], str)
        assert all(isinstance(scope, str) for scope in item.get("scopes", []))
        spec = item["spec"]
        if item["kind"] == "Component":
            assert spec["type"] in ("pubsub.kafka", "pubsub.redis") and spec["version"] == "v1"
            assert spec["metadata"][0]
            for entry in spec["metadata"]:
                assert set(entry) in ({"name", "value"}, {"name", "secretKeyRef"}), entry
                assert isinstance(entry.get("value", ""), str), entry  # a string, as the CRD types it
            assert item["auth"] == {"secretStore": "kubernetes"}
            assert item["metadata"]["name"] == "pubsub"  # settings.EVENTS_PUBSUB's default
        else:
            assert {"pubsubname", "topic", "routes"} <= set(spec)
            assert (spec["pubsubname"], spec["topic"]) == ("pubsub", "task-events")
            assert isinstance(spec["routes"]["default"], str)
            assert all(set(rule) == {"match", "path"} for rule in spec["routes"]["rules"])
