"""A Next.js team's typed client, proven: TypeScript types generated from the live schema with
openapi-typescript, compiled with `tsc --strict`, run with openapi-fetch's default serialisation against
the API under gunicorn (clients/typescript/src/scenario.ts says what it checks). The sync loop
docs/frontend.md shows is that client's src/sync.ts, word for word."""

import re

import pytest

from tests.api_reference import CLIENT_DIR, install_client_tools, run_node_tool, served_api
from tests.live_server import REPO, hs256_token


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    install_client_tools()
    with served_api(tmp_path_factory.mktemp("client")) as server:
        yield server


@pytest.mark.live
def test_the_generated_client_compiles_strictly_and_runs_the_frontends_calls(server):
    api_url = f"http://127.0.0.1:{server.port}"

    generate = run_node_tool(
        "openapi-typescript", f"{api_url}/api/schema/?format=json", "-o", "src/schema.d.ts"
    )
    assert generate.returncode == 0, generate.stdout + generate.stderr
    build = run_node_tool("tsc", "--strict", "-p", ".")
    assert build.returncode == 0, build.stdout + build.stderr
    scenario = run_node_tool(
        "node", "dist/scenario.js", TODO_API_URL=api_url, TODO_API_TOKEN=hs256_token("next-js-user")
    )

    assert scenario.returncode == 0, scenario.stdout + scenario.stderr
    assert scenario.stdout.strip() == "scenario passed"


def test_the_docs_sync_loop_is_the_tested_sync_ts():
    docs = (REPO / "docs" / "frontend.md").read_text()
    sync_ts = (CLIENT_DIR / "src" / "sync.ts").read_text()

    quoted = re.findall(r"^```ts\n(.*?)^```$", docs, flags=re.MULTILINE | re.DOTALL)

    assert sync_ts in quoted, "docs/frontend.md, Sync, must quote clients/typescript/src/sync.ts whole"
