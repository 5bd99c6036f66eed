"""How tokens are kept: printed once, stored only as hashes in a private file, never listed."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

from lifeboat.app.api.tokens import PREFIX, Role, TokenStore, create_token, digest_of, read_tokens, tokens_path
from tests.api.conftest import Api
from tests.conftest import run_cli


def test_the_token_is_printed_once_and_only_its_hash_is_stored(api: Api) -> None:
    made = api.cli("token", "create", "--name", "ci", "--role", "operator")
    assert made.code == 0, made
    token = made.stdout.strip()
    assert made.stdout.count(token) == 1 and made.stdout == token + "\n"  # the product on stdout, alone
    assert token not in made.stderr and "shown only now" in made.stderr
    assert token.startswith(PREFIX) and len(token) == len(PREFIX) + 43  # 256 bits, base64url
    path = tokens_path(api.state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    text = path.read_text()
    for every in (token, *api.tokens.values()):
        assert every not in text and every[len(PREFIX) :] not in text and every[-20:] not in text
        assert digest_of(every) in text
    doc = json.loads(text)
    ci = next(t for t in doc["tokens"] if t["name"] == "ci")
    assert set(ci) == {"name", "role", "sha256", "created", "expires"} and ci["role"] == "operator"
    # the token works, and nothing else the CLI prints repeats it
    assert api.client(token=token).get("/api/v1/whoami").json() == {"name": "ci", "role": "operator"}
    for args in (("token", "list"), ("--json", "token", "list"), ("audit", "show"), ("--json", "audit", "show")):
        shown = api.cli(*args)
        assert shown.code == 0, shown
        for every in (token, *api.tokens.values()):
            assert every not in shown.stdout + shown.stderr
            assert digest_of(every) not in shown.stdout
    listed = json.loads(api.cli("--json", "token", "list").stdout)
    assert {t["name"]: t["role"] for t in listed}.items() >= {
        "viewer-token": "viewer",
        "operator-token": "operator",
        "admin-token": "admin",
        "ci": "operator",
    }.items()
    assert set(listed[0]) == {"name", "role", "created", "expires", "expired"}
    # `token create` is in the audit log, by name and role, its token not
    entries = [e for e in api.audit_entries() if e["action"] == "token create"]
    assert any(e["arguments"].get("name") == "ci" and e["arguments"].get("role") == "operator" for e in entries)


def test_json_output_of_create_has_the_token_once(tmp_path: Path) -> None:
    env = {"LIFEBOAT_STATE_DIR": str(tmp_path / "state")}
    made = run_cli("--json", "token", "create", "--name", "j", "--role", "admin", "--expires", "12h", env=env)
    assert made.code == 0, made
    doc = json.loads(made.stdout)
    assert doc["name"] == "j" and doc["role"] == "admin" and doc["expires"] and doc["expired"] is False
    assert made.stdout.count(doc["token"]) == 1 and doc["token"] not in made.stderr


def test_bad_names_roles_durations_and_duplicates_are_usage_errors(tmp_path: Path) -> None:
    env = {"LIFEBOAT_STATE_DIR": str(tmp_path / "state")}
    for args, says in (
        (("--name", "a b", "--role", "viewer"), "invalid token name"),
        (("--name", "ok", "--role", "root"), "unknown role 'root'"),
        (("--name", "ok", "--role", "viewer", "--expires", "soon"), "--expires"),
        (("--name", "ok", "--role", "viewer", "--expires", "0"), "positive"),
    ):
        done = run_cli("token", "create", *args, env=env)
        assert done.code == 2 and says in done.stderr and "hint:" in done.stderr, (args, done)
        assert done.stdout == ""
    assert run_cli("token", "create", "--name", "ok", "--role", "VIEWER", env=env).code == 0
    again = run_cli("token", "create", "--name", "ok", "--role", "admin", env=env)
    assert again.code == 2 and "exists already" in again.stderr
    assert [r.role for r in read_tokens(tokens_path(tmp_path / "state"))] == [Role.VIEWER]
    empty = run_cli("token", "list", env={"LIFEBOAT_STATE_DIR": str(tmp_path / "none")})
    assert empty.code == 0 and "Name" in empty.stdout


def test_a_damaged_token_file_is_one_error_line(tmp_path: Path) -> None:
    path = tokens_path(tmp_path)
    path.write_text("{not json")
    done = run_cli("token", "list", env={"LIFEBOAT_STATE_DIR": str(tmp_path)})
    assert done.code == 1 and "is damaged" in done.stderr and "Traceback" not in done.stderr


def test_concurrent_creates_lose_nothing_and_the_store_sees_every_change(tmp_path: Path) -> None:
    path = tokens_path(tmp_path)
    store = TokenStore(path)
    made: dict[str, str] = {}

    def create(i: int) -> None:
        token, _ = create_token(path, f"t{i}", Role.VIEWER)
        made[f"t{i}"] = token

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.name for r in read_tokens(path)) == sorted(made)
    for name, token in made.items():
        found = store.lookup(token)
        assert found is not None and found.name == name
    assert store.lookup(PREFIX + "x" * 43) is None
