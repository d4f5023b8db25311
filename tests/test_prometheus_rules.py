"""deploy/prometheus: the alert rules pass `promtool check rules` and their unit tests (`promtool test
rules`), and the scrape config passes `promtool check config` and scrapes what the k8s manifests announce."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.servers import REPO

pytestmark = pytest.mark.live

PROMETHEUS = REPO / "deploy" / "prometheus"
# Debian's prometheus package; ./dev test installs it.
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ALERTS = {
    "TodoApiHighErrorRatio",
    "TodoApiSlowRequests",
    "TodoApiJwksFetchesFailing",
    "TodoApiEventsWaiting",
    "TodoApiRemindersLate",
    "TodoApiNoWorkerScraped",
}


def promtool(*args, cwd=PROMETHEUS):
    result = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_rules_are_valid():
    assert "SUCCESS: 6 rules found" in promtool("check", "rules", "alerts.yml")


def test_each_alert_fires_on_its_condition_and_not_before():
    promtool("test", "rules", "alerts.test.yml")
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert tested == ALERTS


def test_the_scrape_config_is_valid(tmp_path):
    """Debian's Prometheus is built without Kubernetes discovery: checked with static targets in its place."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs")[0]["role"] == "pod"
        job["static_configs"] = [{"targets": ["127.0.0.1:8000"]}]
        token_file = Path(job["authorization"]["credentials_file"])
        job["authorization"]["credentials_file"] = str(tmp_path / token_file.name)
    (tmp_path / "METRICS_TOKEN").write_text("token\n")
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))

    assert "SUCCESS" in promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert {job["job_name"] for job in config["scrape_configs"]} == {"todo-api", "todo-api-worker"}


def test_the_api_job_keeps_the_pods_the_deployment_annotates():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (api,) = [job for job in config["scrape_configs"] if job["job_name"] == "todo-api"]
    deployment = yaml.safe_load((REPO / "deploy" / "k8s" / "base" / "deployment.yaml").read_text())
    template = deployment["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    (container,) = template["spec"]["containers"]

    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"]
    kept = {rule["regex"] for rule in api["relabel_configs"] if rule.get("action") == "keep"}
    assert kept == {template["metadata"]["labels"]["app.kubernetes.io/component"], "true"}
