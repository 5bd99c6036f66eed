"""Session-scoped pytest fixtures for the real storage servers.

Each server starts once per test session (per xdist worker) on a free port and is
killed at teardown. Tests isolate themselves by bucket, container or directory, and
get a URL plus the environment (credentials) a backend or the CLI needs.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.process import SETUP_HINT, ServerProcess, free_port, servers_dir, venv_tool

S3_KEY = "lifeboat-test-key"
S3_SECRET = "lifeboat-test-secret"  # a test server's fixed credential
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class Server:
    """A running server: how to reach it and what environment its clients need."""

    name: str
    process: ServerProcess
    port: int
    env: dict[str, str] = field(default_factory=dict)
    data_dir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


# --- S3: moto (semantics) and rclone (a real on-disk server) --------------------------------
@pytest.fixture(scope="session")
def moto_server(server_logs: Path) -> Iterator[Server]:
    port = free_port()
    proc = ServerProcess(
        "moto_server", [venv_tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)], server_logs / "moto.log"
    ).start()
    proc.wait_for_port(port)
    env = {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    yield Server("moto", proc, port, env)
    proc.stop()


@pytest.fixture(scope="session")
def rclone_server(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("rclone-data")
    port = free_port()
    proc = ServerProcess(
        "rclone serve s3",
        [
            venv_tool("rclone"),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{port}",
            "--auth-key",
            f"{S3_KEY},{S3_SECRET}",
            "--vfs-cache-mode",
            "off",
            str(data),
        ],
        server_logs / "rclone.log",
    ).start()
    proc.wait_for_port(port)
    env = {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    yield Server("rclone", proc, port, env, data_dir=data)
    proc.stop()


def s3_client(server: Server):  # type: ignore[no-untyped-def]
    """A boto3 client for a test S3 server (bucket set-up and inspection)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
        ),
    )


def new_bucket(server: Server, *, object_lock: bool = False) -> str:
    bucket = unique("lb")
    if object_lock:
        s3_client(server).create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    else:
        s3_client(server).create_bucket(Bucket=bucket)
    return bucket


# --- Azure: Azurite --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def azurite_server(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    binary = servers_dir() / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        found = shutil.which("azurite-blob")
        if found is None:
            pytest.fail(f"Azurite is not installed (looked for {binary}); {SETUP_HINT}", pytrace=False)
        binary = Path(found)
    data = tmp_path_factory.mktemp("azurite-data")
    port = free_port()
    proc = ServerProcess(
        "azurite",
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(data),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ],
        server_logs / "azurite.log",
    ).start()
    proc.wait_for_port(port)
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
    )
    yield Server("azurite", proc, port, {"AZURE_STORAGE_CONNECTION_STRING": connection}, data_dir=data)
    proc.stop()


def new_container(server: Server) -> str:
    from azure.storage.blob import BlobServiceClient

    container = unique("lb")
    BlobServiceClient.from_connection_string(server.env["AZURE_STORAGE_CONNECTION_STRING"]).create_container(container)
    return container


# --- GCS: gcp-storage-emulator (with ifGenerationMatch honoured) ---------------------------------
@pytest.fixture(scope="session")
def gcs_server(server_logs: Path) -> Iterator[Server]:
    try:
        import gcp_storage_emulator  # noqa: F401
    except ImportError:
        pytest.fail(f"gcp-storage-emulator is not installed; {SETUP_HINT}", pytrace=False)
    port = free_port()
    launcher = Path(__file__).with_name("gcs_emulator.py")
    proc = ServerProcess(
        "gcp-storage-emulator", [sys.executable, str(launcher), "127.0.0.1", str(port)], server_logs / "gcs.log"
    ).start()
    proc.wait_for_port(port)
    yield Server("gcs", proc, port, {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"})
    proc.stop()


def new_gcs_bucket(server: Server) -> str:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    bucket = unique("lb")
    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": server.endpoint}
    )
    client.create_bucket(bucket)
    return bucket


# --- SFTP: OpenSSH's sshd ------------------------------------------------------------------------
def _sshd_binary() -> tuple[str, dict[str, str]]:
    local = servers_dir() / "openssh"
    candidate = local / "usr" / "sbin" / "sshd"
    if candidate.exists():
        libs = [str(local / "usr" / "lib" / "x86_64-linux-gnu"), str(local / "lib" / "x86_64-linux-gnu")]
        return str(candidate), {"LD_LIBRARY_PATH": ":".join([*libs, os.environ.get("LD_LIBRARY_PATH", "")])}
    for path in ("/usr/sbin/sshd", shutil.which("sshd")):
        if path and Path(path).exists():
            return path, {}
    pytest.fail(f"OpenSSH's sshd is not installed (looked in {local}); {SETUP_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def sshd_server(server_logs: Path) -> Iterator[Server]:
    sshd, env = _sshd_binary()
    # sshd runs as an unprivileged user when we are root, so its files live in a
    # directory that user can reach (pytest's temporary directories are private).
    base = Path(tempfile.mkdtemp(prefix="lifeboat-sshd-"))
    data = base / "data"
    data.mkdir()
    for key in ("host_ed25519", "client_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / key)], check=True)
    shutil.copy(base / "client_ed25519.pub", base / "authorized_keys")
    port = free_port()
    (base / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base}/host_ed25519\nPidFile {base}/sshd.pid\n"
        f"AuthorizedKeysFile {base}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM yes\nStrictModes no\nSubsystem sftp internal-sftp\n"
    )
    host_key = (base / "host_ed25519.pub").read_text().split()
    (base / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    argv = [sshd, "-D", "-e", "-f", str(base / "sshd_config")]
    user = getpass.getuser()
    if os.geteuid() == 0:
        user = "nobody"
        subprocess.run(["chown", "-R", "nobody:nogroup", str(base)], check=True)
        for private in ("client_ed25519", "known_hosts"):  # the client (root) keeps reading these
            os.chmod(base / private, 0o644 if private == "known_hosts" else 0o600)
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
    proc = ServerProcess("sshd", argv, server_logs / "sshd.log", env=env).start()
    proc.wait_for_port(port)
    yield Server(
        "sshd",
        proc,
        port,
        {},
        data_dir=data,
        extra={
            "user": user,
            "identity": str(base / "client_ed25519"),
            "known_hosts": str(base / "known_hosts"),
        },
    )
    proc.stop()
    shutil.rmtree(base, ignore_errors=True)


def new_sftp_dir(server: Server) -> str:
    """A fresh directory path on the server (created by the backend on first write)."""
    assert server.data_dir is not None
    return f"{server.data_dir}/{unique('repo')}"


def sftp_url(server: Server, path: str) -> str:
    extra = server.extra
    return (
        f"sftp://{extra['user']}@127.0.0.1:{server.port}{path}"
        f"?identity={extra['identity']}&known_hosts={extra['known_hosts']}"
    )
