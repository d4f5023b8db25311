"""A Next.js team's typed client, proven: TypeScript types generated from the live schema with
openapi-typescript, compiled with `tsc --strict`, run with openapi-fetch's default serialisation against
the API under gunicorn (clients/typescript/src/scenario.ts says what it checks)."""

import pytest

from tests.api_reference import install_client_tools, run_node_tool, served_api
from tests.live_server import hs256_token

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    install_client_tools()
    with served_api(tmp_path_factory.mktemp("client")) as server:
        yield server


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
