"""Interop with a real Better Auth 1.7 server, through real HTTP only.

Users sign up with Better Auth (email + password), take their JWT from
GET /api/auth/token, and call our API (gunicorn + PostgreSQL) with it.

Run alone with:  .venv/bin/python -m pytest e2e -m e2e -p no:cacheprovider
"""

import json
import secrets
import subprocess
import time
from urllib.parse import quote

import jwt as pyjwt
import pytest
from e2e_support import ALGORITHMS, BA_DIR, PASSWORD, base_env, jwt_parts

from authbridge.verifier import MAX_TOKEN_LENGTH
from tasks.filters import MAX_SEARCH_LENGTH
from tasks.representation import TASK_FIELDS

pytestmark = [pytest.mark.e2e, pytest.mark.live]

# What Better Auth publishes for each algorithm (no "use" member, kid = the key row id).
JWK_SHAPES = {
    "EdDSA": {"kty": "OKP", "crv": "Ed25519", "members": {"alg", "kid", "kty", "crv", "x"}},
    "ES256": {"kty": "EC", "crv": "P-256", "members": {"alg", "kid", "kty", "crv", "x", "y"}},
    "ES512": {"kty": "EC", "crv": "P-521", "members": {"alg", "kid", "kty", "crv", "x", "y"}},
    "RS256": {"kty": "RSA", "crv": None, "members": {"alg", "kid", "kty", "n", "e"}},
    "PS256": {"kty": "RSA", "crv": None, "members": {"alg", "kid", "kty", "n", "e"}},
}


def _check_task(task, **expected):
    assert set(task) == set(TASK_FIELDS), task
    for name, value in expected.items():
        assert task[name] == value, (name, task)
    return task


def _wait_for_new_kid(user, old_kids, timeout=20):
    """Request tokens until Better Auth signs with a key not in old_kids (lazy rotation)."""
    deadline = time.monotonic() + timeout
    while True:
        token = user.token()
        kid = jwt_parts(token)[0]["kid"]
        if kid not in old_kids:
            return token, kid
        assert time.monotonic() < deadline, f"Better Auth kept signing with {kid} for {timeout}s"
        time.sleep(0.25)


# ------------------------------------------------------------- the main stack


@pytest.fixture(scope="module")
def alice(main_stack):
    return main_stack.ba.sign_up("Alice")


@pytest.fixture(scope="module")
def bob(main_stack):
    return main_stack.ba.sign_up("Bob")


def test_better_auth_token_and_jwks_shape(main_stack, alice):
    token = alice.token()
    header, claims = jwt_parts(token)
    assert header == {"alg": "EdDSA", "kid": header["kid"]}  # Better Auth sets no "typ"
    assert claims["sub"] == claims["id"] == alice.id
    assert claims["iss"] == claims["aud"] == main_stack.ba.url
    assert claims["email"] == alice.email and claims["name"] == "Alice"
    assert claims["emailVerified"] is False
    assert claims["exp"] - claims["iat"] == 15 * 60
    keys = main_stack.ba.jwks()["keys"]
    assert [key["kid"] for key in keys] == [header["kid"]]
    assert set(keys[0]) == JWK_SHAPES["EdDSA"]["members"]


def test_me_returns_what_better_auth_holds(main_stack, alice):
    response = main_stack.api.get("/api/v1/me", token=alice.token())
    assert response.status == 200, response
    assert response.json() == {"id": alice.id, "email": alice.email, "name": "Alice"}
    # A new session (sign-in) gives a new token for the same user.
    again = main_stack.ba.sign_in(alice.email)
    assert again.id == alice.id and again.cookie != alice.cookie
    response = main_stack.api.get("/api/v1/me", token=again.token())
    assert response.status == 200 and response.json()["id"] == alice.id, response


def test_me_with_unicode_name_and_mixed_case_email(main_stack):
    email = f"Zoe.{secrets.token_hex(3)}@Example.COM"
    zoe = main_stack.ba.sign_up("Zoë Ångström 😀", email=email)
    held = main_stack.ba.get("/api/auth/get-session", headers={"Cookie": zoe.cookie}).json()["user"]
    response = main_stack.api.get("/api/v1/me", token=zoe.token())
    assert response.status == 200, response
    assert response.json() == {"id": zoe.id, "email": held["email"], "name": "Zoë Ångström 😀"}


def test_a_6_kb_token_of_a_long_name_and_image_url_works_with_a_long_search(main_stack):
    """Better Auth's token carries the whole user: a long avatar URL makes it large. Our gunicorn
    passes every token the verifier accepts, and a search at its maximum in 4-byte characters."""
    name = "Wilhelmina " + "Featherstonehaugh-" * 13  # 245 characters: within our 255
    image = "https://avatars.example.com/u/" + "a1b2c3d4" * 575 + ".png"
    user = main_stack.ba.sign_up(name, email=f"wilhelmina-{secrets.token_hex(4)}@example.com", image=image)
    token = user.token()
    assert jwt_parts(token)[1]["image"] == image
    assert 6 * 1024 <= len(token) <= MAX_TOKEN_LENGTH, len(token)

    me = main_stack.api.get("/api/v1/me", token=token)
    assert me.status == 200, me
    assert me.json()["name"] == name

    search = quote("\U0001f600" * MAX_SEARCH_LENGTH)
    listed = main_stack.api.get(f"/api/v1/tasks?search={search}", token=token)
    assert listed.status == 200, listed
    assert listed.json()["count"] == 0
    too_long = main_stack.api.get(f"/api/v1/tasks?search={search}{quote(chr(0x1F600))}", token=token)
    assert too_long.status == 400, too_long
    assert too_long.json()["fields"] == {"search": [f"At most {MAX_SEARCH_LENGTH} characters."]}


@pytest.mark.parametrize(
    "avatar_length, status, code",
    [(8_000, 401, "invalid_token"), (14_000, 431, "request_header_fields_too_large")],
    ids=["over the verifier's maximum", "over gunicorn's header limit"],
)
def test_a_token_too_large_is_a_json_4xx(main_stack, avatar_length, status, code):
    image = "https://avatars.example.com/u/" + "z" * avatar_length
    token = main_stack.ba.sign_up("Oversized", image=image).token()
    assert len(token) > MAX_TOKEN_LENGTH

    response = main_stack.api.get("/api/v1/me", token=token)

    assert response.status == status, response
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == code


def test_v1_crud(main_stack, alice):
    api, token = main_stack.api, alice.token()
    created = api.request(
        "POST", "/api/v1/tasks", token=token, json_body={"title": "Buy milk", "description": "2 litres"}
    )
    assert created.status == 201, created
    task = _check_task(created.json(), title="Buy milk", description="2 litres", completed=False)
    task_id = task["id"]

    listed = api.get("/api/v1/tasks", token=token)
    assert listed.status == 200, listed
    assert set(listed.json()) == {"count", "next", "previous", "results"}
    assert task_id in [t["id"] for t in listed.json()["results"]]
    assert listed.json()["count"] == len(listed.json()["results"])

    got = api.get(f"/api/v1/tasks/{task_id}", token=token)
    assert got.status == 200 and got.json() == task, got

    put = api.request(
        "PUT",
        f"/api/v1/tasks/{task_id}",
        token=token,
        json_body={"title": "Buy oat milk", "description": "", "completed": True},
    )
    assert put.status == 200, put
    _check_task(put.json(), id=task_id, title="Buy oat milk", description="", completed=True)

    patched = api.request("PATCH", f"/api/v1/tasks/{task_id}", token=token, json_body={"completed": False})
    assert patched.status == 200, patched
    _check_task(patched.json(), id=task_id, title="Buy oat milk", completed=False)

    invalid = api.request("POST", "/api/v1/tasks", token=token, json_body={"description": "no title"})
    assert invalid.status == 400, invalid

    deleted = api.request("DELETE", f"/api/v1/tasks/{task_id}", token=token)
    assert deleted.status == 204, deleted
    assert api.get(f"/api/v1/tasks/{task_id}", token=token).status == 404


def test_compatibility_routes(main_stack, alice):
    api, token, base = main_stack.api, alice.token(), f"/api/{alice.id}/tasks"
    created = api.request("POST", base, token=token, json_body={"title": "Write report"})
    assert created.status == 201, created
    task = _check_task(created.json(), title="Write report", completed=False)
    task_id = task["id"]

    listed = api.get(base, token=token)
    assert listed.status == 200, listed
    assert isinstance(listed.json(), list) and task_id in [t["id"] for t in listed.json()]

    assert api.get(f"{base}/{task_id}", token=token).json() == task

    put = api.request(
        "PUT",
        f"{base}/{task_id}",
        token=token,
        json_body={"title": "Write the report", "description": "by Friday"},
    )
    assert put.status == 200, put
    _check_task(put.json(), title="Write the report", description="by Friday")

    patched = api.request("PATCH", f"{base}/{task_id}", token=token, json_body={"description": "by Monday"})
    assert patched.status == 200, patched
    _check_task(patched.json(), title="Write the report", description="by Monday", completed=False)

    toggled = api.request("PATCH", f"{base}/{task_id}/complete", token=token)
    assert toggled.status == 200, toggled
    _check_task(toggled.json(), id=task_id, completed=True)
    toggled = api.request("PATCH", f"{base}/{task_id}/complete", token=token)
    assert toggled.status == 200 and toggled.json()["completed"] is False, toggled

    # The same task through /api/v1.
    assert api.get(f"/api/v1/tasks/{task_id}", token=token).json()["title"] == "Write the report"

    deleted = api.request("DELETE", f"{base}/{task_id}", token=token)
    assert deleted.status == 204, deleted
    assert api.get(f"{base}/{task_id}", token=token).status == 404


def test_users_are_isolated(main_stack, alice, bob):
    api = main_stack.api
    alice_token, bob_token = alice.token(), bob.token()
    task = api.request(
        "POST", "/api/v1/tasks", token=alice_token, json_body={"title": "Alice's secret"}
    ).json()
    task_id = task["id"]

    bob_list = api.get("/api/v1/tasks", token=bob_token)
    assert bob_list.status == 200 and task_id not in [t["id"] for t in bob_list.json()["results"]], bob_list
    for method, body in (
        ("GET", None),
        ("PUT", {"title": "hacked"}),
        ("PATCH", {"title": "hacked"}),
        ("DELETE", None),
    ):
        response = api.request(method, f"/api/v1/tasks/{task_id}", token=bob_token, json_body=body)
        assert response.status == 404, (method, response)
        response = api.request(method, f"/api/{bob.id}/tasks/{task_id}", token=bob_token, json_body=body)
        assert response.status == 404, (method, "own compat route", response)
    assert api.request("PATCH", f"/api/{bob.id}/tasks/{task_id}/complete", token=bob_token).status == 404

    # Alice's compatibility routes with Bob's token: the path user is not the token's.
    for method, path, body in (
        ("GET", f"/api/{alice.id}/tasks", None),
        ("POST", f"/api/{alice.id}/tasks", {"title": "planted"}),
        ("GET", f"/api/{alice.id}/tasks/{task_id}", None),
        ("PUT", f"/api/{alice.id}/tasks/{task_id}", {"title": "hacked"}),
        ("PATCH", f"/api/{alice.id}/tasks/{task_id}", {"title": "hacked"}),
        ("DELETE", f"/api/{alice.id}/tasks/{task_id}", None),
        ("PATCH", f"/api/{alice.id}/tasks/{task_id}/complete", None),
    ):
        response = api.request(method, path, token=bob_token, json_body=body)
        assert response.status == 403, (method, path, response)

    # Nothing of Alice's changed, and Bob's requests planted nothing in her list.
    assert api.get(f"/api/v1/tasks/{task_id}", token=alice_token).json() == task
    titles = [t["title"] for t in api.get(f"/api/{alice.id}/tasks", token=alice_token).json()]
    assert "planted" not in titles and "hacked" not in titles


def test_requests_without_a_valid_token_get_401(main_stack, alice):
    api = main_stack.api
    missing = api.get("/api/v1/tasks")
    assert missing.status == 401, missing
    assert missing.headers.get("www-authenticate", "").lower().startswith("bearer"), missing.headers
    assert api.get("/api/v1/tasks", token="not-a-jwt").status == 401

    token = alice.token()
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert api.get("/api/v1/me", token=f"{header}.{payload}.{flipped}").status == 401
    # Claims of one token under another's signature.
    bob_payload = main_stack.ba.sign_up("Mallory").token().split(".")[1]
    assert api.get("/api/v1/me", token=f"{header}.{bob_payload}.{signature}").status == 401
    # The session token itself (not a JWT) is refused.
    session_token = alice.cookie.split("=", 1)[1].split(".")[0]
    assert api.get("/api/v1/me", token=session_token).status == 401


def test_hs256_shared_secret_tokens(main_stack):
    """The alternative to JWKS: the frontend signs HS256 with BETTER_AUTH_SECRET itself."""
    api, now = main_stack.api, int(time.time())
    claims = {
        "sub": f"hs-{secrets.token_hex(6)}",
        "email": "hs@example.com",
        "name": "Hs User",
        "iat": now,
        "exp": now + 300,
        "iss": main_stack.ba.url,
        "aud": main_stack.ba.url,
    }
    token = pyjwt.encode(claims, main_stack.ba.secret, algorithm="HS256")
    response = api.get("/api/v1/me", token=token)
    assert response.status == 200, response
    assert response.json() == {"id": claims["sub"], "email": "hs@example.com", "name": "Hs User"}

    wrong_secret = pyjwt.encode(claims, secrets.token_urlsafe(32), algorithm="HS256")
    assert api.get("/api/v1/me", token=wrong_secret).status == 401
    no_exp = pyjwt.encode(
        {k: v for k, v in claims.items() if k != "exp"}, main_stack.ba.secret, algorithm="HS256"
    )
    assert api.get("/api/v1/me", token=no_exp).status == 401
    other_aud = pyjwt.encode({**claims, "aud": "http://127.0.0.1:1"}, main_stack.ba.secret, algorithm="HS256")
    assert api.get("/api/v1/me", token=other_aud).status == 401


def test_documented_client_flow(main_stack):
    """docs/better-auth.md's client code (better-auth/client + jwtClient, jose) in Node."""
    email = f"frank-{secrets.token_hex(4)}@example.com"
    env = {
        **base_env(),
        "BETTER_AUTH_URL": main_stack.ba.url,
        "EMAIL": email,
        "NAME": "Frank",
        "PASSWORD": PASSWORD,
        "HS256_SECRET": main_stack.ba.secret,
    }
    result = subprocess.run(
        ["node", "client.mjs"], cwd=BA_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {"id": out["user"]["id"], "email": email, "name": "Frank"}
    for kind in ("token", "sessionHeaderToken", "hs256Token"):
        response = main_stack.api.get("/api/v1/me", token=out[kind])
        assert response.status == 200, (kind, response)
        assert response.json() == expected, kind


# ------------------------------------------------------------- other stacks


@pytest.mark.parametrize("alg", [alg for alg in ALGORITHMS if alg != "EdDSA"])  # EdDSA: the main stack
def test_every_better_auth_algorithm_is_accepted(alg, start_stack, main_stack):
    stack = start_stack(alg=alg)
    try:
        carol = stack.ba.sign_up("Carol")
        token = carol.token()
        header, claims = jwt_parts(token)
        assert header["alg"] == alg and claims["sub"] == carol.id and claims["iss"] == stack.ba.url

        keys = stack.ba.jwks()["keys"]
        assert len(keys) == 1 and keys[0]["kid"] == header["kid"] and keys[0]["alg"] == alg
        shape = JWK_SHAPES[alg]
        assert set(keys[0]) == shape["members"] and keys[0]["kty"] == shape["kty"]
        assert keys[0].get("crv") == shape["crv"]

        me = stack.api.get("/api/v1/me", token=token)
        assert me.status == 200, (alg, me)
        assert me.json() == {"id": carol.id, "email": carol.email, "name": "Carol"}
        created = stack.api.request("POST", f"/api/{carol.id}/tasks", token=token, json_body={"title": alg})
        assert created.status == 201, (alg, created)
        listed = stack.api.get("/api/v1/tasks", token=token).json()
        assert [t["title"] for t in listed["results"]] == [alg]

        # An API that trusts another Better Auth server refuses this one's tokens.
        assert main_stack.api.get("/api/v1/me", token=token).status == 401
    finally:
        stack.stop()


def test_expired_token_gets_401_and_stale_keys_outlive_an_outage(start_stack):
    stack = start_stack(expiration="4s", api_env={"BETTER_AUTH_LEEWAY": "0", "BETTER_AUTH_JWKS_TTL": "1"})
    try:
        dave = stack.ba.sign_up("Dave")
        token = dave.token()
        claims = jwt_parts(token)[1]
        assert claims["exp"] - claims["iat"] == 4
        assert stack.api.get("/api/v1/me", token=token).status == 200
        time.sleep(max(0.0, claims["exp"] + 1.2 - time.time()))
        expired = stack.api.get("/api/v1/me", token=token)
        assert expired.status == 401, expired
        fresh = dave.token()
        assert stack.api.get("/api/v1/me", token=fresh).status == 200

        # Better Auth goes away; past the JWKS TTL the API keeps the last key set it got.
        stack.ba.stop()
        time.sleep(1.5)
        response = stack.api.get("/api/v1/me", token=fresh)
        assert response.status == 200, ("seen key past the JWKS TTL, Better Auth down", response)
    finally:
        stack.stop()


def test_localhost_and_127_0_0_1_are_different_issuers(start_stack):
    """The API reaches the same server as http://localhost:PORT, but Better Auth signs
    iss = aud = http://127.0.0.1:PORT: its tokens must be refused, not half-trusted."""
    stack = start_stack(api_host="localhost")
    try:
        token = stack.ba.sign_up("Ivan").token()
        response = stack.api.get("/api/v1/me", token=token)
        assert response.status == 401, response
        assert response.json()["message"] == "Invalid token: the token issuer is not accepted.", response
    finally:
        stack.stop()


def test_api_started_while_better_auth_is_down_answers_503(start_stack):
    stack = start_stack()
    try:
        token = stack.ba.sign_up("Grace").token()
        stack.ba.stop()
        response = stack.api.get("/api/v1/tasks", token=token)
        assert response.status == 503, ("no key ever fetched, JWKS unreachable", response)
        assert int(response.headers["retry-after"]) > 0, response.headers
        assert response.json()["status"] == 503, response
        # A token that is not even well-formed is still a 401, not a 503.
        assert stack.api.get("/api/v1/tasks", token="not-a-jwt").status == 401
    finally:
        stack.stop()


def test_key_rotation_and_jwks_outage(start_stack):
    """Better Auth rotates lazily: a key lives `rotationInterval` seconds, the next token
    after that mints a new key, and the old one stays in the JWKS for `gracePeriod`."""
    # The API's JWKS TTL stays at its default (300 s): only the unknown kid makes it refetch.
    stack = start_stack(
        rotation_interval=3, grace_period=300, api_env={"BETTER_AUTH_JWKS_REFETCH_INTERVAL": "1"}
    )
    api, ba = stack.api, stack.ba
    erin = ba.sign_up("Erin")
    token1 = erin.token()
    kid1 = jwt_parts(token1)[0]["kid"]
    assert api.get("/api/v1/me", token=token1).status == 200

    # Rotation: Better Auth signs with a new key; the API takes it without a restart.
    token2, kid2 = _wait_for_new_kid(erin, {kid1})
    assert {key["kid"] for key in ba.jwks()["keys"]} == {kid1, kid2}
    response = api.get("/api/v1/me", token=token2)
    assert response.status == 200, ("token of the rotated-in key", response)
    created = api.request("POST", "/api/v1/tasks", token=token2, json_body={"title": "after rotation"})
    assert created.status == 201, created
    # ...and tokens of the previous key still work during the grace period.
    response = api.get("/api/v1/tasks", token=token1)
    assert response.status == 200, ("token of the previous key", response)
    assert [t["title"] for t in response.json()["results"]] == ["after rotation"]

    # A third key the API has never seen, then Better Auth goes away.
    token3, _kid3 = _wait_for_new_kid(erin, {kid1, kid2})
    ba.stop()
    time.sleep(1.2)  # past the API's refetch interval, so an unknown kid does try to refetch
    for name, token in (("token1", token1), ("token2", token2)):
        response = api.get("/api/v1/me", token=token)
        assert response.status == 200, (f"{name}: seen key while Better Auth is down", response)
    unseen = api.get("/api/v1/me", token=token3)
    assert unseen.status == 503, ("unseen kid while Better Auth is down", unseen)
    assert int(unseen.headers["retry-after"]) > 0, unseen.headers

    # The API did not learn the new key meanwhile, and the seen ones still work.
    assert api.get("/api/v1/me", token=token3).status == 503
    assert api.get("/api/v1/me", token=token1).status == 200
    stack.stop()


def test_a_key_rotated_in_after_the_apis_fetch_is_401_until_its_refetch_interval_ends(start_stack):
    """The rotation window of docs/better-auth.md, section 6: never a 5xx, and it ends."""
    refetch_interval = 8  # long beside the 2 s rotation, so the new key surely lands inside it
    stack = start_stack(
        rotation_interval=2,
        grace_period=300,
        api_env={"BETTER_AUTH_JWKS_REFETCH_INTERVAL": str(refetch_interval)},
    )
    try:
        api, ba = stack.api, stack.ba
        judy = ba.sign_up("Judy")
        token1 = judy.token()
        fetched = time.monotonic()
        assert api.get("/api/v1/me", token=token1).status == 200  # the API's one fetch

        token2, _ = _wait_for_new_kid(judy, {jwt_parts(token1)[0]["kid"]})
        refused = api.get("/api/v1/me", token=token2)
        assert time.monotonic() - fetched < refetch_interval, "the new key came too late to test the window"
        assert refused.status == 401, ("a key newer than the API's key set", refused)
        assert refused.json()["code"] == "invalid_token", refused

        time.sleep(max(0, fetched + refetch_interval + 0.2 - time.monotonic()))
        accepted = api.get("/api/v1/me", token=token2)
        assert accepted.status == 200, ("the same token once the refetch interval has passed", accepted)
    finally:
        stack.stop()


def test_a_key_past_its_grace_period_is_refused(start_stack):
    """Once Better Auth stops publishing a key, the API's next JWKS fetch drops it too."""
    stack = start_stack(
        rotation_interval=2, grace_period=2, api_env={"BETTER_AUTH_JWKS_REFETCH_INTERVAL": "1"}
    )
    try:
        api, ba = stack.api, stack.ba
        ivan = ba.sign_up("Ivan")
        token1 = ivan.token()
        kid1 = jwt_parts(token1)[0]["kid"]
        assert api.get("/api/v1/me", token=token1).status == 200
        token2, kid2 = _wait_for_new_kid(ivan, {kid1})
        assert api.get("/api/v1/me", token=token2).status == 200
        assert api.get("/api/v1/me", token=token1).status == 200  # in its grace period

        deadline = time.monotonic() + 20
        while kid1 in {key["kid"] for key in ba.jwks()["keys"]}:  # gone after 2 s + 2 s
            assert time.monotonic() < deadline, "Better Auth kept publishing the expired key"
            time.sleep(0.25)
        # A token of a new key makes the API refetch; the unpublished key goes with it.
        token3, _ = _wait_for_new_kid(ivan, {kid1, kid2})
        assert api.get("/api/v1/me", token=token3).status == 200
        refused = api.get("/api/v1/me", token=token1)
        assert refused.status == 401, ("token of a key Better Auth no longer publishes", refused)
    finally:
        stack.stop()
