"""Bearer tokens and roles on a real daemon: who may call what, and the answers' shapes."""

from __future__ import annotations

from tests.api.conftest import ROLES, Api


def test_whoami_names_each_roles_token(api: Api) -> None:
    for role in ROLES:
        response = api.client(role).get("/api/v1/whoami")
        assert response.status_code == 200, response.text
        assert response.json() == {"name": f"{role}-token", "role": role}
