"""No secret reaches stdout, stderr or ``--json``, in any mode, ``-v`` and ``-vv`` included.

Real commands run against the S3 test servers with an access key id, secret and session
token that are unique marker strings; the fault proxy refuses requests the way S3 refuses a
bad signature (quoting the credentials back), resets connections and answers 500; a
presigned range read fails; URLs and options carry credentials. Every byte of output is
searched for the markers and for signatures. A provider's own message never appears either:
it is where such secrets hide.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import CliResult, run_cli
from tests.servers.fault_proxy import DROP, FAIL, PASS, REFUSE_QUOTING, FaultProxy, Rule
from tests.servers.fixtures import S3_KEY, S3_SECRET, Server, free_port, new_bucket

MODES: list[tuple[str, ...]] = [(), ("--json",), ("-v",), ("-vv",)]
FAST_INIT = ("init", "--kdf-memory", "8MiB", "--kdf-iterations", "1")
# What gives a signed request away, whoever's credentials it carries.
SIGNATURE_TEXTS = ("X-Amz-Signature", "Signature=", "X-Amz-Credential", "X-Amz-Security-Token", "Credential=")
# Phrases of the SDKs' own messages (obstore, urllib3, botocore): they never reach the user.
SDK_TEXTS = ("Error performing", "Debug source", "non-2xx", "Connection aborted", "Remote end closed")


@dataclass(frozen=True)
class Markers:
    """Credentials that are unique strings, so that any copy of them in the output is found."""

    key_id: str
    secret: str
    token: str

    @classmethod
    def new(cls, key_id: str | None = None, secret: str | None = None) -> Markers:
        tag = secrets.token_hex(6)
        return cls(key_id or f"AKIAMARK{tag.upper()}", secret or f"secretmark{tag}", f"tokenmark{tag}")

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_SESSION_TOKEN": self.token,
            "AWS_DEFAULT_REGION": "us-east-1",
            "LIFEBOAT_PASSWORD": "the repository passphrase",
        }

    def all(self) -> tuple[str, ...]:
        return (self.key_id, self.secret, self.token, "the repository passphrase")


def assert_no_secret(result: CliResult, secrets_: tuple[str, ...]) -> None:
    output = result.stdout + result.stderr
    for secret in secrets_:
        assert secret not in output, result
    for text in SIGNATURE_TEXTS + SDK_TEXTS:
        assert text.lower() not in output.lower(), (text, result)


def run_every_mode(
    *args: str, env: dict[str, str], secrets_: tuple[str, ...], code: int, target: Path | None = None
) -> list[CliResult]:
    """Run ``lifeboat MODE… ARGS`` in every output mode; each exits ``code`` and shows no secret."""
    results = []
    for number, mode in enumerate(MODES):
        argv = [*mode, *args]
        if target is not None:
            argv += ["--target", str(target / f"restore-{number}")]
        result = run_cli(*argv, env=env, timeout=180)
        assert result.code == code, (mode, result)
        if "--json" not in mode:
            assert result.stderr.startswith("lifeboat: error: "), (mode, result)
        assert_no_secret(result, secrets_)
        if mode and mode[0].startswith("-v"):
            assert "Traceback (most recent call last)" in result.stderr  # -v does show where it failed
        results.append(result)
    return results


@pytest.fixture
def proxy(moto_server: Server) -> Iterator[FaultProxy]:
    running = FaultProxy(moto_server.port).start()
    yield running
    running.stop()


def _repository(url: str, env: dict[str, str], tmp_path: Path) -> Path:
    """A repository at ``url`` holding one snapshot of a small tree (made while nothing fails)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.bin").write_bytes(secrets.token_bytes(300_000))
    (tree / "b.txt").write_text("text\n" * 1000)
    created = run_cli(*FAST_INIT, env={**env, "LIFEBOAT_REPO": url})
    assert created.code == 0, created
    saved = run_cli("backup", str(tree), env={**env, "LIFEBOAT_REPO": url})
    assert saved.code == 0, saved
    return tree


def _when(method: str, part: str, action: str) -> Rule:
    return lambda m, path: action if m == method and part in path else PASS


# --- a server that refuses requests quoting the credentials back --------------------------------------
@pytest.mark.parametrize(
    ("command", "rule"),
    [
        (("snapshots",), lambda _m, _p: REFUSE_QUOTING),
        (("restore", "latest"), _when("GET", "/data/", REFUSE_QUOTING)),
        (("backup", "{tree}"), _when("PUT", "/data/", REFUSE_QUOTING)),
    ],
    ids=["open", "restore", "backup"],
)
def test_a_refused_signature_quoting_the_credentials_shows_none_of_them(
    moto_server: Server, proxy: FaultProxy, tmp_path: Path, command: tuple[str, ...], rule: Rule
) -> None:
    markers = Markers.new()
    url = f"s3://{new_bucket(moto_server)}/repo?endpoint={proxy.endpoint}&retries=1&retry_max_delay=0.1"
    env = {**markers.env(), "LIFEBOAT_REPO": url}
    tree = _repository(url, env, tmp_path)
    (tree / "new.bin").write_bytes(secrets.token_bytes(100_000))
    proxy.rule = rule
    args = tuple(part.replace("{tree}", str(tree)) for part in command)
    results = run_every_mode(
        *args, env=env, secrets_=markers.all(), code=14, target=tmp_path if args[0] == "restore" else None
    )
    assert "access denied (HTTP 403 SignatureDoesNotMatch)" in results[0].stderr
    assert any(action == REFUSE_QUOTING for _, _, action in proxy.requests)


# --- resets, server errors, an unreachable server ---------------------------------------------------------
@pytest.mark.parametrize("action", [DROP, FAIL])
def test_resets_and_server_errors_show_no_credential(
    moto_server: Server, proxy: FaultProxy, tmp_path: Path, action: str
) -> None:
    markers = Markers.new()
    url = f"s3://{new_bucket(moto_server)}/repo?endpoint={proxy.endpoint}&retries=1&retry_max_delay=0.1"
    env = {**markers.env(), "LIFEBOAT_REPO": url}
    _repository(url, env, tmp_path)
    proxy.rule = _when("GET", "/data/", action)
    run_every_mode("restore", "latest", env=env, secrets_=markers.all(), code=14, target=tmp_path)


def test_an_unreachable_endpoint_shows_no_credential(tmp_path: Path) -> None:
    markers = Markers.new()
    url = f"s3://bucket/repo?endpoint=http://127.0.0.1:{free_port()}&connect_timeout=1s&retries=0"
    run_every_mode("snapshots", env={**markers.env(), "LIFEBOAT_REPO": url}, secrets_=markers.all(), code=14)


# --- wrong credentials against a server that checks them --------------------------------------------------
@pytest.mark.parametrize("which", ["key id", "secret"])
def test_wrong_credentials_are_refused_without_showing_them(rclone_server: Server, tmp_path: Path, which: str) -> None:
    bucket = new_bucket(rclone_server)
    right = Markers.new(key_id=S3_KEY, secret=S3_SECRET)
    url = f"s3://{bucket}/repo?endpoint={rclone_server.endpoint}&conditional_writes=false&retries=0"
    _repository(url, {**right.env(), "LIFEBOAT_REPO": url}, tmp_path)
    wrong = Markers.new(key_id=None if which == "key id" else S3_KEY)
    results = run_every_mode(
        "snapshots", env={**wrong.env(), "LIFEBOAT_REPO": url}, secrets_=(*wrong.all(), S3_SECRET), code=14
    )
    assert "access denied" in results[0].stderr


# --- a presigned range read that fails --------------------------------------------------------------------
@pytest.mark.parametrize("action", [REFUSE_QUOTING, DROP])
def test_a_failing_presigned_range_read_shows_no_credential(rclone_server: Server, tmp_path: Path, action: str) -> None:
    """rclone answers ranged reads with 200, so after the first one every range is read
    through a URL presigned with the credentials; that URL must never be shown."""
    bucket = new_bucket(rclone_server)
    markers = Markers.new(key_id=S3_KEY, secret=S3_SECRET)
    proxy = FaultProxy(rclone_server.port).start()
    try:
        url = f"s3://{bucket}/repo?endpoint={proxy.endpoint}&conditional_writes=false&retries=0&read_ahead=0"
        env = {**markers.env(), "LIFEBOAT_REPO": url}
        _repository(url, env, tmp_path)
        proxy.rule = lambda method, path: action if method == "GET" and "X-Amz-Signature=" in path else PASS
        run_every_mode("restore", "latest", env=env, secrets_=(*markers.all(), S3_SECRET), code=14, target=tmp_path)
        presigned = [path for method, path, act in proxy.requests if act == action]
        assert presigned and all("X-Amz-Security-Token=" + markers.token in p for p in presigned)
    finally:
        proxy.stop()


# --- URLs and options that carry credentials -------------------------------------------------------------
SECRET = "hunter2mark"


@pytest.mark.parametrize(
    "url",
    [
        f"file://user:{SECRET}@/srv/repo",
        f"file://{SECRET}@/srv/repo",
        f"ftp://user:{SECRET}@host/repo",
        f"sftp://user:{SECRET}@host/srv/repo",
        f"s3://bucket/repo?endpoint=user:{SECRET}@minio:9000",
        f"s3://bucket/repo?endpoint=https://AKIAKEY:{SECRET}@minio:9000",
        f"s3://bucket/repo?endpoint=https://minio:9000/?X-Amz-Signature={SECRET}",
        f"s3://bucket/repo?endpoint=https://{SECRET}@minio:9000",
        f"gs://bucket/repo?endpoint=https://token:{SECRET}@gcs.example",
        "az://container/repo?account=acct&endpoint=" + quote(f"https://acct.blob.example/?sv=2024&sig={SECRET}", ""),
    ],
)
def test_a_url_or_option_carrying_a_credential_is_refused_without_echoing_it(url: str, tmp_path: Path) -> None:
    markers = Markers.new()
    env = {**markers.env(), "LIFEBOAT_REPO": url}
    results = run_every_mode("snapshots", env=env, secrets_=(*markers.all(), SECRET), code=2)
    assert "hint: " in results[0].stderr


def test_credentials_in_configured_options_are_not_echoed(tmp_path: Path) -> None:
    config = tmp_path / "lifeboat.yaml"
    config.write_text(
        "repositories:\n"
        "  offsite:\n"
        "    url: s3://bucket/repo\n"
        "    options:\n"
        f"      endpoint: https://AKIAKEY:{SECRET}@minio:9000\n"
    )
    for mode in MODES:
        result = run_cli(*mode, "--config", str(config), "config", "validate")
        assert result.code == 2, result
        assert "offsite" in result.stderr and "credentials" in result.stderr
        assert_no_secret(result, (SECRET, "AKIAKEY"))


# --- the pieces: what may be shown of an exception, URLs and options ------------------------------------
TOKEN = "FwoGZXIvYXdzEXAMPLETOKENmark"
PRESIGNED = f"http://127.0.0.1:9000/b/pack?X-Amz-Security-Token={TOKEN}&X-Amz-Signature=deadbeef"


def test_a_traceback_shows_frames_and_lifeboat_messages_but_no_library_message() -> None:
    import urllib3

    from lifeboat.app.cli.tracebacks import format_traceback
    from lifeboat.errors import StorageError

    def request_in_a_library() -> None:
        raise urllib3.exceptions.ProtocolError(f"GET {PRESIGNED}: connection aborted")

    try:
        try:
            request_in_a_library()
        except urllib3.exceptions.HTTPError as exc:
            raise StorageError("get data/aa/pack: the storage did not answer") from exc
    except StorageError as error:
        text = format_traceback(error)
    assert TOKEN not in text and "deadbeef" not in text and "ProtocolError: GET" not in text
    assert "request_in_a_library" in text  # the frames are all there
    assert "urllib3.exceptions.ProtocolError (its message is not shown" in text
    assert "lifeboat.errors.StorageError: get data/aa/pack: the storage did not answer" in text
    assert "The above exception was the direct cause of the following exception" in text


def test_builtin_errors_raised_in_lifeboat_keep_their_message() -> None:
    from lifeboat.core.units import parse_size
    from lifeboat.errors import describe

    with pytest.raises(ValueError) as raised:
        parse_size("lots")
    assert describe(raised.value) == f"ValueError: {raised.value}"
    assert describe(OSError(13, "Permission denied", f"/{TOKEN}")) == "PermissionError: [Errno 13] Permission denied"
    try:
        int(f"{TOKEN}")  # a builtin raised outside Lifeboat's own modules: its type only
    except ValueError as outside:
        assert describe(outside) == "ValueError"


def test_urls_and_options_show_no_credential() -> None:
    from lifeboat.errors import UsageError
    from lifeboat.storage.url import Options, StorageUrl, shown_url

    url = StorageUrl("s3", "bucket", "repo", options={"token": TOKEN, "connections": TOKEN})
    assert TOKEN not in str(url) and TOKEN not in repr(url) and TOKEN not in f"{url}"
    assert shown_url(f"https://user:{TOKEN}@host:9000/path?sig={TOKEN}") == "https://host:9000/path"
    assert shown_url(f"https://{TOKEN}@host/") == "https://host/"
    options = Options(url, ["token", "connections"], secret=["token"])
    with pytest.raises(UsageError) as refused:
        options.integer("token", 1)
    assert TOKEN not in refused.value.message and "option token: expected a whole number" in refused.value.message
    with pytest.raises(UsageError) as echoed:
        options.integer("connections", 1)
    assert "connections=" in echoed.value.message  # a value that is not secret is shown, to help


@pytest.mark.parametrize("url", [f"sftp://postgres:{SECRET}@backup-host/srv/repo", f"file://u:{SECRET}@/srv/repo"])
def test_pg_setup_never_writes_a_credential_into_the_servers_settings(url: str) -> None:
    for mode in MODES:
        result = run_cli(*mode, "-r", url, "pg", "setup", "--port", str(free_port()))
        assert result.code == 2, result
        assert_no_secret(result, (SECRET,))
