"""A real ``lifeboat serve`` with secrets planted everywhere a secret can be, for the API's
fuzz test (tests/api/test_fuzz.py): the repository passphrase (a password file), a token of
each role, the catalog's PostgreSQL password (in ``daemon.catalog``'s URL, on a real scratch
cluster, and in the libpq password file the postgres source reads), the key id of a storage
option (``sse_kms_key_id``) and the S3 secret key of a second repository, and the alert
webhook's URL and HMAC secret. The repository holds real backups, a verify result and a drill
record; the daemon runs its own scheduled backup at start, so the catalog has runs and events.

Every response the fuzz sees is searched for each :attr:`QaWorld.secrets` value.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from lifeboat.sources.tools.pgcluster import ScratchCluster, chown_tree, free_port
from tests.conftest import CliResult, run_cli
from tests.daemon.conftest import Served, World

ROLES = ("viewer", "operator", "admin")
CATALOG_ROLE = "lifeboat_qa"
TOKEN = re.compile(r"\blb_[A-Za-z0-9_\-]{20,}")


def _planted(label: str) -> str:
    """A secret nobody could guess and a search cannot miss (no character a JSON or URL
    encoder would change)."""
    return f"Planted{label}{secrets.token_hex(12)}"


@dataclass
class QaWorld:
    """The world of the fuzz test: a repository, a configuration, a served daemon, tokens."""

    root: Path
    port: int
    cluster: ScratchCluster
    passphrase: str = field(default_factory=lambda: _planted("Passphrase"))
    catalog_password: str = field(default_factory=lambda: _planted("CatalogPw") + ":/@")
    kms_key_id: str = field(default_factory=lambda: _planted("KmsKeyId"))
    aws_secret: str = field(default_factory=lambda: _planted("AwsSecret"))
    webhook_token: str = field(default_factory=lambda: _planted("HookToken"))
    webhook_secret: str = field(default_factory=lambda: _planted("HookHmac"))
    tokens: dict[str, str] = field(default_factory=dict)
    served: Served | None = None

    @property
    def config(self) -> Path:
        return self.root / "lifeboat.yaml"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "LIFEBOAT_STATE_DIR": str(self.state),
            "LIFEBOAT_CONFIG": str(self.config),
            "PGPASSFILE": str(self.root / "pgpass"),
            "AWS_ACCESS_KEY_ID": "lifeboat-qa",
            "AWS_SECRET_ACCESS_KEY": self.aws_secret,
            "QA_WEBHOOK_URL": self.webhook_url,
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        }

    @property
    def webhook_url(self) -> str:
        # a closed port: each delivery fails at once (and is retried, never shown)
        return f"http://127.0.0.1:9/hook/{self.webhook_token}?token={self.webhook_token}"

    @property
    def catalog_url(self) -> str:
        password = quote(self.catalog_password, safe="")
        return f"postgresql://{CATALOG_ROLE}:{password}@127.0.0.1:{self.cluster.port}/qa_catalog"

    @property
    def secrets(self) -> dict[str, str]:
        """Every planted secret by what it is; no response may hold any of them (nor the
        percent-encoded form of the catalog password)."""
        found = {
            "repository passphrase": self.passphrase,
            "catalog password": self.catalog_password,
            "catalog password (URL-encoded)": quote(self.catalog_password, safe=""),
            "storage option sse_kms_key_id": self.kms_key_id,
            "S3 secret key": self.aws_secret,
            "webhook URL token": self.webhook_token,
            "webhook HMAC secret": self.webhook_secret,
        }
        found.update({f"{role} token": token for role, token in self.tokens.items()})
        return found

    def cli(self, *args: str) -> CliResult:
        return run_cli("-c", str(self.config), *args, env=self.env)

    def must(self, *args: str) -> CliResult:
        done = self.cli(*args)
        assert done.code == 0, done
        return done

    # --- building -------------------------------------------------------------------------------
    def _catalog_database(self) -> None:
        cluster = self.cluster
        sql_password = self.catalog_password.replace("'", "''")
        cluster.psql(f"CREATE ROLE {CATALOG_ROLE} LOGIN PASSWORD '{sql_password}'")
        cluster.psql(f"CREATE DATABASE qa_catalog OWNER {CATALOG_ROLE}")
        hba = cluster.data_dir / "pg_hba.conf"
        hba.write_text(f"host all {CATALOG_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        assert cluster.psql("SELECT pg_reload_conf()") == "t"
        pgpass = self.root / "pgpass"
        escaped = self.catalog_password.replace("\\", "\\\\").replace(":", "\\:")
        pgpass.write_text(f"127.0.0.1:{cluster.port}:*:{CATALOG_ROLE}:{escaped}\n")
        pgpass.chmod(0o600)

    def write_config(self) -> None:
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        for n in range(20):
            (data / f"file-{n}.txt").write_text(f"line {n}\n" * (n + 1))
        (data / "sub").mkdir(exist_ok=True)
        (data / "sub" / "notes.md").write_text("# notes\n")
        passphrase = self.root / "passphrase"
        passphrase.write_text(self.passphrase + "\n")
        passphrase.chmod(0o600)
        hmac = self.root / "webhook-secret"
        hmac.write_text(self.webhook_secret + "\n")
        hmac.chmod(0o600)
        self.config.write_text(
            f"""repositories:
  main:
    url: {self.root / "repo"}
    password_file: {passphrase}
  offsite:
    url: s3://lifeboat-qa/offsite?endpoint=http://127.0.0.1:9&addressing=path
    password_file: {passphrase}
    follows: main
    options:
      sse_kms_key_id: {self.kms_key_id}
default_repository: main
daemon:
  listen: 127.0.0.1:{self.port}
  catalog: {self.catalog_url}
  shutdown_deadline: 10s
  health_check: 1h
  archiving_check: 1h
alerts:
  reminder: null
  attempts: 1
  channels:
    hook:
      type: webhook
      url_env: QA_WEBHOOK_URL
      secret_file: {hmac}
sources:
  files:
    type: files
    paths: [{data}]
    rpo: 1d
    rto: 10min
    schedule:
      backup: {{every: 1h}}
  stream:
    type: command
    command: [sh, -c, "echo streamed; echo noted >&2"]
    rpo: 1d
  db:
    type: postgres
    method: stream
    host: 127.0.0.1
    port: {self.cluster.port}
    user: {CATALOG_ROLE}
    rpo: 1h
"""
        )

    def create_tokens(self) -> None:
        for role in ROLES:
            made = self.must("token", "create", "--name", f"qa-{role}", "--role", role)
            found = TOKEN.findall(made.stdout)
            assert len(found) == 1, made
            self.tokens[role] = found[0]

    def build(self) -> None:
        self.write_config()
        self._catalog_database()
        self.must("init")
        self.must("backup", "--source", "files")
        (self.root / "data" / "file-0.txt").write_text("changed\n")
        (self.root / "data" / "new.txt").write_text("new\n")
        self.must("backup", "--source", "files")
        self.must("backup", "--source", "stream")
        self.must("verify", "--source", "files")
        self.must("drill", "--source", "files")
        self.create_tokens()

    def serve(self) -> Served:
        world = World(self.root, self.env, self.port)  # the daemon tests' process handling
        served = world.serve()
        self.served = served
        served.wait_logged("run finished", job="backup:files")  # the catalog has a run with events
        return served

    def close(self) -> None:
        if self.served is not None and self.served.process.poll() is None:
            self.served.signal(signal.SIGTERM)
            try:
                self.served.wait_exit(30)
            except Exception:
                self.served.process.send_signal(signal.SIGKILL)
                self.served.process.wait(30)
        self.cluster.destroy()
        shutil.rmtree(self.root, ignore_errors=True)


def make_world() -> QaWorld:
    """A built world (not yet served); its PostgreSQL cluster is running."""
    root = Path(tempfile.mkdtemp(prefix="lifeboat-apiqa-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    cluster = ScratchCluster(root / "pg")
    cluster.init(checksums=False)
    cluster.start()
    world = QaWorld(root, free_port(), cluster)
    try:
        world.build()
    except BaseException:
        world.close()
        raise
    chown_tree(root / "pg", cluster.os_user)
    return world
