"""The daemon's API fuzzed from its own OpenAPI schema (schemathesis) on a real ``lifeboat
serve`` over a real repository with real backups, with secrets planted in every place a secret
can be (tests/api/qa_world.py):

- no generated request — valid (positive) or not (negative) — gets a 5xx;
- every response conforms to the schema: its status code, content type, headers and body;
- no response, body or headers, holds a planted secret (the repository passphrase, every API
  token, the catalog's password, a storage option's key id, the S3 secret key, the webhook's
  URL token and HMAC secret);
- every endpoint refuses a missing, a wrong and an under-privileged token (401 with
  ``WWW-Authenticate: Bearer``, 403), each a problem JSON; the endpoints and the role each
  requires are read from the FastAPI app itself (tests/api/qa_routes.py), so an endpoint added
  later is probed without being listed, and one without a role must be declared public;
- every reading operation asked about things that exist answers 200 by its schema, and the
  actions (start a verify, cancel it, start a drill) done for real answer by theirs.

Bounded: ``LIFEBOAT_FUZZ_EXAMPLES`` (default 12) positive and two thirds as many negative
examples per operation, no shrinking, each request timed out after 15 s. Reading operations
are fuzzed with the admin token (it sees the most); changing ones with exactly the role they
require, against this test's throwaway daemon.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.api.qa_routes import PUBLIC, ROLE_ORDER, Endpoint, build_app, endpoints
from tests.api.qa_world import QaWorld, make_world

EXAMPLES = int(os.environ.get("LIFEBOAT_FUZZ_EXAMPLES", "12"))
NEGATIVE_EXAMPLES = max(1, EXAMPLES * 2 // 3)
REQUEST_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def world() -> Iterator[QaWorld]:
    made = make_world()
    try:
        made.serve()
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def app_endpoints() -> list[Endpoint]:
    return endpoints(build_app())


@pytest.fixture(scope="module")
def schema_path() -> str:
    path = build_app().openapi_url
    assert path, "the app publishes no OpenAPI schema"
    return path


@pytest.fixture(scope="module")
def real(world: QaWorld) -> dict[str, str]:
    """Real values for path parameters: a snapshot, another one, a run, a job, sources."""
    listed = json.loads(world.must("--json", "snapshots").stdout)
    files = [s for s in listed if s["source"] == "files"]
    assert len(files) >= 2, listed
    from lifeboat.app.daemon.catalog import open_catalog

    catalog = open_catalog(world.catalog_url, state_dir=str(world.state), host="qa")
    try:
        runs = catalog.runs(limit=10)
    finally:
        catalog.close()
    assert runs, "the daemon recorded no run"
    return {
        "snapshot": files[0]["id"],
        "other": files[1]["id"],
        "run": str(runs[0].id),
        "job": "verify:files",
        "source": "files",
        "postgres": "db",
        "token": "qa-nobody",
    }


def path_values(endpoint: Endpoint, real: dict[str, str]) -> dict[str, str]:
    """Each parameter of ``endpoint``'s path filled with a real value of what it names."""
    values: dict[str, str] = {}
    for name in endpoint.params:
        segment = endpoint.path.split("{" + name)[0].rstrip("/").rsplit("/", 1)[-1]
        if name in ("other",):
            values[name] = real["other"]
        elif segment == "snapshots" or name in ("snapshot", "snapshot_id"):
            values[name] = real["snapshot"]
        elif segment == "runs" or name in ("run", "run_id"):
            values[name] = real["run"]
        elif segment == "jobs" or name in ("job",):
            values[name] = real["job"]
        elif segment == "postgres":
            values[name] = real["postgres"]
        elif segment == "tokens":
            values[name] = real["token"]
        else:
            values[name] = real["source"]
    return values


def leaks(world: QaWorld, response: httpx.Response | Any) -> list[str]:
    """The names of the planted secrets found in ``response`` (body or headers)."""
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    content = response.content if isinstance(response.content, bytes) else b""
    text = content.decode("utf-8", "replace") + "\n" + headers
    return [name for name, value in world.secrets.items() if value in text]


# --- the app's own endpoints against its schema ------------------------------------------------
def test_every_endpoint_is_in_the_served_schema_or_declared_public(
    world: QaWorld, app_endpoints: list[Endpoint], schema_path: str
) -> None:
    served = httpx.get(world.base_url + schema_path, timeout=REQUEST_TIMEOUT)
    assert served.status_code == 200
    assert not leaks(world, served)
    documented = {
        (method.upper(), path)
        for path, item in served.json()["paths"].items()
        for method in item
        if method != "parameters"
    }
    in_app = {(e.method, e.path) for e in app_endpoints if e.in_schema}
    assert documented - {(m, p) for m, p in documented if m == "HEAD"} == in_app
    unprotected = [str(e) for e in app_endpoints if e.role is None and e.path not in PUBLIC]
    assert not unprotected, f"endpoints without a role that are not declared public: {unprotected}"
    assert any(e.role for e in app_endpoints), "no endpoint requires a role: the role derivation found nothing"
    # the same roles as the app's own account of them (app/api/auth.py route_roles)
    from lifeboat.app.api.auth import route_roles

    theirs = {key: (role.label if role is not None else None) for key, role in route_roles(build_app()).items()}
    ours = {(e.method, e.path): e.role for e in app_endpoints if e.api_route}
    assert ours == {key: role for key, role in theirs.items() if key[0] != "HEAD"}


# --- authentication: missing, wrong, under-privileged ---------------------------------------------
def _refusal(response: httpx.Response, status: int, what: str) -> list[str]:
    problems = []
    if response.status_code != status:
        return [f"{what}: {response.status_code} (expected {status}): {response.text[:300]}"]
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        problems.append(f"{what}: content type {response.headers.get('content-type')!r}, not problem JSON")
    else:
        body = response.json()
        if body.get("status") != status or not body.get("title"):
            problems.append(f"{what}: problem body {body}")
    if status == 401 and not response.headers.get("www-authenticate", "").lower().startswith("bearer"):
        problems.append(f"{what}: no 'WWW-Authenticate: Bearer' header")
    return problems


def test_every_endpoint_refuses_a_missing_a_wrong_and_an_under_privileged_token(
    world: QaWorld, app_endpoints: list[Endpoint], real: dict[str, str]
) -> None:
    admin = world.tokens["admin"]
    near_miss = admin[:-1] + ("A" if admin[-1] != "A" else "B")
    wrong: dict[str, dict[str, str]] = {
        "no token": {},
        "a made-up token": {"Authorization": "Bearer lb_" + "x" * 43},
        "the admin token with one character changed": {"Authorization": f"Bearer {near_miss}"},
        "the admin token under the Basic scheme": {
            "Authorization": "Basic " + base64.b64encode(f"admin:{admin}".encode()).decode()
        },
        "the admin token as a query parameter": {},
        "a bearer without a token": {"Authorization": "Bearer"},
    }
    problems: list[str] = []
    probed = 0
    with httpx.Client(base_url=world.base_url, timeout=REQUEST_TIMEOUT) as client:
        for endpoint in app_endpoints:
            url = endpoint.url(path_values(endpoint, real))
            body = {"json": {}} if endpoint.mutating else {}
            if endpoint.role is None:
                answer = client.request(endpoint.method, url, **body)  # type: ignore[arg-type]
                if answer.status_code >= 500:
                    problems.append(f"{endpoint} (public): {answer.status_code}")
                problems += [f"{endpoint} (public) leaks the {name}" for name in leaks(world, answer)]
                continue
            for what, headers in wrong.items():
                params = {"token": admin, "access_token": admin} if "query" in what else None
                answer = client.request(endpoint.method, url, headers=headers, params=params, **body)  # type: ignore[arg-type]
                probed += 1
                problems += _refusal(answer, 401, f"{endpoint} with {what}")
                problems += [f"{endpoint} with {what} leaks the {name}" for name in leaks(world, answer)]
            for role in ROLE_ORDER[: ROLE_ORDER.index(endpoint.role)]:
                headers = {"Authorization": f"Bearer {world.tokens[role]}"}
                answer = client.request(endpoint.method, url, headers=headers, **body)  # type: ignore[arg-type]
                probed += 1
                problems += _refusal(answer, 403, f"{endpoint} with a {role} token (needs {endpoint.role})")
                problems += [f"{endpoint} as {role} leaks the {name}" for name in leaks(world, answer)]
            if not endpoint.mutating:  # the role it requires is enough (the derivation is not too high)
                headers = {"Authorization": f"Bearer {world.tokens[endpoint.role]}"}
                answer = client.request(endpoint.method, url, headers=headers)
                probed += 1
                if answer.status_code in (401, 403):
                    problems.append(f"{endpoint} refuses its own role {endpoint.role}: {answer.text[:300]}")
                problems += [f"{endpoint} as {endpoint.role} leaks the {name}" for name in leaks(world, answer)]
    assert probed > 0
    assert not problems, "\n".join(problems)


# --- the fuzz ---------------------------------------------------------------------------------
def no_planted_secret(world: QaWorld, statuses: dict[str, list[int]]) -> Any:
    """A schemathesis check: no planted secret in the response (body or headers); it also
    keeps each operation's statuses, to show the fuzz got past authentication."""

    def check(ctx: Any, response: Any, case: Any) -> bool | None:
        statuses.setdefault(case.operation.label, []).append(response.status_code)
        found = [name for name, value in world.secrets.items() if value in response.text or any(
            value in f"{k}: {v}" for k, v in response.headers.items())]  # fmt: skip
        if found:
            raise AssertionError(f"the response holds the {', '.join(found)}")
        return None

    check.__name__ = "no_planted_secret"
    return check


def fuzz_operation(
    world: QaWorld, operation: Any, mode: GenerationMode, examples: int, *, check: Any,
    calls: dict[str, int],
) -> str | None:  # fmt: skip
    """Up to ``examples`` generated requests to ``operation``, each response validated by
    schemathesis's checks and ``check``; the first failure, described, or None."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the failure is shown as found
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    def fuzz(case: Any) -> None:
        calls[operation.label] = calls.get(operation.label, 0) + 1
        case.call_and_validate(
            base_url=world.base_url,
            additional_checks=[check],
            timeout=REQUEST_TIMEOUT,
        )

    try:
        fuzz()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request can be made"
        return None  # nothing to negate: the operation takes no parameter and no body
    except (Exception, BaseExceptionGroup) as exc:  # one operation's failure hides no other's
        return f"{operation.label} ({mode.value}): {exc}"[:3000]
    return None


def test_fuzz_no_5xx_schema_conformance_and_no_secret_in_any_response(
    world: QaWorld, app_endpoints: list[Endpoint], schema_path: str
) -> None:
    def load(role: str) -> Any:
        config = schemathesis.Config.from_dict(
            {
                # the token as the schema's security scheme says: a negative case may leave it out
                # (and must then get a 401), a positive one always sends it
                "auth": {"openapi": {"bearer": {"bearer": world.tokens[role]}}},
                "checks": {
                    # a value the schema allows may still be refused as the CLI refuses it: 400
                    # with its message, hint and exit code 2 (an expiry of '#'), 404 (no such source)
                    "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", 400, 401, 403, 404, 409]},
                },
            }
        )
        return schemathesis.openapi.from_url(world.base_url + schema_path, config=config, timeout=REQUEST_TIMEOUT)

    schemas = {role: load(role) for role in ROLE_ORDER}
    by_role = {
        role: {op.label: op for op in (r.ok() for r in schema.get_all_operations())} for role, schema in schemas.items()
    }
    roles = {(e.method, e.path): e.role for e in app_endpoints}
    statuses: dict[str, list[int]] = {}
    secret_check = no_planted_secret(world, statuses)
    # reading first, revoking last (a revoked token of this test would end the fuzz early)
    labels = sorted(by_role["admin"], key=lambda label: (not label.startswith("GET "), label.startswith("DELETE ")))
    assert labels
    failures: list[str] = []
    calls: dict[str, int] = {}
    started = time.monotonic()
    for label in labels:
        method, path = label.split(" ", 1)
        role = roles.get((method, path))
        # reading with the admin's token (it sees the most); changing with just the role it needs
        operation = by_role["admin" if method == "GET" or role is None else role][label]
        for mode, examples in ((GenerationMode.POSITIVE, EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
            failure = fuzz_operation(world, operation, mode, examples, check=secret_check, calls=calls)
            if failure:
                failures.append(failure)
    elapsed = time.monotonic() - started
    summary = f"{sum(calls.values())} requests over {len(labels)} operations in {elapsed:.1f} s"
    print(summary)
    assert not failures, summary + "\n\n" + "\n\n".join(failures)
    assert all(calls.get(label) for label in labels), f"operations never called: {calls}"
    # the token got the requests past authentication: every operation answered something else
    # than 401 and every reading one without a path parameter answered 200
    refused = [label for label in labels if not set(statuses.get(label, [])) - {401, 403}]
    assert not refused, f"only refusals from {refused}"
    unanswered = [
        label for label in labels if label.startswith("GET ") and "{" not in label and 200 not in statuses[label]
    ]
    assert not unanswered, f"never a 200 from {unanswered}: {[(label, statuses[label]) for label in unanswered]}"
    print({label: sorted(set(codes)) for label, codes in statuses.items()})


# --- real requests: every resource with real values, the actions done for real ------------------
def test_every_resource_answers_real_values_by_its_schema_without_a_secret(
    world: QaWorld, app_endpoints: list[Endpoint], schema_path: str, real: dict[str, str]
) -> None:
    """The fuzz's random names mostly find nothing (404); here each reading operation is asked
    about things that exist — a snapshot, a diff of two, a run and its log, a source, the
    PostgreSQL source — and each answer (200) is validated against the schema by schemathesis
    and searched for the planted secrets; then an operator starts a verify, cancels it and
    starts a drill, each answer validated too."""
    schema = schemathesis.openapi.from_url(world.base_url + schema_path, timeout=REQUEST_TIMEOUT)
    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    statuses: dict[str, list[int]] = {}
    check = no_planted_secret(world, statuses)
    problems: list[str] = []

    def call(label: str, role: str, **parts: Any) -> Any:
        operation = operations[label]
        endpoint = next(e for e in app_endpoints if f"{e.method} {e.path}" == label)
        case = operation.Case(path_parameters=path_values(endpoint, real), **parts)
        try:
            return case.call_and_validate(
                base_url=world.base_url,
                headers={"Authorization": f"Bearer {world.tokens[role]}"},
                additional_checks=[check],
                timeout=REQUEST_TIMEOUT,
            )
        except (Exception, BaseExceptionGroup) as exc:
            problems.append(f"{label}: {exc}"[:3000])
            return None

    reading = [label for label in operations if label.startswith("GET ")]
    for label in reading:
        answer = call(label, "admin")
        if answer is not None and answer.status_code != 200:
            problems.append(f"{label} with real values: {answer.status_code} {answer.text[:300]}")
    started = call("POST /api/v1/jobs/{name}/run", "operator") if "POST /api/v1/jobs/{name}/run" in operations else None
    if started is not None:
        assert started.status_code == 202, started.text
        real_run = dict(real, run=started.json()["run_id"])
        endpoint = next(e for e in app_endpoints if e.path == "/api/v1/runs/{run_id}/cancel")
        cancel = operations["POST /api/v1/runs/{run_id}/cancel"].Case(path_parameters=path_values(endpoint, real_run))
        try:
            answer = cancel.call_and_validate(
                base_url=world.base_url, headers={"Authorization": f"Bearer {world.tokens['operator']}"},
                additional_checks=[check], timeout=REQUEST_TIMEOUT,
            )  # fmt: skip
            assert answer.status_code in (200, 202, 409), answer.text  # 409: it ended first
        except (Exception, BaseExceptionGroup) as exc:
            problems.append(f"cancel: {exc}"[:3000])
    if "POST /api/v1/drills" in operations:
        drill = call("POST /api/v1/drills", "operator", body={"source": "files"})
        if drill is not None and drill.status_code not in (202, 409):
            problems.append(f"POST /api/v1/drills: {drill.status_code} {drill.text[:300]}")
    assert len(statuses) >= len(reading)
    assert not problems, "\n\n".join(problems)
