"""Mutating API calls in the audit log with the token's name; the browser's protections:
security headers on every answer, cross-site state changes refused, no CORS."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.api.conftest import Api


def api_entries(api: Api) -> list[dict[str, Any]]:
    return [e for e in api.audit_entries() if e["actor"].get("token") is not None]


def test_every_mutating_call_is_audited_with_the_tokens_name(fresh_api: Api) -> None:
    api = fresh_api
    admin = api.client("admin")
    before = len(api.audit_entries())
    created = admin.post("/api/v1/tokens", json={"name": "robot", "role": "operator", "expires_in": 3600})
    assert created.status_code == 201
    token = created.json()["token"]
    # the entry is there when the answer is
    entries = api_entries(api)
    assert len(entries) == 1
    entry = entries[0]
    assert entry["actor"]["token"] == "admin-token" and entry["actor"]["user"]
    assert entry["action"] == "token create"
    assert entry["arguments"] == {"name": "robot", "role": "operator", "expires_in": 3600}
    assert entry["result"] == {"status": "ok", "exit_code": 0, "error": None, "http_status": 201}
    # refused for the role: recorded, with the token that tried
    refused = api.client("viewer").post("/api/v1/tokens", json={"name": "sneaky", "role": "admin"})
    assert refused.status_code == 403
    # a failing call: its exit code and the problem's detail
    assert admin.delete("/api/v1/tokens/nobody").status_code == 404
    assert admin.delete("/api/v1/tokens/robot").status_code == 204
    # no token, a wrong token: nobody to name, not recorded; reads are not recorded
    assert api.client().post("/api/v1/tokens", json={"name": "x", "role": "admin"}).status_code == 401
    assert api.client(token="lb_" + "A" * 43).delete("/api/v1/tokens/robot").status_code == 401
    assert admin.get("/api/v1/tokens").status_code == 200
    assert admin.get("/api/v1/whoami").status_code == 200
    entries = api_entries(api)
    assert [(e["actor"]["token"], e["action"], e["result"]["status"], e["result"]["http_status"]) for e in entries] == [
        ("admin-token", "token create", "ok", 201),
        ("viewer-token", "api", "error", 403),
        ("admin-token", "token revoke", "error", 404),
        ("admin-token", "token revoke", "ok", 204),
    ]
    assert entries[1]["arguments"] == {"method": "POST", "path": "/api/v1/tokens"}
    assert entries[1]["result"]["exit_code"] == 2 and "this needs admin" in entries[1]["result"]["error"]
    assert entries[2]["arguments"] == {"name": "nobody"} and "no token named 'nobody'" in entries[2]["result"]["error"]
    text = (api.state / "audit.jsonl").read_text()
    assert token not in text and all(t not in text for t in api.tokens.values())
    # the chain stays intact with the daemon's entries in it
    verified = api.cli("audit", "verify", "--no-anchors")
    assert verified.code == 0, verified
    assert len(api.audit_entries()) >= before + 4


def test_security_headers_are_on_every_answer(api: Api) -> None:
    client = api.client("viewer")
    for response in (
        client.get("/api/v1/whoami"),
        api.client().get("/api/v1/whoami"),  # 401
        client.get("/nope"),  # 404
        client.get("/healthz"),
        client.get("/metrics"),
        client.get("/api/openapi.json"),
    ):
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, response.url
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
        assert "access-control-allow-origin" not in headers
        assert "server" not in headers  # no software banner
        assert "strict-transport-security" not in headers  # plain HTTP: only over TLS
        if response.url.path.startswith("/api/"):
            assert headers["cache-control"] == "no-store"
    assert "set-cookie" not in client.get("/api/v1/whoami").headers


def test_state_changes_from_another_site_are_refused_and_there_is_no_cors(api: Api) -> None:
    admin = api.client("admin")
    body = {"name": "from-browser", "role": "viewer"}
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": f"http://127.0.0.1:{api.port + 1}"},  # another port is another origin
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        refused = admin.post("/api/v1/tokens", json=body, headers=headers)
        assert refused.status_code == 403, (headers, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"] == "urn:lifeboat:problem:cross-site-request" and problem["exit_code"] == 2
        assert "access-control-allow-origin" not in refused.headers
        assert admin.delete("/api/v1/tokens/viewer-token", headers=headers).status_code == 403
    assert api.client("viewer").get("/api/v1/whoami").status_code == 200  # nothing was revoked
    assert "from-browser" not in admin.get("/api/v1/tokens").text
    # the same origin (the dashboard's own page) may
    own = admin.post("/api/v1/tokens", json=body, headers={"Origin": api.base_url, "Sec-Fetch-Site": "same-origin"})
    assert own.status_code == 201, own.text
    assert admin.delete("/api/v1/tokens/from-browser", headers={"Origin": api.base_url}).status_code == 204
    # reading from another site: answered, but with no CORS header a browser gives the page nothing
    read = admin.get("/api/v1/whoami", headers={"Origin": "http://evil.example"})
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers
    preflight = api.client().options(
        "/api/v1/tokens",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"},
    )  # fmt: skip
    assert preflight.status_code >= 400 and not any(h.startswith("access-control-") for h in preflight.headers)


def test_with_audit_required_a_change_whose_entry_cannot_be_written_is_not_made(
    tmp_path: Path, api_factory: Callable[..., Api]
) -> None:
    audit_dir = tmp_path / "world0" / "audit"
    api = api_factory(extra=f"audit:\n  path: {audit_dir / 'audit.jsonl'}\n  required: true\n")
    admin = api.client("admin")
    assert admin.post("/api/v1/tokens", json={"name": "while-fine", "role": "viewer"}).status_code == 201
    shutil.rmtree(audit_dir)
    audit_dir.write_text("a file where the log's directory was\n")  # appends fail now, even for root
    refused = admin.post("/api/v1/tokens", json={"name": "while-broken", "role": "viewer"})
    assert refused.status_code == 503, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:lifeboat:problem:audit-unavailable" and problem["exit_code"] == 1
    assert str(audit_dir) not in refused.text
    assert "while-broken" not in admin.get("/api/v1/tokens").text  # nothing was changed
    assert admin.get("/api/v1/whoami").status_code == 200  # reads go on
    logged = api.served.wait_logged("api error")[0]
    assert "cannot write the audit log" in logged["error"]
    audit_dir.unlink()  # mended: changes are made and recorded again
    assert admin.post("/api/v1/tokens", json={"name": "mended", "role": "viewer"}).status_code == 201
    entries = api.audit_entries_at(audit_dir / "audit.jsonl")
    assert [(e["actor"]["token"], e["arguments"].get("name")) for e in entries] == [("admin-token", "mended")]
