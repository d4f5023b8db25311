"""The cluster for the replica tests: started once for this folder, stopped after it.

It runs on a PostgreSQL database of its own whatever the suite runs on, so it runs once, in the
suite's PostgreSQL pass (./dev test), and is not collected again in the SQLite pass.
"""

import os

import pytest

from tests.replicas.cluster import Cluster

if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="package")
def balancer(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("replicas"))
    yield cluster
    cluster.stop()
