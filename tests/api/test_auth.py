"""Bearer tokens and roles on a real daemon: who may call what, how a refusal reads, and that
a revoked or expired token is refused at once, without a restart."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from lifeboat.app.api.tokens import Role, create_token, tokens_path, utc_now
from tests.api.conftest import ROLES, Api

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "hint", "exit_code"}


def assert_problem(response: httpx.Response, status: int, exit_code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= PROBLEM_MEMBERS, body
    assert body["status"] == status and body["exit_code"] == exit_code
    assert body["type"].startswith("urn:lifeboat:problem:")
    assert body["title"] and body["detail"] and body["hint"]
    return dict(body)


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    body = assert_problem(response, 401, 2)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "lifeboat token create" in body["hint"]
    return body


def test_whoami_names_each_roles_token(api: Api) -> None:
    for role in ROLES:
        response = api.client(role).get("/api/v1/whoami")
        assert response.status_code == 200, response.text
        assert response.json() == {"name": f"{role}-token", "role": role}


def test_a_request_without_a_token_is_401_with_a_bearer_challenge(api: Api) -> None:
    body = assert_unauthorized(api.client().get("/api/v1/whoami"))
    assert body["type"] == "urn:lifeboat:problem:unauthorized"
    assert "bearer token" in body["detail"]


def test_a_wrong_token_and_tokens_outside_the_authorization_header_are_refused(api: Api) -> None:
    viewer = api.tokens["viewer"]
    wrong = viewer[:-4] + ("AAAA" if not viewer.endswith("AAAA") else "BBBB")
    response = api.client(token=wrong).get("/api/v1/whoami")
    body = assert_unauthorized(response)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert wrong not in response.text and viewer not in response.text  # a token is never repeated
    assert "wrong or revoked" in body["detail"]
    # the token's hash is no token
    from lifeboat.app.api.tokens import digest_of

    assert_unauthorized(api.client(token=digest_of(viewer)).get("/api/v1/whoami"))
    # only 'Authorization: Bearer' counts: not another scheme, a query parameter or a cookie
    plain = api.client()
    assert_unauthorized(plain.get("/api/v1/whoami", headers={"Authorization": f"Basic {viewer}"}))
    assert_unauthorized(plain.get("/api/v1/whoami", headers={"Authorization": viewer}))
    assert_unauthorized(plain.get("/api/v1/whoami", params={"token": viewer, "access_token": viewer}))
    assert_unauthorized(plain.get("/api/v1/whoami", headers={"Cookie": f"token={viewer}; lifeboat={viewer}"}))


def test_a_revoked_token_is_refused_by_the_next_request_without_a_restart(api: Api) -> None:
    token = api.token("short-lived", "operator")
    client = api.client(token=token)
    assert client.get("/api/v1/whoami").json() == {"name": "short-lived", "role": "operator"}
    revoked = api.cli("token", "revoke", "short-lived")
    assert revoked.code == 0, revoked
    assert "revoked token 'short-lived'" in revoked.stdout
    assert_unauthorized(client.get("/api/v1/whoami"))
    # the others still work: the daemon read the new file, it did not drop everything
    assert api.client("viewer").get("/api/v1/whoami").status_code == 200
    assert api.served.process.poll() is None
    again = api.cli("token", "revoke", "short-lived")
    assert again.code == 2 and "no token named 'short-lived'" in again.stderr


def test_an_expired_token_is_refused_and_says_so(api: Api) -> None:
    path = tokens_path(api.state)
    token, _record = create_token(path, "expired-one", Role.ADMIN, expires_in=timedelta(hours=1),
                                 now=utc_now() - timedelta(hours=2))  # fmt: skip
    body = assert_unauthorized(api.client(token=token).get("/api/v1/whoami"))
    assert "expired" in body["detail"] and "expired-one" in body["detail"]
    listed = api.cli("token", "list")
    assert listed.code == 0 and "expired " in next(line for line in listed.stdout.splitlines() if "expired-one" in line)
    # one that expires later works until then
    later = api.token("expires-later", "viewer", "--expires", "90d")
    assert api.client(token=later).get("/api/v1/whoami").status_code == 200
    shown = api.cli("--json", "token", "list")
    import json

    expires = {t["name"]: t for t in json.loads(shown.stdout)}["expires-later"]
    assert expires["expired"] is False and expires["expires"] > utc_now().isoformat()


def test_roles_are_ordered_and_an_under_privileged_token_is_403(api: Api) -> None:
    body = {"name": "made-by-api", "role": "viewer"}
    for role in ("viewer", "operator"):
        response = api.client(role).post("/api/v1/tokens", json=body)
        problem = assert_problem(response, 403, 2)
        assert problem["type"] == "urn:lifeboat:problem:forbidden"
        assert f"'{role}-token' has the role {role}; this needs admin" in problem["detail"]
        assert "www-authenticate" not in response.headers
        assert_problem(api.client(role).get("/api/v1/tokens"), 403, 2)
    # the admin may: and the token it got works, with its role
    created = api.client("admin").post("/api/v1/tokens", json=body)
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["name"] == "made-by-api" and made["role"] == "viewer" and made["token"].startswith("lb_")
    assert api.client(token=made["token"]).get("/api/v1/whoami").json() == {"name": "made-by-api", "role": "viewer"}
    listed = api.client("admin").get("/api/v1/tokens")
    assert listed.status_code == 200 and "made-by-api" in {t["name"] for t in listed.json()}
    assert made["token"] not in listed.text and "sha256" not in listed.text
    assert_problem(api.client("admin").post("/api/v1/tokens", json=body), 409, 2)
    assert api.client("admin").delete("/api/v1/tokens/made-by-api").status_code == 204
    assert_unauthorized(api.client(token=made["token"]).get("/api/v1/whoami"))
    assert_problem(api.client("admin").delete("/api/v1/tokens/made-by-api"), 404, 2)


def test_every_error_is_problem_json(api: Api) -> None:
    admin = api.client("admin")
    missing = assert_problem(admin.get("/api/v1/no-such-thing"), 404, 2)
    assert "/api/v1/no-such-thing" in missing["detail"]
    assert_problem(api.client().get("/nothing-here"), 404, 2)
    assert_problem(admin.put("/api/v1/whoami"), 405, 2)
    not_allowed = admin.put("/api/v1/tokens")
    assert_problem(not_allowed, 405, 2)
    assert not_allowed.headers["allow"] == "GET, POST"  # every method of the path, not the first route's
    extra = admin.post("/api/v1/tokens", json={"name": "x", "role": "viewer", "is_admin": True})
    assert_problem(extra, 422, 2)
    invalid = assert_problem(admin.post("/api/v1/tokens", json={"name": "bad name!", "role": "root"}), 422, 2)
    assert invalid["type"] == "urn:lifeboat:problem:invalid-request"
    assert {e["location"] for e in invalid["errors"]} == {"body.name", "body.role"}
    assert "bad name!" not in str(invalid)  # the input is not repeated: it may be a secret
    not_json = admin.post("/api/v1/tokens", content=b"{", headers={"Content-Type": "application/json"})
    assert_problem(not_json, 422, 2)
    for lifetime in (0, -5, "soon", "3600", True, 1.5, 10**12):
        bad = admin.post("/api/v1/tokens", json={"name": "x", "role": "viewer", "expires_in": lifetime})
        assert assert_problem(bad, 422, 2)["errors"][0]["location"] == "body.expires_in"


def test_the_openapi_schema_is_published_and_every_api_path_needs_a_token(api: Api) -> None:
    schema = api.client().get("/api/openapi.json")
    assert schema.status_code == 200
    doc = schema.json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token made by 'lifeboat token create', sent as 'Authorization: Bearer lb_…'.",
    }
    operations = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    api_ops = [(path, method, op) for path, method, op in operations if path.startswith("/api/")]
    assert ("/api/v1/whoami", "get") in {(p, m) for p, m, _ in api_ops}
    roles = {(p, m): op["x-required-role"] for p, m, op in api_ops}
    assert roles[("/api/v1/whoami", "get")] == "viewer" and roles[("/api/v1/tokens", "post")] == "admin"
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    assert set(doc["components"]["schemas"]["Problem"]["required"]) == PROBLEM_MEMBERS
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, method, op in api_ops:
        assert op.get("security") == [{"bearer": []}], (path, method)
        assert op["x-required-role"] in ROLES
        for status in ("401", "403", "default"):
            assert op["responses"][status]["content"]["application/problem+json"]["schema"] == problem_ref
        if "422" in op["responses"]:
            assert op["responses"]["422"]["content"] == {"application/problem+json": {"schema": problem_ref}}
        concrete = path.replace("{name}", "someone")
        assert_unauthorized(api.client().request(method.upper(), concrete))
    # no interactive docs pulled from a CDN
    assert api.client().get("/docs").status_code == 404
    assert api.client().get("/redoc").status_code == 404


def test_route_roles_names_the_role_of_every_api_route(api: Api) -> None:
    from lifeboat.app.api.app import create_app
    from lifeboat.app.api.auth import route_roles
    from lifeboat.app.api.tokens import TokenStore

    class View:
        def liveness(self) -> tuple[bool, dict[str, Any]]:
            return True, {}

        def metrics(self) -> bytes:
            return b""

        def api_tokens(self) -> TokenStore:
            return TokenStore(tokens_path(api.state))

        def audit_api_call(self, *args: Any) -> None:
            raise AssertionError("not called")

        def audit_ready(self) -> None:
            raise AssertionError("not called")

        def api_error(self, message: str, error: Exception) -> None:
            raise AssertionError(message)

    roles = route_roles(create_app(View()))
    assert roles[("GET", "/api/v1/whoami")] is Role.VIEWER
    assert roles[("POST", "/api/v1/tokens")] is Role.ADMIN
    assert roles[("DELETE", "/api/v1/tokens/{name}")] is Role.ADMIN
    assert roles[("GET", "/healthz")] is None and roles[("GET", "/metrics")] is None
    assert all(role is not None for (method, path), role in roles.items() if path.startswith("/api/v1/"))


def test_a_damaged_token_file_is_a_503_that_names_no_path_and_the_log_says_why(fresh_api: Api) -> None:
    api = fresh_api
    path = tokens_path(api.state)
    good = path.read_bytes()
    path.write_text("{damaged")
    response = api.client("admin").get("/api/v1/whoami")
    body = assert_problem(response, 503, 1)
    assert body["type"] == "urn:lifeboat:problem:tokens-unavailable"
    assert str(api.state) not in response.text and "api-tokens" not in response.text
    logged = api.served.wait_logged("api error")[0]
    assert "is damaged" in logged["error"] and logged["level"] == "error"
    path.write_bytes(good)  # mended: read again at the next request
    assert api.client("admin").get("/api/v1/whoami").status_code == 200
